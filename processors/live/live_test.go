package live

import (
	"cmp"
	"encoding/json"
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kappa-stream/kappa/events"
	"github.com/kappa-stream/kappa/processors/rollups"
	"github.com/kappa-stream/kappa/state"
	"github.com/kappa-stream/kappa/topology"
)

const (
	sources    = 4
	partitions = 3
	repart     = "deltas"
	finals     = "final"
)

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC).UnixMilli()

// pipeline runs both stages in memory: sources collectors, partitions
// tasks over their own stores; every step is one commit interval.
type pipeline struct {
	t          testing.TB
	cfg        Config
	collectors []*Stage1
	sources    []*state.Store // of the collectors
	stores     []*state.Store // of the tasks
	tasks      []*Stage2
	finals     []final
}

func newPipeline(t testing.TB, cfg Config) *pipeline {
	t.Helper()
	p := &pipeline{t: t, cfg: cfg}
	open := func(name string) *state.Store {
		st, err := state.Open(name, state.WithFS(vfs.NewMem()))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st.Close() })
		return st
	}
	for s := range sources {
		p.sources = append(p.sources, open(fmt.Sprintf("s%d", s)))
	}
	for i := range partitions {
		p.stores = append(p.stores, open(fmt.Sprintf("p%d", i)))
	}
	p.restart()
	return p
}

// restart replaces every collector and task with a new one from its
// store, as after a crash or an aborted transaction.
func (p *pipeline) restart() {
	p.collectors, p.tasks = p.collectors[:0], p.tasks[:0]
	for s, st := range p.sources {
		c, err := NewStage1(p.cfg, int32(s), st, repart, partitions, nil)
		if err != nil {
			p.t.Fatal(err)
		}
		p.collectors = append(p.collectors, c)
	}
	for _, st := range p.stores {
		task, err := NewStage2(p.cfg, st, sources, finals, nil)
		if err != nil {
			p.t.Fatal(err)
		}
		p.tasks = append(p.tasks, task)
	}
}

// commit applies the store changes of out to st, as a commit does.
func commit(t testing.TB, st *state.Store, out *topology.Output) {
	t.Helper()
	b := st.NewBatch()
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

// step feeds listens to the collectors of their users' sources and runs
// one commit interval of both stages.
func (p *pipeline) step(ls []events.Listen) {
	p.t.Helper()
	for i := range ls {
		if err := p.collectors[ls[i].UserID%sources].Add(&ls[i]); err != nil {
			p.t.Fatal(err)
		}
	}
	var recs []*kgo.Record
	for s, c := range p.collectors {
		var out topology.Output
		if err := c.Prepare(&out, false); err != nil {
			p.t.Fatal(err)
		}
		recs = append(recs, out.Records()...)
		commit(p.t, p.sources[s], &out)
	}
	dirty := map[int32]bool{}
	for _, rec := range recs {
		if rec.Topic != repart {
			p.t.Fatalf("stage 1 sent to %q", rec.Topic)
		}
		if err := p.tasks[rec.Partition].Process(rec); err != nil {
			p.t.Fatal(err)
		}
		dirty[rec.Partition] = true
	}
	for i, task := range p.tasks {
		if !dirty[int32(i)] {
			continue
		}
		var out topology.Output
		if err := task.Prepare(&out); err != nil {
			p.t.Fatal(err)
		}
		for _, rec := range out.Records() {
			var f final
			if err := json.Unmarshal(rec.Value, &f); err != nil {
				p.t.Fatal(err)
			}
			if string(rec.Key) != fmt.Sprint(f.SongID) {
				p.t.Fatalf("final record key %q for song %d", rec.Key, f.SongID)
			}
			p.finals = append(p.finals, f)
		}
		commit(p.t, p.stores[i], &out)
	}
}

// query asks the store of song's partition, found the way stage 1 routes.
func (p *pipeline) query(song int64, size time.Duration, last int) Answer {
	p.t.Helper()
	rec := &kgo.Record{Key: rollups.PartitionKey(nil, rollups.Song, song)}
	a, err := Query(p.stores[kgo.StickyKeyPartitioner(nil).ForTopic("t").Partition(rec, len(p.stores))], p.cfg, song, size, last)
	if err != nil {
		p.t.Fatal(err)
	}
	return a
}

// final is a record of the final topic.
type final struct {
	SongID    int64     `json:"song_id"`
	Window    string    `json:"window"`
	Start     time.Time `json:"start"`
	End       time.Time `json:"end"`
	Plays     uint64    `json:"plays"`
	Listeners uint64    `json:"listeners"`
}

type winKey struct {
	song  int64
	start int64
}

type exact struct {
	plays int
	users map[int64]bool
}

func listen(user, song, ts int64) events.Listen {
	return events.Listen{UserID: user, SongID: song, ArtistID: 1, TS: ts}
}

// TestExactPlaysAndListeners runs random listens through both stages
// (out of order within the grace), restarting the tasks from their stores
// now and then, and checks every final window and every answer against
// counts made here.
func TestExactPlaysAndListeners(t *testing.T) {
	cfg := Config{Windows: []time.Duration{time.Minute, 10 * time.Second}, Grace: 20 * time.Second}
	p := newPipeline(t, cfg)
	rng := rand.New(rand.NewPCG(1, 2))
	want := map[time.Duration]map[winKey]*exact{time.Minute: {}, 10 * time.Second: {}}
	now := t0
	// NB: an interval's listens span more event time than the grace: a
	// window that was open for each listen must not close for another
	// of the same interval.
	for step := range 300 {
		var batch []events.Listen
		for k := range int64(200) {
			// Song 1 is the hot one; the clock moves 100 s per interval,
			// and events lag it by up to 15 s.
			song := int64(1 + rng.IntN(40))
			if rng.IntN(2) == 0 {
				song = 1
			}
			l := listen(1+rng.Int64N(5_000), song, now+k*500-rng.Int64N(15_000))
			batch = append(batch, l)
			for size, m := range want {
				ms := size.Milliseconds()
				k := winKey{l.SongID, l.TS - l.TS%ms}
				if m[k] == nil {
					m[k] = &exact{users: map[int64]bool{}}
				}
				m[k].plays++
				m[k].users[l.UserID] = true
			}
		}
		p.step(batch)
		now += 100_000
		if step%37 == 0 {
			p.restart()
		}
	}
	// Answers while windows are still open: newest first, exact plays.
	a := p.query(1, time.Minute, 3)
	if len(a.Windows) != 3 || !a.HasWatermark {
		t.Fatalf("song 1: %d windows, watermark %v; want 3 and a watermark", len(a.Windows), a.HasWatermark)
	}
	for i, w := range a.Windows {
		if i > 0 && !w.Start.Before(a.Windows[i-1].Start) {
			t.Fatalf("windows not newest first: %v", a.Windows)
		}
		e := want[time.Minute][winKey{1, w.Start.UnixMilli()}]
		if int(w.Plays) != e.plays {
			t.Errorf("song 1 window %s: %d plays, want %d", w.Start, w.Plays, e.plays)
		}
		checkListeners(t, fmt.Sprintf("song 1 window %s", w.Start), w.Listeners, len(e.users))
	}
	// Move every source's watermark past every window, from one user per
	// source, for a song nobody else plays.
	var late []events.Listen
	for u := range int64(sources) {
		late = append(late, listen(u+sources, 999, now+time.Hour.Milliseconds()))
	}
	p.step(late)
	got := map[time.Duration]map[winKey]final{time.Minute: {}, 10 * time.Second: {}}
	for _, f := range p.finals {
		size := f.End.Sub(f.Start)
		k := winKey{f.SongID, f.Start.UnixMilli()}
		if _, dup := got[size][k]; dup {
			t.Fatalf("window %v of song %d emitted twice", f.Start, f.SongID)
		}
		if f.Window != FormatWindow(size) {
			t.Fatalf("final window %q for a %s window", f.Window, size)
		}
		got[size][k] = f
	}
	for size, m := range want {
		if len(got[size]) != len(m) {
			t.Errorf("%s: %d final windows, want %d", size, len(got[size]), len(m))
		}
		for k, e := range m {
			f, ok := got[size][k]
			if !ok {
				t.Errorf("%s window %d of song %d: not emitted", size, k.start, k.song)
				continue
			}
			if int(f.Plays) != e.plays {
				t.Errorf("%s window %d of song %d: %d plays, want %d", size, k.start, k.song, f.Plays, e.plays)
			}
			checkListeners(t, fmt.Sprintf("%s window %d of song %d", size, k.start, k.song), f.Listeners, len(e.users))
		}
	}
}

// TestRestartsChangeNothing runs the same listens through a pipeline
// whose tasks are made anew from their stores after every interval (each
// row decoded from the store) and through one whose tasks live on (rows
// kept decoded in memory): they emit the same final windows, listener
// estimates included.
func TestRestartsChangeNothing(t *testing.T) {
	cfg := Config{Windows: []time.Duration{time.Minute, time.Hour}, Grace: 20 * time.Second}
	kept, restarted := newPipeline(t, cfg), newPipeline(t, cfg)
	rng := rand.New(rand.NewPCG(3, 4))
	now := t0
	for range 80 {
		var batch []events.Listen
		for k := range int64(600) {
			song := int64(1 + rng.IntN(20))
			if rng.IntN(2) == 0 {
				song = 1
			}
			batch = append(batch, listen(1+rng.Int64N(1_000_000), song, now+k*50-rng.Int64N(10_000)))
		}
		kept.step(batch)
		restarted.step(batch)
		restarted.restart()
		now += 30_000
	}
	var late []events.Listen
	for u := range int64(sources) {
		late = append(late, listen(u+sources, 999, now+time.Hour.Milliseconds()))
	}
	kept.step(late)
	restarted.step(late)
	var most uint64
	for _, f := range kept.finals {
		most = max(most, f.Listeners)
	}
	if most < 20_000 { // NB: more than a sparse sketch holds (2^14)
		t.Fatalf("at most %d listeners in a window: no sketch turned dense", most)
	}
	if len(kept.finals) < 100 || !slices.Equal(kept.finals, restarted.finals) {
		t.Fatalf("%d finals kept, %d restarted; equal: %v", len(kept.finals), len(restarted.finals),
			slices.Equal(kept.finals, restarted.finals))
	}
}

func checkListeners(t testing.TB, what string, got uint64, want int) {
	t.Helper()
	if d := float64(got) - float64(want); d > 0.02*float64(want) || -d > 0.02*float64(want) {
		t.Errorf("%s: %d listeners, want %d ± 2%%", what, got, want)
	}
}

// TestLateAndExpired checks that a listen for a closed window counts
// nowhere in the live windows, that a window is emitted once, and that
// windows are deleted when their retention passes.
func TestLateAndExpired(t *testing.T) {
	cfg := Config{Windows: []time.Duration{time.Minute}, Grace: 10 * time.Second, Retention: 5 * time.Minute}
	p := newPipeline(t, cfg)
	all := func(ts int64, song int64) []events.Listen {
		var ls []events.Listen
		for u := range int64(sources) {
			ls = append(ls, listen(u+1, song, ts))
		}
		return ls
	}
	p.step(all(t0+1_000, 7))                  // window [t0, t0+1m) of song 7: 4 plays
	p.step(all(t0+70_000, 8))                 // watermark t0+70 s: window t0 closes
	p.step([]events.Listen{listen(1, 7, t0)}) // late
	if len(p.finals) != 1 || p.finals[0].SongID != 7 || p.finals[0].Plays != 4 || p.finals[0].Listeners != 4 {
		t.Fatalf("finals %+v, want song 7 with 4 plays and 4 listeners", p.finals)
	}
	// The windows from the one holding the largest event time (t0+70 s)
	// back to the oldest the retention keeps.
	a := p.query(7, time.Minute, 10)
	var plays []uint64
	for _, w := range a.Windows {
		plays = append(plays, w.Plays)
	}
	if fmt.Sprint(plays) != "[0 4 0 0 0 0]" || a.Windows[1].Start.UnixMilli() != t0 {
		t.Fatalf("song 7 after a late listen: %+v, want plays [0 4 0 0 0 0], the 4 from t0", a.Windows)
	}
	if want := time.UnixMilli(t0 + 70_000).UTC(); !a.Watermark.Equal(want) {
		t.Fatalf("watermark %s, want %s", a.Watermark, want)
	}
	p.step(all(t0+7*60_000, 8)) // past t0+1m + 5 min retention
	a = p.query(7, time.Minute, 10)
	if len(a.Windows) != 6 || slices.ContainsFunc(a.Windows, func(w Window) bool { return w.Plays > 0 }) {
		t.Fatalf("song 7 after its retention: %+v, want the 6 empty windows the retention keeps", a.Windows)
	}
	for i, st := range p.stores {
		err := st.Scan([]byte{tableRow}, []byte{tableRow + 1}, func(k, _ []byte) error {
			if start := int64(state.Uint64(k, 1+4)); start == t0 {
				return fmt.Errorf("partition %d: key %x of an expired window", i, k)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
}

func TestDeltaRoundTrip(t *testing.T) {
	c := cell{k: cellKey{song: 1 << 40, size: 60_000, start: t0}, plays: 9, users: []int64{1, 2, 300, 1 << 50}}
	v := appendCell(appendDeltaHeader(nil, 11, t0+5, true, 1), &c)
	var d delta
	if err := d.parse(v); err != nil {
		t.Fatal(err)
	}
	if d.source != 11 || !d.seen || d.maxTS != t0+5 || len(d.cells) != 1 || d.cells[0].k != c.k ||
		d.cells[0].plays != 9 || fmt.Sprint(d.cells[0].users) != fmt.Sprint(c.users) {
		t.Fatalf("parsed %+v", d)
	}
	for i := range v {
		if err := d.parse(v[:i]); err == nil {
			t.Fatalf("a record cut to %d bytes parsed", i)
		}
	}
}

// TestNewRowsStaySmall writes a hot song's window (a dense sketch) and
// then new rows of other songs (some in the same partition, after it in
// key order): they must be small, not dense sketches.
func TestNewRowsStaySmall(t *testing.T) {
	p := newPipeline(t, Config{})
	var batch []events.Listen
	for u := range int64(20_000) {
		batch = append(batch, listen(u+1, 1, t0))
	}
	for song := range int64(20) {
		batch = append(batch, listen(1, song+2, t0))
	}
	p.step(batch)
	for i, st := range p.stores {
		err := st.Scan([]byte{tableRow}, []byte{tableRow + 1}, func(k, v []byte) error {
			if song := int64(state.Uint64(k, 1+4+8)); song != 1 && len(v) > 64 {
				return fmt.Errorf("partition %d: the row of song %d with one listener takes %d bytes", i, song, len(v))
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
}

// oddListens are n listens over span from t0 as offline plays arrive: in
// random order within hours, with batches of a user's plays synced days
// late, of songs drawn from a few.
func oddListens(rng *rand.Rand, n int, span time.Duration) []events.Listen {
	ls := make([]events.Listen, 0, n)
	clock := t0
	step := span.Milliseconds() / int64(n)
	for len(ls) < n {
		clock += step
		user := 1 + rng.Int64N(300)
		if rng.IntN(100) == 0 { // an offline batch: days old
			back := 24*time.Hour.Milliseconds() + rng.Int64N(3*24*time.Hour.Milliseconds())
			for k := range int64(1 + rng.IntN(30)) {
				if len(ls) < n {
					ls = append(ls, listen(user, 1+rng.Int64N(8), max(t0, clock-back+k*200_000)))
				}
			}
			continue
		}
		ls = append(ls, listen(user, 1+rng.Int64N(8), max(t0, clock-rng.Int64N(3*time.Hour.Milliseconds()))))
	}
	return ls
}

// oracle applies the lateness rule to ls in order, per source (user mod
// sources): a listen counts in window w when the largest event time read
// before it in its source is below w's end plus grace.
func oracle(ls []events.Listen, size, grace time.Duration) (on map[winKey]*exact, late int) {
	on = map[winKey]*exact{}
	stream := map[int64]int64{}
	ms, g := size.Milliseconds(), grace.Milliseconds()
	for _, l := range ls {
		s := l.UserID % sources
		st, seen := stream[s]
		start := l.TS - l.TS%ms
		if seen && st >= start+ms+g {
			late++
		} else {
			k := winKey{l.SongID, start}
			if on[k] == nil {
				on[k] = &exact{users: map[int64]bool{}}
			}
			on[k].plays++
			on[k].users[l.UserID] = true
		}
		if !seen || l.TS > st {
			stream[s] = l.TS
		}
	}
	return on, late
}

// TestLatenessFollowsTheLog feeds listens in random arrival order over
// days (out of order by up to 3 h, with offline batches days late) to
// pipelines that cut the log into intervals differently and restart at
// other points: every one emits the windows of the oracle that applies
// the lateness rule to the log's order, once each.
func TestLatenessFollowsTheLog(t *testing.T) {
	cfg := Config{Windows: []time.Duration{time.Minute, time.Hour}, Grace: time.Hour}
	rng := rand.New(rand.NewPCG(5, 6))
	ls := oddListens(rng, 30_000, 5*24*time.Hour)
	// Then every source moves past every window.
	for u := range int64(sources) {
		ls = append(ls, listen(u+1000, 999, t0+30*24*time.Hour.Milliseconds()))
	}
	want := map[time.Duration]map[winKey]*exact{}
	for _, size := range cfg.Windows {
		on, late := oracle(ls, size, cfg.Grace)
		if late < len(ls)/20 || late > 3*len(ls)/4 {
			t.Fatalf("%s: %d of %d listens late by the rule; want a few to many", size, late, len(ls))
		}
		// The pushing listens' own windows stay open.
		maps.DeleteFunc(on, func(k winKey, _ *exact) bool { return k.song == 999 })
		want[size] = on
	}
	var runs [][]final
	for _, run := range []struct{ batch, restartEvery int }{{1000, 0}, {37, 11}, {4999, 1}} {
		p := newPipeline(t, cfg)
		for i, n := 0, 0; i < len(ls); i, n = i+run.batch, n+1 {
			p.step(ls[i:min(i+run.batch, len(ls))])
			if run.restartEvery > 0 && n%run.restartEvery == 0 {
				p.restart()
			}
		}
		got := map[time.Duration]map[winKey]final{time.Minute: {}, time.Hour: {}}
		for _, f := range p.finals {
			size, k := f.End.Sub(f.Start), winKey{f.SongID, f.Start.UnixMilli()}
			if _, dup := got[size][k]; dup {
				t.Fatalf("batches of %d: %s window %s of song %d emitted twice", run.batch, size, f.Start, f.SongID)
			}
			got[size][k] = f
		}
		for size, m := range want {
			if len(got[size]) != len(m) {
				t.Errorf("batches of %d: %d final %s windows, want %d", run.batch, len(got[size]), size, len(m))
			}
			for k, e := range m {
				f := got[size][k]
				if int(f.Plays) != e.plays {
					t.Errorf("batches of %d: %s window %d of song %d: %d plays, want %d", run.batch, size, k.start, k.song, f.Plays, e.plays)
				}
				checkListeners(t, fmt.Sprintf("%s window %d of song %d", size, k.start, k.song), f.Listeners, len(e.users))
			}
		}
		slices.SortFunc(p.finals, func(a, b final) int {
			return cmp.Or(a.Start.Compare(b.Start), a.End.Compare(b.End), cmp.Compare(a.SongID, b.SongID))
		})
		runs = append(runs, p.finals)
	}
	for i := 1; i < len(runs); i++ {
		if !slices.Equal(runs[0], runs[i]) {
			t.Errorf("run %d emitted other finals than run 0", i)
		}
	}
}
