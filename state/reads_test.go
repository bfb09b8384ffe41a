package state

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/cockroachdb/pebble/v2/vfs"
)

// TestCachedGet commits random writes and deletes and reads random keys
// through a small read cache between them: every read equals a plain map
// of the commits, though most come from the cache.
func TestCachedGet(t *testing.T) {
	s, err := Open("db", WithFS(vfs.NewMem()), WithReadCache(8<<10))
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
		for range 20 {
			k := key(rng.IntN(100))
			_, cached := s.reads.young[string(k)]
			if _, old := s.reads.old[string(k)]; cached || old {
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
	s, err := Open("db", WithFS(vfs.NewMem()), WithReadCache(1<<20))
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
