package generate

import (
	"math"
	"math/rand/v2"
)

// Shape of the catalogue.
const (
	songZipfS        = 1.1 // global song popularity exponent
	artistSizeS      = 0.9 // how skewed the number of songs per artist is
	artistPopularity = 0.9 // how skewed favourite artists are
)

// perm is a bijection of [0, n) onto itself: i ↦ (a·i + b) mod n with a
// coprime to n. It scatters ranks over ids without a table.
// INVARIANT: n ≤ 1<<31, so a·i never overflows.
type perm struct {
	n, a, b, ainv uint64
}

func newPerm(n uint64, r *rand.Rand) perm {
	if n <= 1 {
		return perm{n: 1, a: 1, ainv: 1}
	}
	var a uint64
	for {
		// Prefer multipliers far from 0 and n so neighbours scatter.
		a = n/4 + r.Uint64N(n/2+1)
		if a > 0 && a < n && gcd(a, n) == 1 {
			break
		}
	}
	return perm{n: n, a: a, b: r.Uint64N(n), ainv: modInverse(a, n)}
}

// at maps i in [0, n) to its image.
func (p perm) at(i uint64) uint64 { return (p.a*i + p.b) % p.n }

// inv maps an image back to i: inv(at(i)) == i.
func (p perm) inv(y uint64) uint64 { return p.ainv * ((y + p.n - p.b) % p.n) % p.n }

func gcd(a, b uint64) uint64 {
	for b != 0 {
		a, b = b, a%b
	}
	return a
}

// modInverse returns x with a·x ≡ 1 (mod n). REQUIRES: gcd(a, n) == 1.
func modInverse(a, n uint64) uint64 {
	t, newT := int64(0), int64(1)
	r, newR := int64(n), int64(a)
	for newR != 0 {
		q := r / newR
		t, newT = newT, t-q*newT
		r, newR = newR, r-q*newR
	}
	if t < 0 {
		t += int64(n)
	}
	return uint64(t)
}

// catalog is the songs and artists. Artists are ranked by popularity;
// artist rank r owns the contiguous song positions [off[r], off[r+1]),
// and positions and ranks are scattered over ids by perms.
type catalog struct {
	songs, artists uint64
	off            []uint64  // len artists+1, off[0] = 0, off[artists] = songs
	artistCDF      []float64 // cumulative favourite-artist probability by rank; last is 1
	artistID       perm      // artist rank → id-1
	songID         perm      // song position → id-1
	popular        perm      // global popularity rank → song position
	zipf           *rand.Zipf

	// Guide tables narrow the binary searches to a bucket: cdfGuide[k]
	// is the rank u = k/guideSize falls on, offGuide[k] the rank owning
	// position k·songs/guideSize.
	cdfGuide, offGuide [guideSize + 1]uint64
}

const guideSize = 1024

func newCatalog(songs, artists uint64, r *rand.Rand) *catalog {
	c := &catalog{
		songs:     songs,
		artists:   artists,
		off:       make([]uint64, artists+1),
		artistCDF: make([]float64, artists),
		artistID:  newPerm(artists, r),
		songID:    newPerm(songs, r),
		popular:   newPerm(songs, r),
	}
	// Every artist owns one song; the rest go out in proportion to a Zipf
	// weight by rank, remainders to the top ranks.
	extra := songs - artists
	var sizeW, popW float64
	for i := range artists {
		sizeW += math.Pow(float64(i+1), -artistSizeS)
		popW += math.Pow(float64(i+1), -artistPopularity)
	}
	sizes := make([]uint64, artists)
	var given uint64
	for i := range artists {
		sizes[i] = 1 + uint64(float64(extra)*math.Pow(float64(i+1), -artistSizeS)/sizeW)
		given += sizes[i]
	}
	for i := uint64(0); given < songs; i = (i + 1) % artists {
		sizes[i]++
		given++
	}
	var acc float64
	for i := range artists {
		c.off[i+1] = c.off[i] + sizes[i]
		acc += math.Pow(float64(i+1), -artistPopularity) / popW
		c.artistCDF[i] = acc
	}
	c.artistCDF[artists-1] = 1
	for k := range uint64(guideSize + 1) {
		c.cdfGuide[k] = c.searchCDF(float64(k)/guideSize, 0, artists-1)
		c.offGuide[k] = c.searchOff(min(k*songs/guideSize, songs-1), 0, artists-1)
	}
	if songs > 1 {
		c.zipf = rand.NewZipf(r, songZipfS, 1, songs-1)
	}
	return c
}

// popularSong draws a song position from the global Zipf popularity.
func (c *catalog) popularSong() uint64 {
	if c.zipf == nil {
		return 0
	}
	return c.popular.at(c.zipf.Uint64())
}

// favouriteRank maps a uniform u in [0, 1) to an artist rank, skewed
// toward popular artists.
func (c *catalog) favouriteRank(u float64) uint64 {
	k := uint64(u * guideSize)
	return c.searchCDF(u, c.cdfGuide[k], c.cdfGuide[k+1])
}

// searchCDF returns the first rank in [lo, hi] whose cumulative
// probability exceeds u. REQUIRES: the answer is in [lo, hi].
func (c *catalog) searchCDF(u float64, lo, hi uint64) uint64 {
	for lo < hi {
		mid := (lo + hi) >> 1
		if u < c.artistCDF[mid] {
			hi = mid
		} else {
			lo = mid + 1
		}
	}
	return lo
}

// songOf picks a song position of artist rank r from a uniform u in
// [0, 1), skewed toward the artist's first songs (their hits).
func (c *catalog) songOf(r uint64, u float64) uint64 {
	n := c.off[r+1] - c.off[r]
	return c.off[r] + min(uint64(float64(n)*u*u*u), n-1)
}

// rankOf returns the artist rank owning song position pos.
func (c *catalog) rankOf(pos uint64) uint64 {
	k := pos * guideSize / c.songs
	return c.searchOff(pos, c.offGuide[k], c.offGuide[k+1])
}

// searchOff returns the last rank in [lo, hi] whose first position is at
// most pos. REQUIRES: the answer is in [lo, hi].
func (c *catalog) searchOff(pos, lo, hi uint64) uint64 {
	for lo < hi {
		mid := (lo + hi + 1) >> 1
		if c.off[mid] <= pos {
			lo = mid
		} else {
			hi = mid - 1
		}
	}
	return lo
}

// songIDOf and artistIDOf turn positions and ranks into 1-based ids.
func (c *catalog) songIDOf(pos uint64) int64  { return int64(c.songID.at(pos)) + 1 }
func (c *catalog) artistIDOf(r uint64) int64  { return int64(c.artistID.at(r)) + 1 }
func (c *catalog) positionOf(id int64) uint64 { return c.songID.inv(uint64(id - 1)) }

// artistOfSong returns the artist id owning song id.
func (c *catalog) artistOfSong(id int64) int64 {
	return c.artistIDOf(c.rankOf(c.positionOf(id)))
}
