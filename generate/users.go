package generate

import "math/bits"

// Users are not stored: every trait of a user is a pure function of the
// seed and the user id, so a Generator's memory does not grow with Users.

// Shape of the user base.
const (
	homeJitterDeg   = 0.08 // homes spread a few km around the city centre
	nearbyJitterDeg = 0.02 // listens away from home but in town
	moverPerMille   = 10   // users who move city once during the stream
	clusterUsers    = 50   // users per taste cluster, on average
	minCore         = 4    // core artists of a taste cluster
	maxCore         = 8    // INVARIANT: ≤ 8, so a user's kept core fits a uint8
	minKeepP        = 0.6  // per user: probability of keeping a core artist
	maxKeepP        = 1.0
	minFavouriteP   = 0.75 // share of a user's listens on their taste cluster's artists
	maxFavouriteP   = 0.95
)

// Salts that separate the hashes derived from one user hash.
const (
	saltLat     = 0x9e3779b97f4a7c15
	saltLng     = 0xc2b2ae3d27d4eb4f
	saltMove    = 0x165667b19e3779f9
	saltTaste   = 0xd6e8feb86659fd93
	saltMoveTo  = 0xa0761d6478bd642f
	saltCluster = 0x2545f4914f6cdd1d
	saltCore    = 0x5851f42d4c957f2d
	saltKeep    = 0xff51afd7ed558ccd
)

// profile is what a user looks like at one point of the stream.
type profile struct {
	id       int64
	city     int     // index into cities of the current home
	lat, lng float64 // current home
	taste    uint64  // seeds the taste cluster and the favourite artists
	favP     float64 // probability that a listen is of a favourite artist
}

// profile returns user id as of event index i.
func (g *Generator) profile(id int64, i int) profile {
	h := mix(uint64(id) ^ g.userSalt)
	c := g.cities.pick(uint32(h))
	p := profile{id: id, city: c}
	p.lat, p.lng = jitter(c, mix(h^saltLat), mix(h^saltLng), homeJitterDeg)
	if m := mix(h ^ saltMove); m%1000 < moverPerMille {
		moveAt := int(float64(g.cfg.Events) * (0.2 + float64(0.6*unit(m))))
		if i >= moveAt {
			to := mix(m ^ saltMoveTo)
			c2 := g.cities.pick(uint32(to))
			if c2 == c {
				c2 = (c + 1) % len(cities)
			}
			p.city = c2
			p.lat, p.lng = jitter(c2, mix(to^saltLat), mix(to^saltLng), homeJitterDeg)
		}
	}
	t := mix(h ^ saltTaste)
	p.taste = t
	p.favP = minFavouriteP + float64((maxFavouriteP-minFavouriteP)*unit(mix(t)))
	return p
}

// moves reports whether user id moves city during the stream, and at which
// event index.
func (g *Generator) moves(id int64) (bool, int) {
	h := mix(uint64(id) ^ g.userSalt)
	m := mix(h ^ saltMove)
	return m%1000 < moverPerMille, int(float64(g.cfg.Events) * (0.2 + float64(0.6*unit(m))))
}

// Taste: users fall into taste clusters of about clusterUsers users. A
// cluster has a core of minCore…maxCore artists; a user keeps each core
// artist with a probability of its own, minKeepP…maxKeepP, and those are
// its favourite artists. So users of one cluster share most favourites and
// users of different clusters few. Clusters are not stored either: a
// cluster's core is a pure function of the seed and the cluster index.

// cluster returns the taste cluster of a user of the given taste.
func (g *Generator) cluster(taste uint64) uint64 {
	return mix(taste^saltCluster) % g.clusters
}

// core returns the hash of taste cluster c, which seeds its core artists,
// and their number.
func (g *Generator) core(c uint64) (h, n uint64) {
	h = mix(g.userSalt ^ (c+1)*saltCore)
	return h, minCore + h%(maxCore-minCore+1)
}

// coreArtist returns the artist rank of core artist j of the cluster of
// hash h: even j are drawn with the popularity skew of favourite artists,
// odd j uniformly over all artists (niche ones, mostly).
func (g *Generator) coreArtist(h, j uint64) uint64 {
	a := mix(h + (j+1)*saltLat)
	if j%2 == 1 {
		r, _ := bits.Mul64(a, g.cat.artists)
		return r
	}
	return g.cat.favouriteRank(unit(a))
}

// kept returns the hash of p's cluster and the core artists p keeps as
// favourites, bit j for core artist j: at least one.
func (g *Generator) kept(p *profile) (h uint64, kept uint8) {
	h, n := g.core(g.cluster(p.taste))
	k := mix(p.taste ^ saltKeep)
	keepP := minKeepP + float64((maxKeepP-minKeepP)*unit(k))
	// One byte of mix(k) per core artist decides whether p keeps it.
	below, draws := uint64(256*keepP), mix(k)
	for j := range n {
		if draws>>(8*j)&0xff < below {
			kept |= 1 << j
		}
	}
	if kept == 0 {
		kept = 1 << (k % n)
	}
	return h, kept
}

// favourite draws one of p's favourite artists, uniformly, and returns its
// rank.
func (g *Generator) favourite(p *profile) uint64 {
	h, kept := g.kept(p)
	for range g.below(uint64(bits.OnesCount8(kept))) {
		kept &= kept - 1
	}
	return g.coreArtist(h, uint64(bits.TrailingZeros8(kept)))
}

// jitter places a point around city c using two random words, up to deg
// degrees of latitude away (triangular, so most points are close).
func jitter(c int, a, b uint64, deg float64) (lat, lng float64) {
	ct := &cities[c]
	// NB: explicit conversions keep the compiler from fusing multiply-adds
	// (it does on arm64), so coordinates do not depend on the CPU.
	return ct.lat + float64(deg*tri(a)), ct.lng + float64(deg*ct.lngScale*tri(b))
}

// tri maps 64 random bits to a triangular value in (-1, 1).
func tri(h uint64) float64 {
	return (float64(h&0xffffffff)+float64(h>>32))/(1<<32) - 1
}
