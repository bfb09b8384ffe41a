package state

import (
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/lovoo/goka/storage"
	"go.uber.org/goleak"
)

func openGoka(t *testing.T, fs vfs.FS, dir string) *GokaStorage {
	t.Helper()
	g, err := NewGokaStorage(dir, WithFS(fs))
	if err != nil {
		t.Fatal(err)
	}
	if err := g.Open(); err != nil {
		t.Fatal(err)
	}
	return g
}

func closeGoka(t *testing.T, g *GokaStorage) {
	t.Helper()
	if err := g.Close(); err != nil {
		t.Fatal(err)
	}
}

// gokaOp is one step of a scenario: an operation and what it must return.
type gokaOp struct {
	op    string // set, get, has, delete
	key   string
	value []byte // set: the value; get: the expected value (nil: missing)
	has   bool   // has: the expected answer
}

func TestGokaGetSetDelete(t *testing.T) {
	for _, tc := range []struct {
		name string
		ops  []gokaOp
	}{
		{"missing key", []gokaOp{
			{op: "has", key: "a"},
			{op: "get", key: "a"},
		}},
		{"set then get", []gokaOp{
			{op: "set", key: "a", value: []byte("1")},
			{op: "has", key: "a", has: true},
			{op: "get", key: "a", value: []byte("1")},
			{op: "has", key: "b"},
		}},
		{"overwrite", []gokaOp{
			{op: "set", key: "a", value: []byte("1")},
			{op: "set", key: "a", value: []byte("22")},
			{op: "get", key: "a", value: []byte("22")},
		}},
		{"delete", []gokaOp{
			{op: "set", key: "a", value: []byte("1")},
			{op: "delete", key: "a"},
			{op: "has", key: "a"},
			{op: "get", key: "a"},
			{op: "delete", key: "never-set"},
		}},
		{"empty and nil values exist", []gokaOp{
			{op: "set", key: "e", value: []byte{}},
			{op: "set", key: "n", value: nil},
			{op: "has", key: "e", has: true},
			{op: "has", key: "n", has: true},
			{op: "get", key: "e", value: []byte{}},
			{op: "get", key: "n", value: []byte{}},
		}},
		{"empty key and binary keys", []gokaOp{
			{op: "set", key: "", value: []byte("empty")},
			{op: "set", key: "\x00\xff", value: []byte("bin")},
			{op: "get", key: "", value: []byte("empty")},
			{op: "get", key: "\x00\xff", value: []byte("bin")},
		}},
		{"goka's offset key is an ordinary key", []gokaOp{
			{op: "set", key: "__offset", value: []byte("mine")},
			{op: "get", key: "__offset", value: []byte("mine")},
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g := openGoka(t, vfs.NewMem(), "db")
			defer closeGoka(t, g)
			for i, o := range tc.ops {
				switch o.op {
				case "set":
					if err := g.Set(o.key, o.value); err != nil {
						t.Fatalf("op %d: %v", i, err)
					}
				case "delete":
					if err := g.Delete(o.key); err != nil {
						t.Fatalf("op %d: %v", i, err)
					}
				case "has":
					has, err := g.Has(o.key)
					if err != nil || has != o.has {
						t.Fatalf("op %d: Has(%q) = %v, %v; want %v", i, o.key, has, err, o.has)
					}
				case "get":
					v, err := g.Get(o.key)
					if err != nil || (v == nil) != (o.value == nil) || string(v) != string(o.value) {
						t.Fatalf("op %d: Get(%q) = %q (nil %v), %v; want %q (nil %v)", i, o.key, v, v == nil, err, o.value, o.value == nil)
					}
				}
			}
		})
	}
}

func TestGokaGetReturnsACopy(t *testing.T) {
	g := openGoka(t, vfs.NewMem(), "db")
	defer closeGoka(t, g)
	in := []byte("value")
	if err := g.Set("k", in); err != nil {
		t.Fatal(err)
	}
	in[0] = 'X'
	v, _ := g.Get("k")
	v[1] = 'Y'
	if w, _ := g.Get("k"); string(w) != "value" {
		t.Fatalf("Get = %q after changing the slices given and returned, want %q", w, "value")
	}
}

// TestGokaOffset follows goka's own storage tests (TestLeveldbStorage):
// offsets before and after MarkRecovered, across a reopen.
func TestGokaOffset(t *testing.T) {
	for _, tc := range []struct {
		name string
		// run acts on a fresh open storage; reopen says whether to close
		// and reopen it before the final GetOffset.
		run    func(t *testing.T, g *GokaStorage)
		reopen bool
		want   int64
	}{
		{"default when none", func(*testing.T, *GokaStorage) {}, false, -2},
		{"default when none after reopen", func(*testing.T, *GokaStorage) {}, true, -2},
		{"set", func(t *testing.T, g *GokaStorage) { mustSetOffset(t, g, 100) }, false, 100},
		{"zero is an offset", func(t *testing.T, g *GokaStorage) { mustSetOffset(t, g, 0) }, true, 0},
		{"set while recovering, then reopen", func(t *testing.T, g *GokaStorage) {
			mustSetOffset(t, g, 100)
		}, true, 100},
		{"mark recovered, set, reopen", func(t *testing.T, g *GokaStorage) {
			mustSetOffset(t, g, 100)
			if err := g.MarkRecovered(); err != nil {
				t.Fatal(err)
			}
			mustSetOffset(t, g, 101)
		}, true, 101},
		{"mark recovered twice", func(t *testing.T, g *GokaStorage) {
			mustSetOffset(t, g, 7)
			for range 2 {
				if err := g.MarkRecovered(); err != nil {
					t.Fatal(err)
				}
			}
		}, true, 7},
		{"negative offsets round-trip", func(t *testing.T, g *GokaStorage) {
			if err := g.MarkRecovered(); err != nil {
				t.Fatal(err)
			}
			mustSetOffset(t, g, -1)
		}, true, -1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fs := vfs.NewMem()
			g := openGoka(t, fs, "db")
			tc.run(t, g)
			if tc.reopen {
				closeGoka(t, g)
				g = openGoka(t, fs, "db")
			}
			defer closeGoka(t, g)
			got, err := g.GetOffset(-2)
			if err != nil || got != tc.want {
				t.Fatalf("GetOffset = %d, %v; want %d", got, err, tc.want)
			}
		})
	}
}

func mustSetOffset(t *testing.T, g *GokaStorage, o int64) {
	t.Helper()
	if err := g.SetOffset(o); err != nil {
		t.Fatal(err)
	}
}

// TestGokaOffsetWriteThrough checks when the offset is written to Pebble:
// not while recovering (until MarkRecovered or Close), at every SetOffset
// after.
func TestGokaOffsetWriteThrough(t *testing.T) {
	g := openGoka(t, vfs.NewMem(), "db")
	defer closeGoka(t, g)
	written := func() int64 {
		t.Helper()
		v, closer, err := g.s.db.Get(gokaOffsetKey())
		if errors.Is(err, pebble.ErrNotFound) {
			return -2
		}
		if err != nil {
			t.Fatal(err)
		}
		defer closer.Close()
		return Int64(v, 0)
	}
	mustSetOffset(t, g, 5)
	if o := written(); o != -2 {
		t.Fatalf("offset written while recovering = %d, want none (-2)", o)
	}
	if err := g.MarkRecovered(); err != nil {
		t.Fatal(err)
	}
	if o := written(); o != 5 {
		t.Fatalf("offset written by MarkRecovered = %d, want 5", o)
	}
	mustSetOffset(t, g, 6)
	if o := written(); o != 6 {
		t.Fatalf("offset written by SetOffset = %d, want 6", o)
	}
}

func TestGokaOffsetFlushedWhileRecovering(t *testing.T) {
	defer goleak.VerifyNone(t)
	g, err := NewGokaStorage("db", WithFS(vfs.NewMem()))
	if err != nil {
		t.Fatal(err)
	}
	g.flushEvery = time.Millisecond
	if err := g.Open(); err != nil {
		t.Fatal(err)
	}
	defer closeGoka(t, g)
	mustSetOffset(t, g, 42)
	deadline := time.Now().Add(10 * time.Second)
	for {
		v, closer, err := g.s.db.Get(gokaOffsetKey())
		if err == nil {
			o := Int64(v, 0)
			closer.Close()
			if o != 42 {
				t.Fatalf("offset flushed while recovering = %d, want 42", o)
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("offset not flushed while recovering: %v", err)
		}
		time.Sleep(time.Millisecond)
	}
}

func TestGokaIterator(t *testing.T) {
	keys := []string{"a", "b", "b1", "b2", "c", "c\xff", "d"}
	fs := vfs.NewMem()
	g := openGoka(t, fs, "db")
	defer closeGoka(t, g)
	for _, k := range keys {
		if err := g.Set(k, []byte("v-"+k)); err != nil {
			t.Fatal(err)
		}
	}
	// The offset is not part of the key space.
	mustSetOffset(t, g, 9)
	if err := g.MarkRecovered(); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name         string
		start, limit []byte
		all          bool // Iterator() instead of IteratorWithRange
		want         []string
	}{
		{name: "all", all: true, want: keys},
		{name: "nil range", want: keys},
		{name: "half-open range", start: []byte("b"), limit: []byte("c"), want: []string{"b", "b1", "b2"}},
		{name: "no start", limit: []byte("b1"), want: []string{"a", "b"}},
		{name: "prefix when no limit", start: []byte("b"), want: []string{"b", "b1", "b2"}},
		{name: "prefix with 0xff", start: []byte("c"), want: []string{"c", "c\xff"}},
		{name: "empty range", start: []byte("x"), limit: []byte("y"), want: nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var it storage.Iterator
			var err error
			if tc.all {
				it, err = g.Iterator()
			} else {
				it, err = g.IteratorWithRange(tc.start, tc.limit)
			}
			if err != nil {
				t.Fatal(err)
			}
			defer it.Release()
			if it.Key() != nil {
				t.Fatalf("Key before Next = %q, want nil", it.Key())
			}
			var got []string
			for it.Next() {
				v, err := it.Value()
				if err != nil {
					t.Fatal(err)
				}
				if string(v) != "v-"+string(it.Key()) {
					t.Fatalf("value of %q = %q", it.Key(), v)
				}
				got = append(got, string(it.Key()))
			}
			if err := it.Err(); err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(got, tc.want) {
				t.Fatalf("keys = %q, want %q", got, tc.want)
			}
			if it.Next() || it.Key() != nil {
				t.Fatal("Next after the end moved the iterator")
			}
			if v, err := it.Value(); v != nil || err != nil {
				t.Fatalf("Value after the end = %q, %v; want nil, nil", v, err)
			}
		})
	}
}

func TestGokaIteratorSeek(t *testing.T) {
	g := openGoka(t, vfs.NewMem(), "db")
	defer closeGoka(t, g)
	for i := 1; i <= 3; i++ {
		if err := g.Set(fmt.Sprintf("key-%d", i), fmt.Appendf(nil, "val-%d", i)); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range []struct {
		name     string
		from     []byte // nil: Iterator(); else IteratorWithRange(from, "key-3")
		seek     string
		ok       bool
		key, val string
		next     []string // keys Next visits after the seek
	}{
		{name: "exact", seek: "key-2", ok: true, key: "key-2", val: "val-2", next: []string{"key-3"}},
		{name: "between", seek: "key-1x", ok: true, key: "key-2", val: "val-2", next: []string{"key-3"}},
		{name: "before all", seek: "a", ok: true, key: "key-1", val: "val-1", next: []string{"key-2", "key-3"}},
		{name: "past the end", seek: "key-4", ok: false},
		{name: "below the range's start", from: []byte("key-2"), seek: "a", ok: true, key: "key-2", val: "val-2"},
		{name: "at the range's limit", from: []byte("key-1"), seek: "key-3", ok: false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var it storage.Iterator
			var err error
			if tc.from == nil {
				it, err = g.Iterator()
			} else {
				it, err = g.IteratorWithRange(tc.from, []byte("key-3"))
			}
			if err != nil {
				t.Fatal(err)
			}
			defer it.Release()
			if ok := it.Seek([]byte(tc.seek)); ok != tc.ok {
				t.Fatalf("Seek(%q) = %v, want %v", tc.seek, ok, tc.ok)
			}
			if !tc.ok {
				if it.Key() != nil || it.Next() {
					t.Fatal("iterator is on a key after a failed Seek")
				}
				return
			}
			v, err := it.Value()
			if string(it.Key()) != tc.key || string(v) != tc.val || err != nil {
				t.Fatalf("after Seek: %q = %q, %v; want %q = %q", it.Key(), v, err, tc.key, tc.val)
			}
			var next []string
			for it.Next() {
				next = append(next, string(it.Key()))
			}
			if !slices.Equal(next, tc.next) {
				t.Fatalf("Next after Seek visited %q, want %q", next, tc.next)
			}
		})
	}
}

func TestGokaIteratorSnapshotAndRelease(t *testing.T) {
	g := openGoka(t, vfs.NewMem(), "db")
	defer closeGoka(t, g)
	for _, k := range []string{"a", "b"} {
		if err := g.Set(k, []byte(k)); err != nil {
			t.Fatal(err)
		}
	}
	it, err := g.Iterator()
	if err != nil {
		t.Fatal(err)
	}
	if err := g.Set("c", []byte("c")); err != nil {
		t.Fatal(err)
	}
	if err := g.Delete("a"); err != nil {
		t.Fatal(err)
	}
	var got []string
	for it.Next() {
		got = append(got, string(it.Key()))
	}
	if !slices.Equal(got, []string{"a", "b"}) {
		t.Fatalf("iterator saw %q, want the snapshot [a b]", got)
	}
	it.Release()
	it.Release()
	if it.Next() || it.Seek([]byte("a")) || it.Key() != nil || it.Err() != nil {
		t.Fatal("a released iterator is not exhausted")
	}
}

func TestGokaClosed(t *testing.T) {
	defer goleak.VerifyNone(t)
	g := openGoka(t, vfs.NewMem(), "db")
	mustSetOffset(t, g, 3)
	closeGoka(t, g)
	for name, err := range map[string]error{
		"Close":         g.Close(),
		"Open":          g.Open(),
		"Set":           g.Set("k", nil),
		"Delete":        g.Delete("k"),
		"SetOffset":     g.SetOffset(1),
		"MarkRecovered": g.MarkRecovered(),
		"Get":           second(g.Get("k")),
		"Has":           second(g.Has("k")),
		"GetOffset":     second(g.GetOffset(0)),
		"Iterator":      second(g.Iterator()),
	} {
		if !errors.Is(err, ErrGokaClosed) {
			t.Errorf("%s after Close = %v, want ErrGokaClosed", name, err)
		}
	}
}

func second[T any](_ T, err error) error { return err }

func TestGokaBuilder(t *testing.T) {
	defer goleak.VerifyNone(t)
	fs := vfs.NewMem()
	build := GokaBuilder("root", WithFS(fs))
	var opened []storage.Storage
	for _, p := range []int32{0, 1} {
		st, err := build("group-table", p)
		if err != nil {
			t.Fatal(err)
		}
		if err := st.Open(); err != nil {
			t.Fatal(err)
		}
		if err := st.Set("k", []byte{byte(p)}); err != nil {
			t.Fatal(err)
		}
		opened = append(opened, st)
	}
	for _, st := range opened {
		if err := st.Close(); err != nil {
			t.Fatal(err)
		}
	}
	names, err := fs.List("root")
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(names)
	if want := []string{"group-table.0", "group-table.1"}; !slices.Equal(names, want) {
		t.Fatalf("root holds %q, want %q", names, want)
	}
	// Each partition is its own database.
	st, err := build("group-table", 1)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if v, err := st.Get("k"); err != nil || string(v) != "\x01" {
		t.Fatalf("partition 1 after reopen: Get = %q, %v; want \\x01", v, err)
	}
}

// TestGokaConcurrentReaders runs readers and iterators against one writer,
// as goka does (the partition's goroutine writes; views and Processor.Get
// read); run it with -race.
func TestGokaConcurrentReaders(t *testing.T) {
	g := openGoka(t, vfs.NewMem(), "db")
	defer closeGoka(t, g)
	const n = 2000
	done := make(chan struct{})
	var wg sync.WaitGroup
	for r := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-done:
					return
				default:
				}
				if r%2 == 0 {
					if _, err := g.Get(fmt.Sprint(r)); err != nil {
						t.Error(err)
						return
					}
					continue
				}
				it, err := g.Iterator()
				if err != nil {
					t.Error(err)
					return
				}
				prev := ""
				for it.Next() {
					if k := string(it.Key()); k < prev {
						t.Errorf("iterator went back from %q to %q", prev, k)
					} else {
						prev = k
					}
				}
				it.Release()
			}
		}()
	}
	for i := range n {
		if err := g.Set(fmt.Sprintf("%06d", i), []byte("v")); err != nil {
			t.Fatal(err)
		}
		mustSetOffset(t, g, int64(i))
	}
	close(done)
	wg.Wait()
	if o, err := g.GetOffset(-2); err != nil || o != n-1 {
		t.Fatalf("GetOffset = %d, %v; want %d", o, err, n-1)
	}
}
