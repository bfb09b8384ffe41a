package windows

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"
)

// call is one call on a Tracker in a generated workload.
type call struct {
	op  byte // 'e' event, 'w' watermark, 't' tick
	p   int32
	key string
	ts  int64
}

// workload generates n calls: events of a few keys on three partitions,
// each partition's clock moving forward with events up to 15ms out of
// order, some watermarks and ticks.
func workload(seed uint64, n int) []call {
	r := rand.New(rand.NewPCG(seed, 1))
	clock := []int64{0, 0, 0}
	now := int64(0)
	calls := make([]call, 0, n)
	for range n {
		p := int32(r.IntN(len(clock)))
		switch x := r.IntN(100); {
		case x < 3:
			calls = append(calls, call{op: 'w', p: p, ts: clock[p] - 20})
		case x < 8:
			now += int64(r.IntN(60))
			calls = append(calls, call{op: 't', ts: now})
		default:
			clock[p] += int64(r.IntN(4))
			calls = append(calls, call{op: 'e', p: p, key: string(rune('a' + r.IntN(5))), ts: clock[p] - int64(r.IntN(16))})
		}
	}
	// End of input: every partition's watermark to the end of time.
	for p := range clock {
		calls = append(calls, call{op: 'w', p: int32(p), ts: math.MaxInt64})
	}
	return calls
}

// run feeds calls to a fresh Tracker, draining before call i when
// drainAt(i), and after the last call. With crashAt >= 0, it takes a
// snapshot (with a drain, as a commit would) before call snapAt, then
// "crashes" before call crashAt: what it logged since the snapshot is
// dropped, the Tracker is restored and the calls from snapAt are replayed.
// It returns the log of decisions, of closed panes and of expired panes.
func run(t *testing.T, cfg Config, calls []call, drainAt func(int) bool, snapAt, crashAt int) (decisions, closes, expiries []string) {
	t.Helper()
	tr, err := New[string](cfg)
	if err != nil {
		t.Fatal(err)
	}
	var log []string
	var snap []byte
	snapLog, snapCloses, snapExpiries := 0, 0, 0
	drain := func() {
		st := tr.Drain()
		// NB: a pane's close and another's expiry may fall in one Drain or
		// in two, so each list is in order but they interleave as drained.
		for _, p := range st.Closed {
			closes = append(closes, paneString(p))
		}
		for _, p := range st.Expired {
			expiries = append(expiries, paneString(p))
		}
	}
	crashed := false
	for i := 0; i < len(calls); i++ {
		if i == snapAt && !crashed {
			drain()
			if snap, err = tr.MarshalBinary(); err != nil {
				t.Fatal(err)
			}
			snapLog, snapCloses, snapExpiries = len(log), len(closes), len(expiries)
		}
		if i == crashAt && !crashed {
			crashed = true
			if tr, err = New[string](cfg); err != nil {
				t.Fatal(err)
			}
			if err := tr.UnmarshalBinary(snap); err != nil {
				t.Fatal(err)
			}
			log, closes, expiries = log[:snapLog], closes[:snapCloses], expiries[:snapExpiries]
			i = snapAt - 1
			continue
		}
		if drainAt(i) {
			drain()
		}
		c := calls[i]
		switch c.op {
		case 'e':
			d := tr.Observe(c.p, c.key, c.ts)
			log = append(log, fmt.Sprintf("%s@%d %s +%s -%s ~%s wm=%d", c.key, c.ts, d.Reason,
				windowList(d.Accepted), windowList(d.Missed), windowList(d.Merged), d.Watermark))
		case 'w':
			tr.ObserveWatermark(c.p, c.ts)
		case 't':
			tr.Tick(c.ts)
		}
	}
	drain()
	return log, closes, expiries
}

func testConfigs() []Config {
	return []Config{
		{Window: Tumbling(10 * time.Millisecond), Grace: 3 * time.Millisecond, Retention: 50 * time.Millisecond},
		{Window: Hopping(20*time.Millisecond, 5*time.Millisecond), AllowedLateness: 4 * time.Millisecond, Retention: 40 * time.Millisecond},
		{Window: Hopping(10*time.Millisecond, 3*time.Millisecond), Grace: 2 * time.Millisecond, IdleTimeout: 100 * time.Millisecond},
		{Window: Session(8 * time.Millisecond), Grace: 4 * time.Millisecond, Retention: 30 * time.Millisecond},
		{Window: Session(5 * time.Millisecond), AllowedLateness: 3 * time.Millisecond, Retention: 5 * time.Millisecond, IdleTimeout: 50 * time.Millisecond},
	}
}

// TestDeterminism: draining more or less often, and crashing then
// replaying from a snapshot, give the same decisions and the same panes in
// the same order.
func TestDeterminism(t *testing.T) {
	for ci, cfg := range testConfigs() {
		for seed := range uint64(3) {
			t.Run(fmt.Sprintf("%s/%d/seed%d", cfg.Window, ci, seed), func(t *testing.T) {
				calls := workload(seed, 2000)
				always := func(int) bool { return true }
				wantD, wantC, wantE := run(t, cfg, calls, always, -1, -1)
				if d, c, e := run(t, cfg, calls, always, -1, -1); !slices.Equal(d, wantD) || !slices.Equal(c, wantC) || !slices.Equal(e, wantE) {
					t.Fatal("two runs differ")
				}
				r := rand.New(rand.NewPCG(seed, 2))
				for trial := range 5 {
					every := 1 + r.IntN(200)
					snapAt := r.IntN(len(calls))
					crashAt := snapAt + r.IntN(len(calls)-snapAt)
					if cfg.IdleTimeout > 0 {
						// Idleness is measured in processing time, which a
						// snapshot does not keep: a restored Tracker counts
						// its partitions active from its first Tick.
						snapAt, crashAt = -1, -1
					}
					gotD, gotC, gotE := run(t, cfg, calls, func(i int) bool { return i%every == 0 }, snapAt, crashAt)
					for _, c := range []struct {
						what      string
						got, want []string
					}{{"decisions", gotD, wantD}, {"closes", gotC, wantC}, {"expiries", gotE, wantE}} {
						if slices.Equal(c.got, c.want) {
							continue
						}
						i := 0
						for i < min(len(c.got), len(c.want)) && c.got[i] == c.want[i] {
							i++
						}
						t.Fatalf("trial %d (drain every %d, snapshot %d, crash %d): %s differ at %d:\n got %q\nwant %q",
							trial, every, snapAt, crashAt, c.what, i, c.got[i:min(i+3, len(c.got))], c.want[i:min(i+3, len(c.want))])
					}
				}
			})
		}
	}
}

// TestInvariants plays generated workloads into a Tracker and a fake store
// of per-pane event counts, and checks what a caller relies on.
func TestInvariants(t *testing.T) {
	for ci, cfg := range testConfigs() {
		for seed := range uint64(3) {
			t.Run(fmt.Sprintf("%s/%d/seed%d", cfg.Window, ci, seed), func(t *testing.T) {
				checkInvariants(t, cfg, workload(seed+10, 3000))
			})
		}
	}
}

func checkInvariants(t *testing.T, cfg Config, calls []call) {
	tr, err := New[string](cfg)
	if err != nil {
		t.Fatal(err)
	}
	session := cfg.Window.Kind == KindSession
	type pane = Pane[string]
	store := map[pane]int{}       // the caller's state: events per pane
	closed := map[pane]bool{}     // closed, not expired
	expired := map[pane]bool{}    // expired
	mergedAway := map[pane]bool{} // merged into another session
	accepted, emitted, merges, late := 0, 0, 0, uint64(0)
	lastWM := NoWatermark
	var lastClosed *pane
	grace, retention := ms(cfg.Grace), ms(cfg.retention())
	paneOf := func(key string, w Window) pane {
		if session {
			return pane{Key: key, Window: w}
		}
		return pane{Window: w}
	}
	r := rand.New(rand.NewPCG(7, 7))
	for i, c := range calls {
		switch c.op {
		case 'e':
			d := tr.Observe(c.p, c.key, c.ts)
			if d.Reason == Late {
				late++
			}
			if (d.Reason == Late) != (len(d.Missed) > 0) {
				t.Fatalf("call %d: reason %s with missed %v", i, d.Reason, d.Missed)
			}
			for _, w := range d.Missed {
				if w.End+grace > d.Watermark && !session {
					t.Fatalf("call %d: missed %s still open at watermark %d", i, w, d.Watermark)
				}
			}
			for _, w := range d.Merged {
				p := paneOf(c.key, w)
				if _, ok := store[p]; !ok {
					t.Fatalf("call %d: merged %s has no state", i, w)
				}
				store[paneOf(c.key, d.Accepted[0])] += store[p]
				delete(store, p)
				mergedAway[p] = true
				merges++
			}
			for _, w := range d.Accepted {
				p := paneOf(c.key, w)
				if !w.Contains(c.ts) {
					t.Fatalf("call %d: ts %d accepted into %s", i, c.ts, w)
				}
				if closed[p] || expired[p] || w.End+grace <= d.Watermark {
					t.Fatalf("call %d: accepted into closed %s at watermark %d", i, w, d.Watermark)
				}
				if session {
					for q := range closed {
						if q.Key == c.key && q.Window.overlaps(w) {
							t.Fatalf("call %d: session %s overlaps closed %s", i, w, q.Window)
						}
					}
				}
				store[p]++
				accepted++
			}
		case 'w':
			tr.ObserveWatermark(c.p, c.ts)
		case 't':
			tr.Tick(c.ts)
		}
		if r.IntN(10) > 0 && i < len(calls)-1 {
			continue
		}
		st := tr.Drain()
		if st.Watermark < lastWM {
			t.Fatalf("watermark moved back from %d to %d", lastWM, st.Watermark)
		}
		lastWM = st.Watermark
		for _, p := range st.Closed {
			if closed[p] || expired[p] || mergedAway[p] {
				t.Fatalf("closed %v twice or after a merge", p)
			}
			if p.Window.End+grace > st.Watermark {
				t.Fatalf("closed %v early at watermark %d", p, st.Watermark)
			}
			if lastClosed != nil && comparePanes(*lastClosed, p) >= 0 {
				t.Fatalf("closed %v after %v", p, *lastClosed)
			}
			lastClosed = &p
			closed[p] = true
			emitted += store[p]
		}
		for _, p := range st.Expired {
			if !closed[p] {
				t.Fatalf("expired %v before closing", p)
			}
			if p.Window.End+retention > st.Watermark {
				t.Fatalf("expired %v early at watermark %d", p, st.Watermark)
			}
			delete(closed, p)
			delete(store, p)
			expired[p] = true
		}
	}
	// The input ended with watermarks at the end of time: everything has
	// closed and expired, and every accepted event was emitted once.
	if len(store) != 0 || len(closed) != 0 {
		t.Fatalf("after the end: %d panes with state, %d closed not expired", len(store), len(closed))
	}
	if emitted != accepted {
		t.Fatalf("emitted %d event-windows, accepted %d", emitted, accepted)
	}
	if s := tr.Stats(); s.Late != late || s.Expired != uint64(len(expired)) || s.Closed != s.Expired {
		t.Fatalf("stats %+v, late %d, expired %d", s, late, len(expired))
	}
	if len(tr.keys) != 0 || len(tr.open) != 0 || len(tr.retained) != 0 {
		t.Fatalf("tracker keeps %d keys, %d open, %d retained", len(tr.keys), len(tr.open), len(tr.retained))
	}
	if accepted == 0 || late == 0 || (session && merges == 0) {
		t.Fatalf("workload too tame: %d accepted, %d late, %d merges", accepted, late, merges)
	}
}

// TestSnapshotRoundTrip: a restored Tracker encodes to the same bytes, for
// several key types.
func TestSnapshotRoundTrip(t *testing.T) {
	type songID int64
	calls := workload(42, 500)
	calls = calls[:len(calls)-3] // keep windows open
	check := func(name string, b []byte, restore func([]byte) ([]byte, error)) {
		t.Helper()
		again, err := restore(b)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if string(again) != string(b) {
			t.Fatalf("%s: snapshot changed on restore", name)
		}
	}
	for _, cfg := range testConfigs() {
		strs, _ := New[string](cfg)
		ints, _ := New[songID](cfg)
		floats, _ := New[float64](cfg)
		uints, _ := New[uint8](cfg)
		for _, c := range calls {
			if c.op == 'e' {
				strs.Observe(c.p, strings.Repeat(c.key, 3), c.ts)
				ints.Observe(c.p, songID(-c.key[0]), c.ts)
				floats.Observe(c.p, float64(c.key[0])/3, c.ts)
				uints.Observe(c.p, c.key[0], c.ts)
			}
			if c.op == 'w' {
				strs.ObserveWatermark(c.p, c.ts)
				ints.ObserveWatermark(c.p, c.ts)
				floats.ObserveWatermark(c.p, c.ts)
				uints.ObserveWatermark(c.p, c.ts)
			}
		}
		strs.Drain()
		ints.Drain()
		b1, _ := strs.MarshalBinary()
		b2, _ := ints.MarshalBinary()
		b3, _ := floats.MarshalBinary()
		b4, _ := uints.MarshalBinary()
		check("string", b1, func(b []byte) ([]byte, error) {
			tr, _ := New[string](cfg)
			if err := tr.UnmarshalBinary(b); err != nil {
				return nil, err
			}
			if tr.Watermark() != strs.Watermark() {
				return nil, fmt.Errorf("watermark %d, want %d", tr.Watermark(), strs.Watermark())
			}
			return tr.MarshalBinary()
		})
		check("int", b2, func(b []byte) ([]byte, error) {
			tr, _ := New[songID](cfg)
			if err := tr.UnmarshalBinary(b); err != nil {
				return nil, err
			}
			return tr.MarshalBinary()
		})
		check("float", b3, func(b []byte) ([]byte, error) {
			tr, _ := New[float64](cfg)
			if err := tr.UnmarshalBinary(b); err != nil {
				return nil, err
			}
			return tr.MarshalBinary()
		})
		check("uint8", b4, func(b []byte) ([]byte, error) {
			tr, _ := New[uint8](cfg)
			if err := tr.UnmarshalBinary(b); err != nil {
				return nil, err
			}
			return tr.MarshalBinary()
		})
		// Every truncation is refused and leaves the Tracker as it was.
		for n := range len(b1) {
			tr, _ := New[string](cfg)
			tr.Observe(0, "x", 7)
			wm := tr.Watermark()
			if err := tr.UnmarshalBinary(b1[:n]); err == nil {
				t.Fatalf("%s: truncated snapshot (%d of %d bytes) accepted", cfg.Window, n, len(b1))
			}
			if tr.Watermark() != wm || wm == NoWatermark {
				t.Fatalf("failed restore changed the tracker")
			}
		}
	}
}

// FuzzUnmarshalBinary: any input is refused or gives a Tracker that keeps
// working and re-encodes stably; it never panics.
func FuzzUnmarshalBinary(f *testing.F) {
	for _, cfg := range testConfigs()[:4] {
		tr, _ := New[string](cfg)
		for _, c := range workload(3, 300)[:280] {
			if c.op == 'e' {
				tr.Observe(c.p, c.key, c.ts)
			}
		}
		tr.Drain()
		b, _ := tr.MarshalBinary()
		f.Add(b)
	}
	f.Add([]byte{})
	f.Add([]byte{snapshotVersion})
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, cfg := range testConfigs()[:4] {
			tr, _ := New[string](cfg)
			if err := tr.UnmarshalBinary(data); err != nil {
				continue
			}
			b, err := tr.MarshalBinary()
			if err != nil {
				t.Fatal(err)
			}
			tr2, _ := New[string](cfg)
			if err := tr2.UnmarshalBinary(b); err != nil {
				t.Fatalf("re-encoded snapshot refused: %v", err)
			}
			if b2, _ := tr2.MarshalBinary(); string(b2) != string(b) {
				t.Fatal("re-encoding not stable")
			}
			tr.Observe(0, "a", 5)
			tr.Observe(1, "b", MaxTime)
			tr.ObserveWatermark(0, math.MaxInt64)
			tr.ObserveWatermark(1, math.MaxInt64)
			tr.Drain()
		}
	})
}
