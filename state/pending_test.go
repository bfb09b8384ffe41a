package state

import (
	"bytes"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
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
		{PendingKey(nil, table, 7), PendingValue(nil, t0)},
		{PendingKey(nil, table, 3), PendingValue(nil, t0.Add(time.Second))},
		{PendingKey(nil, table, 9), {1}},
		{PendingKey(nil, table+1, 1), PendingValue(nil, t0)},
		{[]byte{summary}, AppendPendingSummary(nil, 3, t0)},
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
	if err := b.Set(PendingKey(nil, table, 4), []byte{1, 2}); err != nil {
		t.Fatal(err)
	}
	if err := b.Set([]byte{summary}, AppendPendingSummary(nil, 0, t0)); err != nil {
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
	var sum PendingSummary
	for i, step := range []struct {
		n     int
		write bool
	}{{0, true}, {0, false}, {2, true}, {2, false}, {0, true}} {
		v, ok := sum.Next(step.n, t0)
		if ok != step.write || ok && !bytes.Equal(v, AppendPendingSummary(nil, step.n, t0)) {
			t.Fatalf("step %d: Next(%d) = %x, %t; want a write %t", i, step.n, v, ok, step.write)
		}
	}
}
