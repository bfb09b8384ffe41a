package state

import (
	"fmt"
	"testing"
)

// TestGenerations checks the bounds of a generations map: rewriting one
// key does not grow it; of many keys, the latest half budget's worth are
// held, the oldest forgotten, and memory stays within the budget (and
// the entry that passed it).
func TestGenerations(t *testing.T) {
	const budget = 100 * (8 + recentOverhead) // a hundred 4-byte keys of 4-byte values
	g := newGenerations(budget, func(v []byte) int { return len(v) })
	for range 1000 {
		g.put([]byte("same"), []byte("vvvv"))
	}
	if g.len() != 1 || g.size != 4+4+recentOverhead {
		t.Fatalf("one key rewritten: %d entries, %d bytes", g.len(), g.size)
	}
	key := func(i int) []byte { return fmt.Appendf(nil, "%04d", i) }
	for i := range 1000 {
		g.put(key(i), []byte("vvvv"))
		if g.len() > 101 {
			t.Fatalf("after %d keys: %d entries, past the budget", i+1, g.len())
		}
	}
	for i := 950; i < 1000; i++ {
		if _, ok, _ := g.get(key(i)); !ok {
			t.Fatalf("key %d of the last 50 forgotten", i)
		}
	}
	if _, ok, _ := g.get(key(0)); ok {
		t.Fatal("the first key is still held")
	}
	g.delete(key(999))
	if _, ok, _ := g.get(key(999)); ok {
		t.Fatal("a deleted key is held")
	}
}
