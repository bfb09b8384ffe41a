package state

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/cockroachdb/pebble/v2/vfs"
)

// TestCachedGet commits random writes and deletes and reads random keys
// through a small read cache between them, which takes in the values
// committed under half of the keys: every read equals a plain map of the
// commits, though most come from the cache.
func TestCachedGet(t *testing.T) {
	kept := func(k []byte) bool { return k[len(k)-1]%2 == 0 }
	s, err := Open("db", WithFS(vfs.NewMem()), WithReadCache(8<<10, kept))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	rng := rand.New(rand.NewPCG(1, 2))
	model := map[string][]byte{}
	key := func(i int) []byte { return fmt.Appendf(nil, "k%03d", i) }
	hits := 0
	for round := range 300 {
		b := s.NewBatch()
		for range 3 {
			k := key(rng.IntN(100))
			if rng.IntN(4) == 0 {
				delete(model, string(k))
				if err := b.Delete(k); err != nil {
					t.Fatal(err)
				}
				continue
			}
			v := fmt.Appendf(nil, "v%d", round)
			model[string(k)] = v
			if err := b.Set(k, v); err != nil {
				t.Fatal(err)
			}
		}
		if err := b.Commit(false); err != nil {
			t.Fatal(err)
		}
		if s.reads.reads.len() == 0 {
			t.Fatalf("round %d: no committed value kept", round)
		}
		for range 20 {
			k := key(rng.IntN(100))
			if _, cached, _ := s.reads.reads.get(k); cached {
				hits++
			}
			v, found, err := s.CachedGet(k)
			if err != nil {
				t.Fatal(err)
			}
			want, ok := model[string(k)]
			if found != ok || !bytes.Equal(v, want) {
				t.Fatalf("round %d: CachedGet(%s) = %q, %v; want %q, %v", round, k, v, found, want, ok)
			}
		}
	}
	if hits < 1000 {
		t.Fatalf("%d reads of 6000 came from the cache", hits)
	}
}

// TestCachedGetConcurrent has one writer commit ever larger versions of
// a few keys while readers read them through the cache: a read that
// starts after a commit never returns an older version.
func TestCachedGetConcurrent(t *testing.T) {
	s, err := Open("db", WithFS(vfs.NewMem()), WithReadCache(1<<20, nil))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	const keys = 4
	var committed [keys]atomic.Uint64
	key := func(i int) []byte { return []byte{'k', byte(i)} }
	var wg sync.WaitGroup
	stop := make(chan struct{})
	wg.Go(func() {
		defer close(stop)
		for n := uint64(1); n <= 3000; n++ {
			i := int(n % keys)
			b := s.NewBatch()
			if err := b.Set(key(i), binary.BigEndian.AppendUint64(nil, n)); err != nil {
				t.Error(err)
				return
			}
			if err := b.Commit(false); err != nil {
				t.Error(err)
				return
			}
			committed[i].Store(n)
		}
	})
	for r := range 2 {
		wg.Go(func() {
			for j := 0; ; j++ {
				select {
				case <-stop:
					return
				default:
				}
				i := (j + r) % keys
				least := committed[i].Load()
				v, found, err := s.CachedGet(key(i))
				if err != nil {
					t.Error(err)
					return
				}
				if least > 0 && (!found || binary.BigEndian.Uint64(v) < least) {
					t.Errorf("key %d: read %x after version %d committed", i, v, least)
					return
				}
			}
		})
	}
	wg.Wait()
}

// TestCachedScan commits random writes and deletes under a few prefixes
// and scans random prefixes through a small read cache, each scan
// stopping after a random number of pairs (so that cached scans are
// partial and later ones go on past them), ten scans per reader: every
// scan visits what a plain sorted map of the commits holds.
func TestCachedScan(t *testing.T) {
	s, err := Open("db", WithFS(vfs.NewMem()), WithReadCache(16<<10, nil))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	rng := rand.New(rand.NewPCG(3, 4))
	model := map[string]string{}
	prefix := func(i int) string { return fmt.Sprintf("p%d/", i) }
	for round := range 300 {
		b := s.NewBatch()
		for range 2 {
			k := fmt.Appendf(nil, "%s%03d", prefix(rng.IntN(8)), rng.IntN(40))
			if rng.IntN(4) == 0 {
				delete(model, string(k))
				if err := b.Delete(k); err != nil {
					t.Fatal(err)
				}
				continue
			}
			v := fmt.Sprintf("v%d", round)
			model[string(k)] = v
			if err := b.Set(k, []byte(v)); err != nil {
				t.Fatal(err)
			}
		}
		if err := b.Commit(false); err != nil {
			t.Fatal(err)
		}
		r := s.NewCachedReader()
		for range 10 {
			p := prefix(rng.IntN(8))
			limit := 1 + rng.IntN(30)
			var want []string
			for k, v := range model {
				if len(k) > len(p) && k[:len(p)] == p {
					want = append(want, k+"="+v)
				}
			}
			slices.Sort(want)
			want = want[:min(limit, len(want))]
			var got []string
			if err := r.Scan([]byte(p), func(k, v []byte) bool {
				got = append(got, string(k)+"="+string(v))
				return len(got) < limit
			}); err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(got, want) {
				t.Fatalf("round %d: scan of %s (limit %d)\n got %v\nwant %v", round, p, limit, got, want)
			}
		}
		if err := r.Close(); err != nil {
			t.Fatal(err)
		}
	}
	if s.reads.scans.len() == 0 {
		t.Fatal("no scan was cached")
	}
}

// TestCachedReaderBeforeCommit checks that what a reader opened before a
// commit reads (the store as of its opening) is not kept: a reader opened
// after the commit sees the commit.
func TestCachedReaderBeforeCommit(t *testing.T) {
	s, err := Open("db", WithFS(vfs.NewMem()), WithReadCache(1<<20, nil))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	write := func(k, v string) {
		b := s.NewBatch()
		if err := b.Set([]byte(k), []byte(v)); err != nil {
			t.Fatal(err)
		}
		if err := b.Commit(false); err != nil {
			t.Fatal(err)
		}
	}
	scan := func(r *CachedReader, p string) (got []string) {
		if err := r.Scan([]byte(p), func(k, v []byte) bool {
			got = append(got, string(k)+"="+string(v))
			return true
		}); err != nil {
			t.Fatal(err)
		}
		return got
	}
	write("a/1", "old")
	write("b/1", "old")
	early := s.NewCachedReader()
	defer early.Close()
	scan(early, "a/") // opens its iterator
	write("b/1", "new")
	if got := scan(early, "b/"); !slices.Equal(got, []string{"b/1=old"}) {
		t.Fatalf("the early reader read %v; want the store as of its opening", got)
	}
	late := s.NewCachedReader()
	defer late.Close()
	if got := scan(late, "b/"); !slices.Equal(got, []string{"b/1=new"}) {
		t.Fatalf("a reader opened after the commit read %v: the early reader's scan was kept", got)
	}
}

// TestCachedGetLargeBatch checks that a batch large enough for Pebble to
// commit as a flushable batch of its own (half a memtable) still drops
// the cached values of the keys it wrote.
func TestCachedGetLargeBatch(t *testing.T) {
	for _, keep := range []func([]byte) bool{nil, func([]byte) bool { return true }} {
		s, err := Open("db", WithFS(vfs.NewMem()), WithMemTableSize(1<<20), WithReadCache(1<<20, keep))
		if err != nil {
			t.Fatal(err)
		}
		key := []byte("k")
		for i, size := range []int{10, 1 << 20} {
			b := s.NewBatch()
			if err := b.Set(key, []byte{byte(i)}); err != nil {
				t.Fatal(err)
			}
			if err := b.Set([]byte("padding"), make([]byte, size)); err != nil {
				t.Fatal(err)
			}
			if err := b.Commit(false); err != nil {
				t.Fatal(err)
			}
			v, found, err := s.CachedGet(key)
			if err != nil || !found || len(v) != 1 || v[0] != byte(i) {
				t.Fatalf("keep %v, after a batch of %d bytes: %v, %v, %v; want [%d]", keep != nil, size, v, found, err, i)
			}
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
	}
}
