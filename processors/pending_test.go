package processors

import (
	"bytes"
	"slices"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/kappa-stream/kappa/state"
)

// TestPending writes markers and a summary as a stage-1 task does and
// reads them back: the markers' times (a one-byte marker, written before
// the times were kept, is since now), and the summary.
func TestPending(t *testing.T) {
	s := openMem(t, vfs.NewMem())
	const table, summary = 0x32, 0x33
	t0 := time.Unix(1_700_000_000, 123)
	b := s.NewBatch()
	for _, kv := range [][2][]byte{
		{pendingKey(nil, table, 7), pendingValue(nil, t0)},
		{pendingKey(nil, table, 3), pendingValue(nil, t0.Add(time.Second))},
		{pendingKey(nil, table, 9), {1}},
		{pendingKey(nil, table+1, 1), pendingValue(nil, t0)},
		{[]byte{summary}, appendPendingSummary(nil, 3, t0)},
	} {
		if err := b.Set(kv[0], kv[1]); err != nil {
			t.Fatal(err)
		}
	}
	if err := b.Commit(false); err != nil {
		t.Fatal(err)
	}
	now := t0.Add(time.Hour)
	var ids []int64
	var sinces []time.Time
	err := ScanPending(s, table, now, func(id int64, since time.Time) {
		ids, sinces = append(ids, id), append(sinces, since)
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(ids) != 3 || ids[0] != 3 || ids[1] != 7 || ids[2] != 9 ||
		!sinces[0].Equal(t0.Add(time.Second)) || !sinces[1].Equal(t0) || !sinces[2].Equal(now) {
		t.Fatalf("ScanPending: ids %v, since %v", ids, sinces)
	}
	n, oldest, err := ReadPendingSummary(s, []byte{summary})
	if err != nil || n != 3 || !oldest.Equal(t0) {
		t.Fatalf("ReadPendingSummary = %d, %v, %v; want 3, %v", n, oldest, err, t0)
	}
	if n, oldest, err := ReadPendingSummary(s, []byte{summary + 1}); err != nil || n != 0 || !oldest.IsZero() {
		t.Fatalf("ReadPendingSummary of no summary = %d, %v, %v", n, oldest, err)
	}
	b = s.NewBatch()
	if err := b.Set(pendingKey(nil, table, 4), []byte{1, 2}); err != nil {
		t.Fatal(err)
	}
	if err := b.Set([]byte{summary}, appendPendingSummary(nil, 0, t0)); err != nil {
		t.Fatal(err)
	}
	if err := b.Commit(false); err != nil {
		t.Fatal(err)
	}
	if n, oldest, err := ReadPendingSummary(s, []byte{summary}); err != nil || n != 0 || !oldest.IsZero() {
		t.Fatalf("ReadPendingSummary of none pending = %d, %v, %v", n, oldest, err)
	}
	if err := ScanPending(s, table, now, func(int64, time.Time) {}); err == nil {
		t.Fatal("ScanPending took a marker of 2 bytes")
	}
}

// TestPendingQueue marks users over intervals of a fake clock and checks
// what Prepare returns and writes against the marks: new markers with
// their interval's time, the users due after the delay (all of them when
// all is set) oldest first with their markers deleted, the summary only
// when it changed, NextDue; and that a queue loaded from the store goes on
// with the times the users waited.
func TestPendingQueue(t *testing.T) {
	s := openMem(t, vfs.NewMem())
	const table, delay = 0x32, 5 * time.Second
	summary := []byte{0x33}
	t0 := time.Unix(1_700_000_000, 0)
	q, err := LoadPendingQueue(s, table, summary, delay, t0)
	if err != nil {
		t.Fatal(err)
	}
	// step prepares the queue at t0+at and commits its writes.
	step := func(q *PendingQueue, at time.Duration, all bool) (due []int64, puts, deletes int, summarized bool) {
		t.Helper()
		var w mapWriter
		due = slices.Clone(q.Prepare(&w, t0.Add(at), all))
		b := s.NewBatch()
		for k, v := range w {
			switch {
			case v == nil:
				deletes++
				err = b.Delete([]byte(k))
			case k == string(summary):
				summarized = true
				err = b.Set([]byte(k), v)
			default:
				puts++
				if !bytes.Equal(v, pendingValue(nil, t0.Add(at))) {
					t.Fatalf("at %v: marker %x since %x", at, k, v)
				}
				err = b.Set([]byte(k), v)
			}
			if err != nil {
				t.Fatal(err)
			}
		}
		if err := b.Commit(false); err != nil {
			t.Fatal(err)
		}
		return due, puts, deletes, summarized
	}
	q.Mark(4)
	q.Mark(2)
	q.Mark(4)
	if due, puts, _, sum := step(q, 0, false); len(due) != 0 || puts != 2 || !sum {
		t.Fatalf("first interval: due %v, %d markers, summary %t; want none, 2, written", due, puts, sum)
	}
	q.Mark(9)
	q.Mark(2) // pending already
	if due, puts, _, sum := step(q, time.Second, false); len(due) != 0 || puts != 1 || !sum {
		t.Fatalf("second interval: due %v, %d markers, summary %t; want none, 1, written", due, puts, sum)
	}
	if got := q.NextDue(); !got.Equal(t0.Add(delay)) {
		t.Fatalf("NextDue = %v, want %v", got, t0.Add(delay))
	}
	if due, _, _, sum := step(q, 2*time.Second, false); len(due) != 0 || sum {
		t.Fatalf("nothing changed: due %v, summary written %t", due, sum)
	}
	// A new task loads the queue with the users' times.
	if q, err = LoadPendingQueue(s, table, summary, delay, t0.Add(3*time.Second)); err != nil {
		t.Fatal(err)
	}
	if due, _, deletes, sum := step(q, delay, false); !slices.Equal(due, []int64{2, 4}) || deletes != 2 || !sum {
		t.Fatalf("at the delay: due %v, %d markers deleted, summary %t; want [2 4], 2, written", due, deletes, sum)
	}
	if n, oldest, err := ReadPendingSummary(s, summary); err != nil || n != 1 || !oldest.Equal(t0.Add(time.Second)) {
		t.Fatalf("summary: %d pending since %v (%v); want 1 since %v", n, oldest, err, t0.Add(time.Second))
	}
	q.Mark(2)
	if due, _, deletes, _ := step(q, delay+time.Second, true); !slices.Equal(due, []int64{9, 2}) || deletes != 2 {
		t.Fatalf("all: due %v, %d markers deleted; want [9 2], 2", due, deletes)
	}
	if n, _, err := ReadPendingSummary(s, summary); err != nil || n != 0 || !q.NextDue().IsZero() {
		t.Fatalf("none pending: summary %d (%v), NextDue %v", n, err, q.NextDue())
	}
	if err := ScanPending(s, table, t0, func(id int64, _ time.Time) { t.Errorf("marker of %d left", id) }); err != nil {
		t.Fatal(err)
	}
}

// mapWriter keeps the last write of each key (nil: deleted).
type mapWriter map[string][]byte

func (w *mapWriter) Put(key, value []byte) {
	if *w == nil {
		*w = mapWriter{}
	}
	(*w)[string(key)] = slices.Clone(value)
}

func (w *mapWriter) Delete(key []byte) {
	if *w == nil {
		*w = mapWriter{}
	}
	(*w)[string(key)] = nil
}

func openMem(t *testing.T, fs vfs.FS) *state.Store {
	t.Helper()
	s, err := state.Open("db", state.WithFS(fs))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}
