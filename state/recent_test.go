package state

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/cockroachdb/pebble/v2/vfs"
)

// TestRecent writes random values and deletes through a small Recent and
// the store, as a task does (Put while preparing, the store after the
// commit), and reads random keys back in ascending order: every read
// equals a plain map of the writes, whether the Recent or the store
// answered it.
func TestRecent(t *testing.T) {
	s := openMem(t, vfs.NewMem())
	defer s.Close()
	c := NewRecent(4 << 10)
	rng := rand.New(rand.NewPCG(1, 2))
	model := map[string][]byte{}
	key := func(i int) []byte { return fmt.Appendf(nil, "k%04d", i) }
	for round := range 200 {
		b := s.NewBatch()
		for range 20 {
			k := key(rng.IntN(300))
			if rng.IntN(5) == 0 {
				c.Put(k, nil)
				delete(model, string(k))
				if err := b.Delete(k); err != nil {
					t.Fatal(err)
				}
				continue
			}
			v := fmt.Appendf(nil, "v%d-%d", round, rng.IntN(1000))
			c.Put(k, v)
			model[string(k)] = v
			if err := b.Set(k, v); err != nil {
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
		var reads []int
		for range 30 {
			reads = append(reads, rng.IntN(300))
		}
		slices.Sort(reads)
		for _, i := range slices.Compact(reads) {
			v, found, err := c.Get(r, key(i))
			if err != nil {
				t.Fatal(err)
			}
			want, ok := model[string(key(i))]
			if found != ok || !bytes.Equal(v, want) {
				t.Fatalf("round %d: Get(%s) = %q, %v; want %q, %v", round, key(i), v, found, want, ok)
			}
		}
		if err := r.Close(); err != nil {
			t.Fatal(err)
		}
	}
}

// TestRecentHoldsPendingAndForgets checks that a Recent answers a value
// the store does not have yet (a transaction being prepared), a delete
// the store has not seen, and that it forgets past its budget.
func TestRecentHoldsPendingAndForgets(t *testing.T) {
	s := openMem(t, vfs.NewMem())
	defer s.Close()
	b := s.NewBatch()
	if err := b.Set([]byte("gone"), []byte("old")); err != nil {
		t.Fatal(err)
	}
	if err := b.Commit(false); err != nil {
		t.Fatal(err)
	}
	c := NewRecent(1 << 10)
	c.Put([]byte("gone"), nil)
	c.Put([]byte("new"), []byte("pending"))
	get := func(k string) ([]byte, bool) {
		t.Helper()
		r, err := s.NewSortedReader()
		if err != nil {
			t.Fatal(err)
		}
		defer r.Close()
		v, found, err := c.Get(r, []byte(k))
		if err != nil {
			t.Fatal(err)
		}
		return v, found
	}
	if v, found := get("gone"); found {
		t.Fatalf("deleted key read %q", v)
	}
	if v, found := get("new"); !found || string(v) != "pending" {
		t.Fatalf("pending key read %q, %v", v, found)
	}
	for i := range 100 { // NB: far past 1 KiB, so both generations turn over
		c.Put(fmt.Appendf(nil, "filler%03d", i), []byte("x"))
	}
	if v, found := get("new"); found {
		t.Fatalf("a key past the budget was still held: %q", v)
	}
	if v, found := get("gone"); !found || string(v) != "old" {
		t.Fatalf("a forgotten key read %q, %v; want the store's", v, found)
	}
	var none *Recent
	none.Put([]byte("new"), []byte("x"))
	c = none
	if _, found := get("new"); found {
		t.Fatal("a nil Recent held a value")
	}
	if NewRecent(0) != nil {
		t.Fatal("NewRecent(0) is not nil")
	}
}
