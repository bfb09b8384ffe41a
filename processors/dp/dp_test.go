package dp

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/uber/h3-go/v4"

	"github.com/kappa-stream/kappa/events"
	"github.com/kappa-stream/kappa/processors"
	"github.com/kappa-stream/kappa/processors/rollups"
	"github.com/kappa-stream/kappa/state"
	"github.com/kappa-stream/kappa/topology"
)

const day0 = 20_000 // a UTC day number (2024-10-04)

// pipeline runs both stages over in-memory stores, committing each
// interval's changes as the runtime does; parts are made anew from the
// stores every interval when fresh is set (as after a restart).
type pipeline struct {
	t       *testing.T
	p       processors.Processor
	cfg     Config
	parts   int32
	s1, s2  []*state.Store
	fresh   bool
	stage1  []processors.Stage1
	pending [][]*events.Listen // per source, since the last interval
}

func newPipeline(t *testing.T, parts int32, opts string, fresh bool) *pipeline {
	t.Helper()
	cfg := processors.NewConfig([]processors.Spec{Spec})
	if err := json.Unmarshal([]byte(opts), &cfg); err != nil {
		t.Fatal(err)
	}
	p, err := cfg.Options(0).New(processors.Env{Repartition: "r", Partitions: parts})
	if err != nil {
		t.Fatal(err)
	}
	pl := &pipeline{t: t, p: p, cfg: *ConfigOf(p), parts: parts, fresh: fresh,
		stage1: make([]processors.Stage1, parts), pending: make([][]*events.Listen, parts)}
	for range parts {
		pl.s1 = append(pl.s1, openMem(t))
		pl.s2 = append(pl.s2, openMem(t))
	}
	return pl
}

func openMem(t testing.TB) *state.Store {
	t.Helper()
	s, err := state.Open("s", state.WithFS(vfs.NewMem()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func apply(t testing.TB, s *state.Store, out *topology.Output) {
	t.Helper()
	b := s.NewBatch()
	for k, v := range out.Changes() {
		var err error
		if v == nil {
			err = b.Delete(k)
		} else {
			err = b.Set(k, v)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	if err := b.Commit(false); err != nil {
		t.Fatal(err)
	}
}

// add queues a listen for source partition src.
func (pl *pipeline) add(src int32, l events.Listen) {
	pl.pending[src] = append(pl.pending[src], &l)
}

// interval runs the queued listens through stage 1 and its records
// through stage 2.
func (pl *pipeline) interval() {
	t := pl.t
	var recs topology.Output
	for src := range pl.parts {
		if pl.stage1[src] == nil || pl.fresh {
			s1, err := pl.p.NewStage1(src, pl.s1[src])
			if err != nil {
				t.Fatal(err)
			}
			pl.stage1[src] = s1
		}
		for _, l := range pl.pending[src] {
			if err := pl.stage1[src].Add(l); err != nil {
				t.Fatal(err)
			}
		}
		pl.pending[src] = pl.pending[src][:0]
		var out topology.Output
		if err := pl.stage1[src].Prepare(&out, false); err != nil {
			t.Fatal(err)
		}
		for _, r := range out.Records() {
			recs.SendTo(r.Topic, r.Partition, r.Key, r.Value)
		}
		apply(t, pl.s1[src], &out)
	}
	for part := range pl.parts {
		s2, err := pl.p.NewStage2(part, pl.s2[part])
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range recs.Records() {
			if r.Partition == part {
				if err := s2.Process(r); err != nil {
					t.Fatal(err)
				}
			}
		}
		var out topology.Output
		if err := s2.Prepare(&out); err != nil {
			t.Fatal(err)
		}
		apply(t, pl.s2[part], &out)
	}
}

// cell reads one (kind, id, day) from the store of its partition.
func (pl *pipeline) counts(k Kind, id int64, day int32) map[events.Country]int64 {
	key := rollups.PartitionKey(nil, k.Entity(), id)
	m, err := Counts(pl.s2[topology.KeyPartition(key, int(pl.parts))], k, id, day)
	if err != nil {
		pl.t.Fatal(err)
	}
	return m
}

// fans reads one fan cell through FanCells, from the artist's partition.
func (pl *pipeline) fans(artist int64, day int32, cell h3.Cell) int64 {
	key := rollups.PartitionKey(nil, rollups.Artist, artist)
	m, err := FanCells(pl.s2[topology.KeyPartition(key, int(pl.parts))], artist, day, []h3.Cell{cell})
	if err != nil {
		pl.t.Fatal(err)
	}
	return m[cell]
}

type refCell struct {
	kind    Kind
	id      int64
	day     int32
	country events.Country
	cell    h3.Cell
}

// reference bounds listens as the package documents it, from scratch:
// per source in log order, a listen whose day ended Grace or more before
// the largest event time before it is dropped; per user and day the
// first MaxItems songs and artists count, a song's plays up to MaxPlays,
// in the country of the listen that brought it.
func reference(cfg Config, bySource [][]events.Listen) map[refCell]int64 {
	out := map[refCell]int64{}
	for _, ls := range bySource {
		var maxTS int64 = -1
		songs := map[string]map[int64]int{}                  // user|day → song → plays
		songCountry := map[string]map[int64]events.Country{} // user|day → song → country
		artists := map[string]map[int64]bool{}
		type loc struct {
			ts       int64
			lat, lng float64
		}
		homes := map[int64]loc{}
		for _, l := range ls {
			day := int32(l.TS / 86_400_000)
			late := maxTS >= 0 && int64(day+1)*86_400_000+cfg.Grace.Milliseconds() <= maxTS
			maxTS = max(maxTS, l.TS)
			if h, ok := homes[l.UserID]; l.HasLoc && (!ok || l.TS >= h.ts) {
				homes[l.UserID] = loc{l.TS, l.Lat, l.Lng}
			}
			if late {
				continue
			}
			ud := fmt.Sprint(l.UserID, "|", day)
			if songs[ud] == nil {
				songs[ud], songCountry[ud], artists[ud] = map[int64]int{}, map[int64]events.Country{}, map[int64]bool{}
			}
			if n, ok := songs[ud][l.SongID]; ok {
				if n < cfg.MaxPlays {
					songs[ud][l.SongID]++
					out[refCell{kind: SongPlays, id: l.SongID, day: day, country: songCountry[ud][l.SongID]}]++
				}
			} else if len(songs[ud]) < cfg.MaxItems {
				songs[ud][l.SongID], songCountry[ud][l.SongID] = 1, l.Country
				out[refCell{kind: SongListeners, id: l.SongID, day: day, country: l.Country}]++
				out[refCell{kind: SongPlays, id: l.SongID, day: day, country: l.Country}]++
			}
			if !artists[ud][l.ArtistID] && len(artists[ud]) < cfg.MaxItems {
				artists[ud][l.ArtistID] = true
				out[refCell{kind: ArtistListeners, id: l.ArtistID, day: day, country: l.Country}]++
				if h, ok := homes[l.UserID]; ok {
					for _, r := range cfg.Resolutions {
						out[refCell{kind: ArtistFans, id: l.ArtistID, day: day, cell: h3.LatLngToCell(h3.NewLatLng(h.lat, h.lng), r)}]++
					}
				}
			}
		}
	}
	return out
}

var cities = [][2]float64{{59.33, 18.06}, {48.85, 2.35}, {35.68, 139.69}}

var countries = []events.Country{{}, {'S', 'E'}, {'F', 'R'}, {'U', 'S'}, {'J', 'P'}}

// randomListens makes n listens of users 1..users over days day0..day0+2
// in roughly increasing time with some out of order, per source.
func randomListens(r *rand.Rand, parts int32, n, users int) [][]events.Listen {
	out := make([][]events.Listen, parts)
	base := int64(day0) * 86_400_000
	for i := range n {
		u := int64(1 + r.IntN(users))
		ts := base + int64(i)*(3*86_400_000/int64(n)) - r.Int64N(3*3_600_000)
		song := int64(1 + min(r.IntN(40), r.IntN(40)))
		l := events.Listen{UserID: u, SongID: song, ArtistID: 1 + song%7, TS: max(ts, base),
			Country: countries[r.IntN(len(countries))], MsPlayed: 40_000}
		if r.IntN(3) > 0 { // somewhere around one of three cities, or no location
			city := cities[(int(u)+r.IntN(2))%len(cities)]
			l.HasLoc, l.Lat, l.Lng = true, city[0]+r.Float64()*0.2, city[1]+r.Float64()*0.2
		}
		src := int32(u % int64(parts))
		out[src] = append(out[src], l)
	}
	return out
}

// run feeds listens by source through pl in intervals of about step
// listens per source.
func run(pl *pipeline, bySource [][]events.Listen, step int) {
	for i := 0; ; i += step {
		more := false
		for src, ls := range bySource {
			for _, l := range ls[min(i, len(ls)):min(i+step, len(ls))] {
				pl.add(int32(src), l)
			}
			more = more || i+step < len(ls)
		}
		pl.interval()
		if !more {
			return
		}
	}
}

// check compares every cell of the tables with want.
func check(t *testing.T, pl *pipeline, want map[refCell]int64) {
	t.Helper()
	seen := 0
	for k := range 3 {
		kind := Kind(k + 1)
		for id := int64(1); id <= 41; id++ {
			for day := int32(day0 - 1); day <= day0+3; day++ {
				for c, n := range pl.counts(kind, id, day) {
					if w := want[refCell{kind: kind, id: id, day: day, country: c}]; n != w {
						t.Errorf("%s %d day %d %q: %d, want %d", kind, id, day, c.String(), n, w)
					}
					seen++
				}
			}
		}
	}
	fans := 0
	for _, s := range pl.s2 {
		err := s.Scan([]byte{tableCell, byte(ArtistFans)}, []byte{tableCell, byte(ArtistFans) + 1}, func(k, v []byte) error {
			id, day, cell := int64(state.Uint64(k, 2)), int32(state.Uint32(k, 10)), h3.Cell(state.Uint64(k, 14))
			n, _ := binary.Uvarint(v)
			if w := want[refCell{kind: ArtistFans, id: id, day: day, cell: cell}]; int64(n) != w {
				t.Errorf("fans of %d day %d in %s: %d, want %d", id, day, cell, n, w)
			}
			if got := pl.fans(id, day, cell); got != int64(n) {
				t.Errorf("FanCells of %d day %d %s: %d, the store %d", id, day, cell, got, n)
			}
			fans++
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	if seen+fans != len(want) || fans == 0 {
		t.Errorf("%d cells and %d fan cells in the stores, want %d in all", seen, fans, len(want))
	}
}

// TestTables: the stores hold the reference's bounded counts, with parts
// kept across intervals and made anew from the store every interval.
func TestTables(t *testing.T) {
	for _, fresh := range []bool{false, true} {
		t.Run(fmt.Sprint("fresh=", fresh), func(t *testing.T) {
			pl := newPipeline(t, 3, `{"dp":true,"dp_max_items":3,"dp_max_plays":2,"dp_grace":"1h"}`, fresh)
			ls := randomListens(rand.New(rand.NewPCG(1, 2)), 3, 20_000, 60)
			want := reference(pl.cfg, ls)
			run(pl, ls, 97)
			check(t, pl, want)
			if len(want) < 200 {
				t.Fatalf("only %d cells: the test is too small", len(want))
			}
			// The last listens are on day0+2: day0 and day0+1 have closed
			// everywhere, day0+2 has not.
			wm, ok, err := Watermark(pl.s2[0], 3)
			if err != nil || !ok {
				t.Fatalf("watermark: %v %v", ok, err)
			}
			if !pl.cfg.Closed(wm, day0+1) || pl.cfg.Closed(wm, day0+2) {
				t.Errorf("watermark %s: want day0+1 closed and day0+2 open", time.UnixMilli(wm).UTC())
			}
		})
	}
}

// TestLateDropped: a listen of a day that closed in its partition does
// not count, and the watermark waits for every partition.
func TestLateDropped(t *testing.T) {
	pl := newPipeline(t, 2, `{"dp":true,"dp_grace":"10m"}`, false)
	base := int64(day0) * 86_400_000
	pl.add(0, events.Listen{UserID: 2, SongID: 5, ArtistID: 9, TS: base + 1000})
	pl.add(0, events.Listen{UserID: 2, SongID: 6, ArtistID: 9, TS: base + 86_400_000 + 600_000}) // closes day0 in source 0
	pl.add(0, events.Listen{UserID: 4, SongID: 5, ArtistID: 9, TS: base + 2000})                 // late
	pl.interval()
	if _, ok, _ := Watermark(pl.s2[0], 2); ok {
		t.Fatal("a watermark before source 1 sent one")
	}
	pl.add(1, events.Listen{UserID: 3, SongID: 5, ArtistID: 9, TS: base + 3000}) // not late in source 1
	pl.interval()
	if got := pl.counts(SongListeners, 5, day0)[events.Country{}]; got != 2 {
		t.Fatalf("song 5 listeners %d, want 2 (the late listen dropped)", got)
	}
	wm, ok, _ := Watermark(pl.s2[1], 2)
	if !ok || wm != base+3000 || pl.cfg.Closed(wm, day0) {
		t.Fatalf("watermark %d %v: want source 1's time, day0 open", wm, ok)
	}
}

// TestStateExpires: a user-day's state is deleted Keep after its day
// closes, and not before.
func TestStateExpires(t *testing.T) {
	pl := newPipeline(t, 1, `{"dp":true,"dp_grace":"1h","dp_keep":"24h"}`, true)
	base := int64(day0) * 86_400_000
	userDays := func() int {
		n := 0
		_ = pl.s1[0].Scan([]byte{tableUserDay}, []byte{tableUserDay + 1}, func(_, _ []byte) error { n++; return nil })
		return n
	}
	pl.add(0, events.Listen{UserID: 1, SongID: 1, ArtistID: 1, TS: base})
	pl.add(0, events.Listen{UserID: 2, SongID: 1, ArtistID: 1, TS: base + 5})
	pl.interval()
	// Day0 closes at day0+1 01:00 and expires at day0+2 01:00.
	pl.add(0, events.Listen{UserID: 3, SongID: 1, ArtistID: 1, TS: base + 2*86_400_000 + 3_600_000 - 1})
	pl.interval()
	if n := userDays(); n != 3 {
		t.Fatalf("%d user-days before expiry, want 3", n)
	}
	pl.add(0, events.Listen{UserID: 3, SongID: 2, ArtistID: 1, TS: base + 2*86_400_000 + 3_600_000})
	pl.interval()
	if n := userDays(); n != 1 {
		t.Fatalf("%d user-days after expiry, want 1 (user 3's day0+2)", n)
	}
}

// TestSensitivity: one adversarial user (hundreds of listens a day, two
// hundred songs, a new country every few listens) changes every table by
// at most its declared bounds: per day, at most L0 cells and L0 totals
// per id, each by at most LInf.
func TestSensitivity(t *testing.T) {
	const parts = 2
	opts := `{"dp":true,"dp_max_items":4,"dp_max_plays":3,"dp_grace":"1h"}`
	r := rand.New(rand.NewPCG(3, 4))
	base := randomListens(r, parts, 6_000, 40)
	// The adversary (user 1000, source 0) follows listens of source 0 with
	// their time, so that it moves no event time.
	var with []events.Listen
	for i, l := range base[0] {
		with = append(with, l)
		if i%4 == 0 {
			for j := range 6 {
				song := int64(1 + r.IntN(200))
				city := cities[(i/4+j)%len(cities)] // moving home all the time
				with = append(with, events.Listen{UserID: 1000, SongID: song, ArtistID: 1 + song%23, TS: l.TS,
					Country: countries[(i/4+j)%len(countries)], MsPlayed: 1, HasLoc: true, Lat: city[0], Lng: city[1]})
			}
		}
	}
	if adv := len(with) - len(base[0]); adv < 3*300 {
		t.Fatalf("the adversary has %d listens over 3 days: want hundreds a day", adv)
	}
	without, withAdv := newPipeline(t, parts, opts, false), newPipeline(t, parts, opts, false)
	run(without, base, 50)
	run(withAdv, [][]events.Listen{with, base[1]}, 50)
	cfg := without.cfg
	for k := range 3 {
		kind := Kind(k + 1)
		l0, linf := cfg.Bounds(kind)
		for day := int32(day0); day <= day0+2; day++ {
			cells, totals := 0, 0
			for id := int64(1); id <= 200; id++ {
				a, b := without.counts(kind, id, day), withAdv.counts(kind, id, day)
				var ta, tb int64
				for _, c := range countries {
					d := b[c] - a[c]
					if d < 0 || d > linf {
						t.Errorf("%s %d day %d %q: %d → %d, more than %d", kind, id, day, c.String(), a[c], b[c], linf)
					}
					if d != 0 {
						cells++
					}
					ta, tb = ta+a[c], tb+b[c]
				}
				if tb-ta > linf {
					t.Errorf("%s %d day %d total: %d → %d, more than %d", kind, id, day, ta, tb, linf)
				}
				if tb != ta {
					totals++
				}
			}
			if cells > int(l0) || totals > int(l0) {
				t.Errorf("%s day %d: %d cells and %d totals changed, more than %d", kind, day, cells, totals, l0)
			}
			if cells == 0 {
				t.Errorf("%s day %d: the adversary changed nothing (the test cannot fail)", kind, day)
			}
		}
	}
	// Fans: per day and resolution at most L0 cells, each by at most 1.
	l0, _ := cfg.Bounds(ArtistFans)
	a, b := fanTable(t, without), fanTable(t, withAdv)
	changed := map[[2]int32]int64{} // day, resolution → cells changed
	for k, n := range b {
		if d := n - a[k]; d < 0 || d > 1 {
			t.Errorf("fans %+v: %d → %d", k, a[k], n)
		} else if d == 1 {
			changed[[2]int32{k.day, int32(k.cell.Resolution())}]++
		}
	}
	for k := range a {
		if _, ok := b[k]; !ok {
			t.Errorf("fans %+v: gone with the adversary", k)
		}
	}
	for k, n := range changed {
		if n > l0 {
			t.Errorf("fans of day %d at resolution %d: %d cells changed, more than %d", k[0], k[1], n, l0)
		}
	}
	if len(changed) != 3*len(cfg.Resolutions) {
		t.Errorf("the adversary changed fans on %d (day, resolution)s, want all %d", len(changed), 3*len(cfg.Resolutions))
	}
}

// fanTable reads every fan cell of the stage-2 stores.
func fanTable(t *testing.T, pl *pipeline) map[refCell]int64 {
	t.Helper()
	out := map[refCell]int64{}
	for _, s := range pl.s2 {
		err := s.Scan([]byte{tableCell, byte(ArtistFans)}, []byte{tableCell, byte(ArtistFans) + 1}, func(k, v []byte) error {
			n, _ := binary.Uvarint(v)
			out[refCell{kind: ArtistFans, id: int64(state.Uint64(k, 2)), day: int32(state.Uint32(k, 10)), cell: h3.Cell(state.Uint64(k, 14))}] = int64(n)
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	return out
}
