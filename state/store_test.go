package state

import (
	"bytes"
	"fmt"
	"math"
	"sort"
	"testing"

	"github.com/cockroachdb/pebble/v2/vfs"
)

func openMem(t *testing.T, fs vfs.FS) *Store {
	t.Helper()
	s, err := Open("db", WithFS(fs))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestCountersMergeAndPersist(t *testing.T) {
	fs := vfs.NewMem()
	s := openMem(t, fs)
	key := []byte("k")
	for _, delta := range [][]int64{{1, 0}, {2, 5}, {-1}, {0, 0, 7}} {
		b := s.NewBatch()
		if err := b.Merge(key, AppendCounters(nil, delta...)); err != nil {
			t.Fatal(err)
		}
		if err := b.Commit(false); err != nil {
			t.Fatal(err)
		}
	}
	check := func(s *Store) {
		t.Helper()
		var got []int64
		if err := s.Scan(nil, nil, func(k, v []byte) error {
			if !bytes.Equal(k, key) {
				return nil
			}
			for i := 0; i*8 < len(v); i++ {
				got = append(got, Counter(v, i))
			}
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		if want := []int64{2, 5, 7}; fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("counters = %v, want %v", got, want)
		}
	}
	check(s)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = openMem(t, fs)
	defer s.Close()
	check(s)
	if got := Counter(AppendCounters(nil, 4), 3); got != 0 {
		t.Fatalf("missing slot = %d, want 0", got)
	}
}

func TestOffsetsCommitWithData(t *testing.T) {
	fs := vfs.NewMem()
	s := openMem(t, fs)
	if _, ok, err := s.Offset("listens", 3); err != nil || ok {
		t.Fatalf("fresh store offset: ok=%v err=%v", ok, err)
	}
	b := s.NewBatch()
	if err := b.Merge([]byte("x"), AppendCounters(nil, 1)); err != nil {
		t.Fatal(err)
	}
	if err := b.SetOffset("listens", 3, 42); err != nil {
		t.Fatal(err)
	}
	if err := b.SetOffset("listens", 4, 7); err != nil {
		t.Fatal(err)
	}
	if err := b.Commit(true); err != nil {
		t.Fatal(err)
	}
	discarded := s.NewBatch()
	if err := discarded.SetOffset("listens", 3, 99); err != nil {
		t.Fatal(err)
	}
	if err := discarded.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = openMem(t, fs)
	defer s.Close()
	for _, tc := range []struct {
		topic     string
		partition int32
		want      int64
		ok        bool
	}{
		{"listens", 3, 42, true},
		{"listens", 4, 7, true},
		{"listens", 5, 0, false},
		{"listens.dlq", 3, 0, false},
	} {
		got, ok, err := s.Offset(tc.topic, tc.partition)
		if err != nil || ok != tc.ok || got != tc.want {
			t.Errorf("Offset(%s, %d) = %d, %v, %v; want %d, %v", tc.topic, tc.partition, got, ok, err, tc.want, tc.ok)
		}
	}
}

func TestKeyOrder(t *testing.T) {
	ints := []int64{math.MinInt64, -5, -1, 0, 1, 2, 300, math.MaxInt64}
	var keys [][]byte
	for _, v := range ints {
		keys = append(keys, AppendInt64(nil, v))
	}
	if !sort.SliceIsSorted(keys, func(i, j int) bool { return bytes.Compare(keys[i], keys[j]) < 0 }) {
		t.Fatal("AppendInt64 does not preserve order")
	}
	for i, v := range ints {
		if got := Int64(keys[i], 0); got != v {
			t.Fatalf("Int64 round trip %d -> %d", v, got)
		}
	}
	for _, tc := range []struct{ in, want []byte }{
		{[]byte{1, 2}, []byte{1, 3}},
		{[]byte{1, 0xff}, []byte{2}},
		{[]byte{0xff, 0xff}, nil},
	} {
		if got := PrefixEnd(tc.in); !bytes.Equal(got, tc.want) {
			t.Errorf("PrefixEnd(%x) = %x, want %x", tc.in, got, tc.want)
		}
	}
	for _, v := range []uint32{0, 1, 1 << 31, math.MaxUint32} {
		if got := Uint32(AppendUint32(nil, v), 0); got != v {
			t.Fatalf("Uint32 round trip %d -> %d", v, got)
		}
	}
}

func TestScanBoundsAndOrder(t *testing.T) {
	s := openMem(t, vfs.NewMem())
	defer s.Close()
	b := s.NewBatch()
	for _, k := range []uint64{5, 1, 9, 3, 7} {
		if err := b.Set(AppendUint64([]byte{'t'}, k), nil); err != nil {
			t.Fatal(err)
		}
	}
	if err := b.Commit(false); err != nil {
		t.Fatal(err)
	}
	var got []uint64
	err := s.Scan(AppendUint64([]byte{'t'}, 3), AppendUint64([]byte{'t'}, 9), func(k, _ []byte) error {
		got = append(got, Uint64(k, 1))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(got) != "[3 5 7]" {
		t.Fatalf("scan = %v, want [3 5 7]", got)
	}
}

// TestSortedReaderScans reads the keys of one prefix between keys of
// others with a SortedReader: Scan from the first, ScanFloor from the last
// before a key (from the first when none is), both stopping where fn says.
func TestSortedReaderScans(t *testing.T) {
	s := openMem(t, vfs.NewMem())
	defer s.Close()
	b := s.NewBatch()
	for _, k := range []string{"a1", "a9", "b2", "b4", "b6", "c1"} {
		if err := b.Set([]byte(k), nil); err != nil {
			t.Fatal(err)
		}
	}
	if err := b.Commit(false); err != nil {
		t.Fatal(err)
	}
	r, err := s.NewSortedReader()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	for _, tc := range []struct {
		floor string // "": Scan
		stop  int    // keys fn takes before it returns false (0: all)
		want  string
	}{
		{want: "[b2 b4 b6]"},
		{stop: 2, want: "[b2 b4]"},
		{floor: "b0", want: "[b2 b4 b6]"},
		{floor: "b2", want: "[b2 b4 b6]"},
		{floor: "b3", want: "[b2 b4 b6]"},
		{floor: "b5", want: "[b4 b6]"},
		{floor: "b5", stop: 1, want: "[b4]"},
		{floor: "b7", want: "[b6]"},
		{floor: "b99", want: "[b6]"},
	} {
		var got []string
		fn := func(k, _ []byte) bool {
			got = append(got, string(k))
			return len(got) != tc.stop
		}
		if tc.floor == "" {
			err = r.Scan([]byte("b"), fn)
		} else {
			err = r.ScanFloor([]byte("b"), []byte(tc.floor), fn)
		}
		if err != nil || fmt.Sprint(got) != tc.want {
			t.Errorf("floor %q, stop %d: %v (%v), want %s", tc.floor, tc.stop, got, err, tc.want)
		}
	}
}

func BenchmarkMergeBatch(b *testing.B) {
	s, err := Open("db", WithFS(vfs.NewMem()))
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	val := AppendCounters(nil, 1, 1)
	key := make([]byte, 0, 16)
	const perBatch = 10_000
	b.ResetTimer()
	for i := 0; i < b.N; {
		batch := s.NewBatch()
		for j := 0; j < perBatch && i < b.N; j++ {
			key = AppendUint64(append(key[:0], 's'), uint64(i%50_000))
			if err := batch.Merge(key, val); err != nil {
				b.Fatal(err)
			}
			i++
		}
		if err := batch.Commit(false); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "merges/s")
}
