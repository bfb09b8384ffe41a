package fans

import (
	"cmp"
	"fmt"
	"slices"
	"testing"

	"github.com/kappa-stream/kappa/events"
	"github.com/uber/h3-go/v4"
)

type loc struct{ lat, lng float64 }

var (
	berlin = loc{52.52, 13.405}
	paris  = loc{48.8566, 2.3522}
)

// nearBerlin is a point near berlin whose cells differ from berlin's at
// resolutions 8 and 9 only (of 5 … 9).
var nearBerlin = func() loc {
	for i := 1; i < 1000; i++ {
		l := loc{berlin.lat + float64(i)*0.0003, berlin.lng}
		if cellOf(l, 7) == cellOf(berlin, 7) && cellOf(l, 8) != cellOf(berlin, 8) && cellOf(l, 9) != cellOf(berlin, 9) &&
			cellOf(l, 5) == cellOf(berlin, 5) && cellOf(l, 6) == cellOf(berlin, 6) {
			return l
		}
	}
	panic("no point near berlin changes only resolutions 8 and 9")
}()

func cellOf(l loc, res int) h3.Cell { return h3.LatLngToCell(h3.NewLatLng(l.lat, l.lng), res) }

// listen returns a listen of user 1; at == nil means no location.
func listen(artist, ts int64, at *loc) events.Listen {
	l := events.Listen{UserID: 1, SongID: 1, ArtistID: artist, TS: ts}
	if at != nil {
		l.HasLoc, l.Lat, l.Lng = true, at.lat, at.lng
	}
	return l
}

// fanAt returns the deltas of n fans of each artist at the cells of l.
func fanAt(l loc, res []int, n int64, artists ...int64) []Delta {
	var ds []Delta
	for _, a := range artists {
		for _, r := range res {
			ds = append(ds, Delta{Artist: a, Res: r, Cell: cellOf(l, r), N: n})
		}
	}
	return ds
}

// moved returns the deltas of artists' fans moving from one location to
// another: −1 old, +1 new at the resolutions whose cell changed.
func moved(from, to loc, res []int, artists ...int64) []Delta {
	var ds []Delta
	for _, a := range artists {
		for _, r := range res {
			if o, n := cellOf(from, r), cellOf(to, r); o != n {
				ds = append(ds, Delta{Artist: a, Res: r, Cell: o, N: -1}, Delta{Artist: a, Res: r, Cell: n, N: 1})
			}
		}
	}
	return ds
}

func sortDeltas(ds []Delta) []Delta {
	ds = slices.Clone(ds)
	slices.SortFunc(ds, func(a, b Delta) int {
		if c := compareDeltas(a, b); c != 0 {
			return c
		}
		return cmp.Compare(a.N, b.N)
	})
	return ds
}

// countingProcessor returns a processor whose H3 calls are counted in *n.
func countingProcessor(t testing.TB, cfg Config, n *int) *Processor {
	t.Helper()
	p, err := NewProcessor(cfg)
	if err != nil {
		t.Fatal(err)
	}
	p.cell = func(lat, lng float64, res int) h3.Cell {
		*n++
		return latLngToCell(lat, lng, res)
	}
	return p
}

// publish is a TestApply step that publishes the user.
var publish = events.Listen{}

func TestApply(t *testing.T) {
	all := []int{5, 6, 7, 8, 9}
	type step struct {
		l       events.Listen // publish: Publish, else Apply
		pending bool          // Apply's answer
		want    []Delta       // Publish's deltas
		calls   int           // H3 calls
	}
	cat := func(dss ...[]Delta) []Delta { return slices.Concat(dss...) }
	for _, tc := range []struct {
		name  string
		cfg   Config
		steps []step
	}{
		{"new fan with home", Config{}, []step{
			{l: listen(1, 100, &berlin), pending: true},
			{l: publish, want: fanAt(berlin, all, 1, 1), calls: 5},
			{l: listen(1, 200, &berlin)},
			{l: publish},
			{l: listen(2, 300, nil), pending: true},
			{l: publish, want: fanAt(berlin, all, 1, 2)},
		}},
		{"fan before home, then home arrives", Config{}, []step{
			{l: listen(1, 100, nil)},
			{l: listen(2, 50, nil)},
			{l: publish},
			{l: listen(3, 10, &paris), pending: true},
			{l: publish, want: fanAt(paris, all, 1, 1, 2, 3), calls: 5},
			{l: listen(4, 20, nil), pending: true},
			{l: publish, want: fanAt(paris, all, 1, 4)},
		}},
		{"move within all resolutions", Config{}, []step{
			{l: listen(1, 100, &berlin), pending: true},
			{l: publish, want: fanAt(berlin, all, 1, 1), calls: 5},
			{l: listen(1, 200, &paris), pending: true},
			{l: publish, want: moved(berlin, paris, all, 1), calls: 5},
		}},
		{"move changes only fine resolutions", Config{}, []step{
			{l: listen(1, 100, &berlin), pending: true},
			{l: publish, want: fanAt(berlin, all, 1, 1), calls: 5},
			{l: listen(1, 200, &nearBerlin), pending: true},
			{l: publish, want: moved(berlin, nearBerlin, all, 1), calls: 5},
		}},
		{"move back, published between", Config{}, []step{
			{l: listen(1, 100, &berlin), pending: true},
			{l: publish, want: fanAt(berlin, all, 1, 1), calls: 5},
			{l: listen(1, 200, &paris), pending: true},
			{l: publish, want: moved(berlin, paris, all, 1), calls: 5},
			{l: listen(1, 300, &berlin), pending: true},
			{l: publish, want: moved(paris, berlin, all, 1), calls: 5},
		}},
		{"away and back before publishing sends nothing", Config{}, []step{
			{l: listen(1, 100, &berlin), pending: true},
			{l: publish, want: fanAt(berlin, all, 1, 1), calls: 5},
			{l: listen(1, 200, &paris), pending: true},
			{l: listen(1, 300, &nearBerlin), pending: true},
			{l: listen(1, 400, &berlin), pending: true},
			{l: publish},
		}},
		{"moves before publishing send the net move", Config{}, []step{
			{l: listen(1, 100, &berlin), pending: true},
			{l: publish, want: fanAt(berlin, all, 1, 1), calls: 5},
			{l: listen(1, 200, &nearBerlin), pending: true},
			{l: listen(1, 300, &paris), pending: true},
			{l: publish, want: moved(berlin, paris, all, 1), calls: 5},
		}},
		{"late older event does not move", Config{}, []step{
			{l: listen(1, 100, &berlin), pending: true},
			{l: publish, want: fanAt(berlin, all, 1, 1), calls: 5},
			{l: listen(2, 99, &paris), pending: true},
			{l: publish, want: fanAt(berlin, all, 1, 2)},
			{l: listen(1, 50, &nearBerlin)},
			{l: publish},
			{l: listen(1, 101, &paris), pending: true},
			{l: publish, want: moved(berlin, paris, all, 1, 2), calls: 5},
		}},
		{"equal ts moves (later in log wins)", Config{}, []step{
			{l: listen(1, 100, &berlin), pending: true},
			{l: publish, want: fanAt(berlin, all, 1, 1), calls: 5},
			{l: listen(1, 100, &paris), pending: true},
			{l: listen(1, 100, &paris)},
			{l: publish, want: moved(berlin, paris, all, 1), calls: 5},
		}},
		{"threshold MinPlays=3", Config{MinPlays: 3}, []step{
			{l: listen(1, 100, &berlin)},
			{l: listen(1, 100, nil)},
			{l: listen(2, 100, nil)},
			{l: publish},
			{l: listen(1, 90, &paris), pending: true},
			{l: publish, want: fanAt(berlin, all, 1, 1), calls: 5},
			{l: listen(1, 110, nil)},
			{l: listen(2, 120, &paris), pending: true},
			{l: publish, want: moved(berlin, paris, all, 1), calls: 5},
			{l: listen(2, 130, nil), pending: true},
			{l: publish, want: fanAt(paris, all, 1, 2)},
		}},
		{"a move without fandom waits for the first fandom", Config{MinPlays: 2}, []step{
			{l: listen(1, 10, &berlin)},
			{l: listen(2, 20, &paris)},
			{l: listen(1, 30, nil), pending: true},
			{l: publish, want: fanAt(paris, all, 1, 1), calls: 5},
		}},
		{"multiple artists", Config{MinPlays: 2}, []step{
			{l: listen(3, 10, nil)},
			{l: listen(1, 10, nil)},
			{l: listen(1, 10, nil)},
			{l: listen(2, 10, nil)},
			{l: listen(2, 10, nil)},
			{l: listen(3, 10, &berlin), pending: true},
			{l: publish, want: fanAt(berlin, all, 1, 1, 2, 3), calls: 5},
			{l: listen(4, 20, &paris), pending: true},
			{l: listen(4, 20, nil), pending: true},
			{l: publish, want: cat(moved(berlin, paris, all, 1, 2, 3), fanAt(paris, all, 1, 4)), calls: 5},
		}},
		{"move and new fan in one listen", Config{Resolutions: []int{0, 9, 15}}, []step{
			{l: listen(1, 10, &berlin), pending: true},
			{l: publish, want: fanAt(berlin, []int{0, 9, 15}, 1, 1), calls: 3},
			{l: listen(2, 20, &paris), pending: true},
			{l: publish, want: cat(moved(berlin, paris, []int{0, 9, 15}, 1), fanAt(paris, []int{0, 9, 15}, 1, 2)), calls: 3},
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var calls int
			p := countingProcessor(t, tc.cfg, &calls)
			var u User
			for i, s := range tc.steps {
				calls = 0
				if s.l == publish {
					got := p.Publish(&u, nil)
					if g, w := sortDeltas(got), sortDeltas(s.want); !slices.Equal(g, w) {
						t.Errorf("step %d: deltas\n got %v\nwant %v", i, g, w)
					}
				} else if got := p.Apply(&u, &s.l); got != s.pending {
					t.Errorf("step %d: Apply = %t, want %t", i, got, s.pending)
				}
				if calls != s.calls {
					t.Errorf("step %d: %d H3 calls, want %d", i, calls, s.calls)
				}
				// The state survives its binary form.
				var v User
				if err := v.Decode(u.Append(nil)); err != nil {
					t.Fatalf("step %d: Decode(Append): %v", i, err)
				}
				u = v
			}
		})
	}
}

func TestNearBerlin(t *testing.T) {
	got := moved(berlin, nearBerlin, []int{5, 6, 7, 8, 9}, 1)
	if len(got) != 4 || got[0].Res != 8 || got[2].Res != 9 {
		t.Fatalf("moved(berlin, nearBerlin) = %v, want changes at 8 and 9", got)
	}
}

func TestUserStringHidesLocation(t *testing.T) {
	p, _ := NewProcessor(Config{})
	var u User
	l := listen(1, 1, &loc{12.345678, 98.765432})
	p.Apply(&u, &l)
	p.Publish(&u, nil)
	for _, s := range []string{fmt.Sprint(u), fmt.Sprintf("%+v", u), fmt.Sprintf("%#v", u), fmt.Sprintf("%v", &u)} {
		if want := "fans.User{home: true, cells: 5, artists: 1}"; s != want {
			t.Errorf("formatted user = %q, want %q", s, want)
		}
	}
}
