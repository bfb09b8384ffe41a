package fans

import (
	"cmp"
	"slices"
	"time"

	"github.com/kappa-stream/kappa/events"
	"github.com/uber/h3-go/v4"
)

// Processor applies listens to users' fan-zones state. It holds only the
// configuration and is safe for concurrent use.
type Processor struct {
	res      []int
	minPlays uint32
	delay    time.Duration
	// cell is h3.LatLngToCell; tests replace it to count calls.
	cell func(lat, lng float64, res int) h3.Cell
}

// NewProcessor returns a Processor for cfg, with the defaults of [Config]
// for its zero values, or cfg's [Config.Validate] error.
func NewProcessor(cfg Config) (*Processor, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	return &Processor{res: cfg.Resolutions, minPlays: uint32(cfg.MinPlays), delay: cfg.Delay, cell: latLngToCell}, nil
}

func latLngToCell(lat, lng float64, res int) h3.Cell {
	return h3.LatLngToCell(h3.NewLatLng(lat, lng), res)
}

// Apply applies one valid listen of user u to u and reports whether it
// made stage 2's counts of u out of date (a [Processor.Publish] of u then
// sends the net change):
//
//   - If l has a location and a ts not older than u's home (equal ts: l is
//     later in the log, so it wins), l's location becomes the home. An
//     older listen leaves the home alone. A move is out of date when u is a
//     fan of some artist.
//   - l counts as a play of its artist; the play that reaches MinPlays
//     makes u a fan, out of date when u has a home.
//
// Apply does no H3 work: Publish computes the cells of a home that moved.
//
// REQUIRES: l is valid (events.Decoder's rules) and is u's (l.UserID); u
// was built by a Processor with the same Config.
func (p *Processor) Apply(u *User, l *events.Listen) (pending bool) {
	if u.v1 {
		p.upgrade(u)
	}
	if l.HasLoc && (!u.hasHome || l.TS >= u.ts) {
		moved := !u.hasHome || l.Lat != u.lat || l.Lng != u.lng
		u.hasHome, u.ts, u.lat, u.lng = true, l.TS, l.Lat, l.Lng
		u.changed = true
		pending = moved && p.isFan(u)
	}
	i, ok := slices.BinarySearchFunc(u.artists, l.ArtistID, func(a plays, id int64) int {
		return cmp.Compare(a.artist, id)
	})
	if !ok {
		u.artists = slices.Insert(u.artists, i, plays{artist: l.ArtistID})
	}
	a := &u.artists[i]
	if a.n < p.minPlays {
		a.n++
		u.changed = true
		pending = pending || (a.n == p.minPlays && u.hasHome)
	}
	return pending
}

// Publish brings stage 2's counts of u up to date with u's state: it
// appends to dst the deltas from what stage 2 counts of u (the fans
// counted at the published home's cells) to what u's state says (every
// fan at the home's cells), and returns the extended slice; u's home and
// fans become published. Computed as sets of cells, not per resolution, so
// that a stored user whose cells are at other resolutions still nets out
// in stage 2. The cells are computed only when the home moved since it was
// published and u is a fan of some artist: a user who went away and came
// back sends nothing.
//
// REQUIRES: u was built by a Processor with the same Config.
func (p *Processor) Publish(u *User, dst []Delta) []Delta {
	if u.v1 {
		p.upgrade(u)
	}
	if !u.hasHome || !p.isFan(u) {
		return dst // NB: no fan is counted before the first home and fandom
	}
	var buf, gone, came [maxCells]h3.Cell
	next := u.cells
	if !u.published || u.lat != u.pubLat || u.lng != u.pubLng {
		next = buf[:len(p.res)]
		for i, r := range p.res {
			next[i] = p.cell(u.lat, u.lng, r)
		}
	}
	ng, nc := 0, 0
	for _, c := range u.cells { // NB: empty when not published
		if !slices.Contains(next, c) {
			gone[ng] = c
			ng++
		}
	}
	for _, c := range next {
		if !slices.Contains(u.cells, c) {
			came[nc] = c
			nc++
		}
	}
	for i := range u.artists {
		a := &u.artists[i]
		switch {
		case a.n < p.minPlays:
		case a.counted:
			for _, c := range gone[:ng] {
				dst = append(dst, Delta{Artist: a.artist, Res: resolution(c), Cell: c, N: -1})
			}
			for _, c := range came[:nc] {
				dst = append(dst, Delta{Artist: a.artist, Res: resolution(c), Cell: c, N: 1})
			}
		default:
			for _, c := range next {
				dst = append(dst, Delta{Artist: a.artist, Res: resolution(c), Cell: c, N: 1})
			}
			a.counted = true
			u.changed = true
		}
	}
	if ng+nc > 0 || !u.published || u.lat != u.pubLat || u.lng != u.pubLng {
		u.published, u.pubLat, u.pubLng = true, u.lat, u.lng
		u.cells = append(u.cells[:0], next...)
		u.changed = true
	}
	return dst
}

// isFan reports whether u is a fan of some artist.
func (p *Processor) isFan(u *User) bool {
	return slices.ContainsFunc(u.artists, func(a plays) bool { return a.n >= p.minPlays })
}

// upgrade sets the counted flags of a user decoded from the version-1
// form, which counted every fan at once: all its fans are counted at its
// cells when it has a home.
func (p *Processor) upgrade(u *User) {
	for i := range u.artists {
		u.artists[i].counted = u.published && u.artists[i].n >= p.minPlays
	}
	u.v1 = false
}
