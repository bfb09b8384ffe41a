package lsh

import (
	"bytes"
	"cmp"
	"maps"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
)

func TestBucketKey(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 5))
	var bs []Bucket
	for range 200 {
		bs = append(bs, Bucket{Table: uint16(rng.IntN(3)), Hash: rng.Uint64() >> rng.IntN(64)})
	}
	for _, b := range bs {
		key := b.AppendKey([]byte{0xaa})
		if len(key) != 1+KeyLen {
			t.Fatalf("key of %d bytes", len(key))
		}
		got, err := ParseKey(append(key[1:], 1, 2, 3)) // a member id may follow
		if err != nil || got != b {
			t.Fatalf("ParseKey = %v, %v; want %v", got, err, b)
		}
	}
	// Keys order as (Table, Hash).
	byKey := slices.SortedFunc(slices.Values(bs), func(a, b Bucket) int {
		return bytes.Compare(a.AppendKey(nil), b.AppendKey(nil))
	})
	byField := slices.SortedFunc(slices.Values(bs), func(a, b Bucket) int {
		return cmp.Or(cmp.Compare(a.Table, b.Table), cmp.Compare(a.Hash, b.Hash))
	})
	if !slices.Equal(byKey, byField) {
		t.Fatal("key order differs from (Table, Hash) order")
	}
	if _, err := ParseKey(make([]byte, KeyLen-1)); err == nil || !strings.HasPrefix(err.Error(), "lsh: ") {
		t.Fatalf("short key: error %v", err)
	}
	if s := (Bucket{Table: 3, Hash: 0xab}).String(); s != "3:00000000000000ab" {
		t.Fatalf("String = %q", s)
	}
}

func TestDiff(t *testing.T) {
	b := func(table uint16, hash uint64) Bucket { return Bucket{table, hash} }
	for _, tc := range []struct {
		name                 string
		old, new             []Bucket
		wantRemoved, wantAdd []Bucket
	}{
		{"both empty", nil, nil, nil, nil},
		{"new item", nil, []Bucket{b(0, 1), b(1, 2)}, nil, []Bucket{b(0, 1), b(1, 2)}},
		{"item gone", []Bucket{b(0, 1), b(1, 2)}, nil, []Bucket{b(0, 1), b(1, 2)}, nil},
		{"unchanged", []Bucket{b(0, 1), b(1, 2)}, []Bucket{b(0, 1), b(1, 2)}, nil, nil},
		{"one band changed", []Bucket{b(0, 1), b(1, 2), b(2, 3)}, []Bucket{b(0, 1), b(1, 9), b(2, 3)},
			[]Bucket{b(1, 2)}, []Bucket{b(1, 9)}},
		{"all changed", []Bucket{b(0, 1), b(1, 2)}, []Bucket{b(0, 5), b(1, 6)},
			[]Bucket{b(0, 1), b(1, 2)}, []Bucket{b(0, 5), b(1, 6)}},
		{"tables differ", []Bucket{b(0, 1), b(2, 2)}, []Bucket{b(1, 1), b(2, 2), b(3, 3)},
			[]Bucket{b(0, 1)}, []Bucket{b(1, 1), b(3, 3)}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			removed, added := Diff(tc.old, tc.new)
			if !slices.Equal(removed, tc.wantRemoved) || !slices.Equal(added, tc.wantAdd) {
				t.Fatalf("Diff = -%v +%v; want -%v +%v", removed, added, tc.wantRemoved, tc.wantAdd)
			}
		})
	}
	defer func() {
		if r := recover(); r == nil || !strings.HasPrefix(r.(string), "lsh: Diff") {
			t.Fatalf("unordered input: recovered %v", r)
		}
	}()
	Diff([]Bucket{b(1, 1), b(0, 1)}, nil)
}

// TestDiffSetAlgebra checks on real signature changes that removed ∪
// unchanged = old, added ∪ unchanged = new, and that removed and added hold
// no bucket of the other side.
func TestDiffSetAlgebra(t *testing.T) {
	m := mustMinHash(t, MinHashConfig{Bands: 16, Rows: 3})
	rng := rand.New(rand.NewPCG(6, 6))
	set := func(bs []Bucket) map[Bucket]bool {
		s := map[Bucket]bool{}
		for _, b := range bs {
			s[b] = true
		}
		return s
	}
	for range 500 {
		sig := m.Signature([]int64{rng.Int64N(50) + 1})
		old := m.Buckets(sig, nil)
		for range 1 + rng.IntN(3) {
			m.Add(sig, rng.Int64N(50)+1)
		}
		new := m.Buckets(sig, nil)
		removed, added := Diff(old, new)
		oldS, newS := set(old), set(new)
		var unchanged []Bucket
		for _, b := range old {
			if newS[b] {
				unchanged = append(unchanged, b)
			}
		}
		if got := set(append(slices.Clone(removed), unchanged...)); !maps.Equal(got, oldS) {
			t.Fatalf("removed ∪ unchanged != old")
		}
		if got := set(append(slices.Clone(added), unchanged...)); !maps.Equal(got, newS) {
			t.Fatalf("added ∪ unchanged != new")
		}
		for _, b := range removed {
			if newS[b] {
				t.Fatalf("removed %v is in new", b)
			}
		}
		for _, b := range added {
			if oldS[b] {
				t.Fatalf("added %v is in old", b)
			}
		}
		if len(removed) != len(added) {
			t.Fatalf("%d removed, %d added: a non-empty signature keeps one bucket per band", len(removed), len(added))
		}
	}
}

// TestDeltasRebuildIndex plays the stage-1/stage-2 protocol: users gain
// artists in a stream; each signature change emits −removed/+added bucket
// deltas, which a bucket store applies. At the end the store must equal
// the one built from scratch from the final sets: every entry added and
// removed exactly once.
func TestDeltasRebuildIndex(t *testing.T) {
	m := mustMinHash(t, MinHashConfig{Bands: 8, Rows: 2})
	rng := rand.New(rand.NewPCG(7, 7))
	const users = 300
	sigs := make([]Signature, users)
	sets := make([][]int64, users)
	for u := range sigs {
		sigs[u] = m.Empty()
	}
	live := memIndex{}
	deltas := 0
	var before []Bucket
	for range 20_000 {
		u := rng.IntN(users)
		a := int64(rng.IntN(200) + 1)
		before = m.Buckets(sigs[u], before[:0])
		sets[u] = append(sets[u], a)
		if !m.Add(sigs[u], a) {
			continue
		}
		removed, added := Diff(before, m.Buckets(sigs[u], nil))
		live.remove(int64(u), removed)
		live.insert(int64(u), added)
		deltas += len(removed) + len(added)
	}
	scratch := memIndex{}
	for u := range users {
		slices.Sort(sets[u])
		scratch.add(int64(u), m.Buckets(m.Signature(sets[u]), nil))
	}
	if !maps.EqualFunc(live, scratch, slices.Equal) {
		t.Fatalf("store from deltas (%d buckets) != store from scratch (%d buckets)", len(live), len(scratch))
	}
	t.Logf("%d deltas, %d buckets", deltas, len(live))
}
