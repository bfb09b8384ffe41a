package fans

import (
	"cmp"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/uber/h3-go/v4"

	"github.com/kappa-stream/kappa/events"
)

// fanCounts recomputes the fan counts of a log from scratch, straight from
// the definitions: a user's home is the location of their listen with the
// greatest ts (later in the log on a tie); a fan has ≥ minPlays plays of
// the artist; each fan counts once at LatLngToCell(home, r) for each r.
// It returns them as merged deltas: by (artist, res, cell), nonzero. (It
// counts in a map and sorts by its own order, so that the expected counts
// do not go through sumDeltas, which tests compare them with.)
func fanCounts(log []events.Listen, res []int, minPlays int) []Delta {
	type home struct {
		ok bool
		ts int64
		at loc
	}
	homes := map[int64]home{}
	plays := map[[2]int64]int{}
	for _, l := range log {
		plays[[2]int64{l.UserID, l.ArtistID}]++
		if h := homes[l.UserID]; l.HasLoc && (!h.ok || l.TS >= h.ts) {
			homes[l.UserID] = home{true, l.TS, loc{l.Lat, l.Lng}}
		}
	}
	type cellKey struct {
		artist int64
		res    int
		cell   h3.Cell
	}
	counts := map[cellKey]int64{}
	for ua, n := range plays {
		h := homes[ua[0]]
		if n < minPlays || !h.ok {
			continue
		}
		for _, r := range res {
			counts[cellKey{ua[1], r, cellOf(h.at, r)}]++
		}
	}
	ds := make([]Delta, 0, len(counts))
	for k, n := range counts {
		ds = append(ds, Delta{Artist: k.artist, Res: k.res, Cell: k.cell, N: n})
	}
	slices.SortFunc(ds, func(a, b Delta) int {
		return cmp.Or(cmp.Compare(a.Artist, b.Artist), cmp.Compare(a.Res, b.Res), cmp.Compare(a.Cell, b.Cell))
	})
	return ds
}

// TestModel checks the invariants of the package on random logs (several
// users, listens out of ts order, ties, repeated and nearby locations),
// with users published at random moments:
//   - a user Apply did not report pending since their last publication
//     publishes nothing;
//   - once every user is published, the sum of all deltas equals the fan
//     counts recomputed from scratch.
//
// The user states go through their binary form between steps, as they do
// through the store.
func TestModel(t *testing.T) {
	centers := []loc{berlin, paris, {-33.8688, 151.2093}, {0, 179.9999}, {89.9, 0}}
	seeds := 300
	if testing.Short() {
		seeds = 30
	}
	for seed := range seeds {
		r := rand.New(rand.NewPCG(uint64(seed), 7))
		cfg := Config{MinPlays: 1 + r.IntN(3)}
		if r.IntN(3) == 0 {
			cfg.Resolutions = []int{0, 7, 10, 15}
		}
		p, err := NewProcessor(cfg)
		if err != nil {
			t.Fatal(err)
		}
		// Each user moves among a few places: centers and points near them,
		// so that some moves change only the fine resolutions.
		var places []loc
		for range 4 {
			c := centers[r.IntN(len(centers))]
			d := []float64{0, 1e-4, 2e-3, 0.05}[r.IntN(4)]
			places = append(places, loc{min(90, c.lat+d*r.Float64()), min(180, c.lng+d*r.Float64())})
		}
		stored := map[int64][]byte{}
		pending := map[int64]bool{}
		load := func(id int64) *User {
			var u User
			if b, ok := stored[id]; ok {
				if err := u.Decode(b); err != nil {
					t.Fatalf("seed %d: Decode: %v", seed, err)
				}
			}
			return &u
		}
		var log []events.Listen
		var sum []Delta
		publish := func(id int64) {
			u := load(id)
			ds := p.Publish(u, nil)
			if !pending[id] && len(ds) > 0 {
				t.Fatalf("seed %d: user %d, not pending, published %v", seed, id, ds)
			}
			sum = sumDeltas(append(sum, ds...))
			stored[id] = u.Append(nil)
			delete(pending, id)
		}
		for range 80 {
			l := events.Listen{UserID: 1 + r.Int64N(3), SongID: 1, ArtistID: 1 + r.Int64N(6), TS: r.Int64N(20)}
			if r.IntN(3) > 0 {
				at := places[r.IntN(len(places))]
				l.HasLoc, l.Lat, l.Lng = true, at.lat, at.lng
			}
			u := load(l.UserID)
			if p.Apply(u, &l) {
				pending[l.UserID] = true
			}
			stored[l.UserID] = u.Append(nil)
			log = append(log, l)
			if r.IntN(4) == 0 {
				publish(1 + r.Int64N(3))
			}
		}
		for id := range int64(3) {
			publish(id + 1)
		}
		if want := fanCounts(log, p.res, cfg.MinPlays); !slices.Equal(sum, want) {
			t.Fatalf("seed %d: summed deltas\n %v\nwant\n %v", seed, sum, want)
		}
	}
}
