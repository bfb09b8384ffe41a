package generate

// Users are not stored: every trait of a user is a pure function of the
// seed and the user id, so a Generator's memory does not grow with Users.

// Shape of the user base.
const (
	homeJitterDeg   = 0.08 // homes spread a few km around the city centre
	nearbyJitterDeg = 0.02 // listens away from home but in town
	moverPerMille   = 10   // users who move city once during the stream
	minFavourites   = 2
	maxFavourites   = 5
	minFavouriteP   = 0.45 // share of a user's listens on favourite artists
	maxFavouriteP   = 0.90
)

// Salts that separate the hashes derived from one user hash.
const (
	saltLat    = 0x9e3779b97f4a7c15
	saltLng    = 0xc2b2ae3d27d4eb4f
	saltMove   = 0x165667b19e3779f9
	saltTaste  = 0xd6e8feb86659fd93
	saltMoveTo = 0xa0761d6478bd642f
)

// profile is what a user looks like at one point of the stream.
type profile struct {
	id       int64
	city     int     // index into cities of the current home
	lat, lng float64 // current home
	taste    uint64  // seeds the favourite artists
	nfav     uint64  // number of favourite artists
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
	p.nfav = minFavourites + (t>>32)%(maxFavourites-minFavourites+1)
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

// favourite returns the artist rank of the user's j-th favourite artist.
func (g *Generator) favourite(p *profile, j uint64) uint64 {
	return g.cat.favouriteRank(unit(mix(p.taste + (j+1)*saltLat)))
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
