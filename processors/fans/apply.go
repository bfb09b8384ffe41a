package fans

import (
	"cmp"
	"slices"

	"github.com/kappa-stream/kappa/events"
	"github.com/uber/h3-go/v4"
)

// Processor applies listens to users' fan-zones state. It holds only the
// configuration and is safe for concurrent use.
type Processor struct {
	res      []int
	minPlays uint32
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
	return &Processor{res: cfg.Resolutions, minPlays: uint32(cfg.MinPlays), cell: latLngToCell}, nil
}

func latLngToCell(lat, lng float64, res int) h3.Cell {
	return h3.LatLngToCell(h3.NewLatLng(lat, lng), res)
}

// Apply applies one valid listen of user u to u and appends to dst the
// deltas it causes, returning the extended slice:
//
//   - If l has a location and a ts not older than u's home (equal ts: l is
//     later in the log, so it wins), l's location becomes the home. If the
//     location differs from the old home, the home cells are computed (the
//     only H3 work, so a listen from the known home costs none) and, for
//     every artist u is a fan of, each resolution whose cell changed gets
//     −1 at the old cell and +1 at the new one; a first home gets only the
//     +1s. An older listen leaves the home alone.
//   - l counts as a play of its artist; the play that reaches MinPlays makes
//     u a fan and, once u has a home, adds +1 at each home cell (after any
//     move by l itself).
//
// REQUIRES: l is valid (events.Decoder's rules) and is u's (l.UserID); u
// was built by a Processor with the same Config.
func (p *Processor) Apply(u *User, l *events.Listen, dst []Delta) []Delta {
	if l.HasLoc && (!u.hasHome || l.TS >= u.ts) {
		dst = p.move(u, l, dst)
		u.changed = true
	}
	i, ok := slices.BinarySearchFunc(u.artists, l.ArtistID, func(a plays, id int64) int {
		return cmp.Compare(a.artist, id)
	})
	if !ok {
		u.artists = slices.Insert(u.artists, i, plays{artist: l.ArtistID})
	}
	a := &u.artists[i]
	if a.n >= p.minPlays {
		return dst
	}
	a.n++
	u.changed = true
	if a.n == p.minPlays {
		for _, c := range u.cells { // NB: empty without a home
			dst = append(dst, Delta{Artist: a.artist, Res: resolution(c), Cell: c, N: 1})
		}
	}
	return dst
}

// move makes l's location u's home.
//
// REQUIRES: l.HasLoc, and l.TS ≥ u.ts or u has no home.
func (p *Processor) move(u *User, l *events.Listen, dst []Delta) []Delta {
	u.ts = l.TS
	if u.hasHome && l.Lat == u.lat && l.Lng == u.lng {
		return dst
	}
	var buf, gone, came [maxCells]h3.Cell
	next := buf[:len(p.res)]
	for i, r := range p.res {
		next[i] = p.cell(l.Lat, l.Lng, r)
	}
	// NB: compared as sets, not per resolution index, so that a stored user
	// whose cells are at other resolutions still nets out in stage 2.
	ng, nc := 0, 0
	for _, c := range u.cells {
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
	if ng+nc > 0 {
		for _, a := range u.artists {
			if a.n < p.minPlays {
				continue
			}
			for _, c := range gone[:ng] {
				dst = append(dst, Delta{Artist: a.artist, Res: resolution(c), Cell: c, N: -1})
			}
			for _, c := range came[:nc] {
				dst = append(dst, Delta{Artist: a.artist, Res: resolution(c), Cell: c, N: 1})
			}
		}
	}
	u.hasHome, u.lat, u.lng = true, l.Lat, l.Lng
	u.cells = append(u.cells[:0], next...)
	return dst
}
