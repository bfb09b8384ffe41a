package lsh

import (
	"iter"
	"math/rand/v2"
	"slices"
	"sort"
	"strings"
	"testing"
)

// counted yields ids and counts how many the consumer pulled.
func counted(ids []int64, pulled *int) iter.Seq[int64] {
	return func(yield func(int64) bool) {
		for _, id := range ids {
			*pulled++
			if !yield(id) {
				return
			}
		}
	}
}

func seq(from, n int) []int64 {
	ids := make([]int64, n)
	for i := range ids {
		ids[i] = int64(from + i)
	}
	return ids
}

func TestCandidatesPerBucket(t *testing.T) {
	c := NewCandidates(3, Limits{PerBucket: 10})
	var pulled int
	if capped := c.Scan(counted(seq(1, 1000), &pulled)); !capped || pulled != 11 {
		t.Fatalf("oversized bucket: capped=%v after pulling %d; want true after 11", capped, pulled)
	}
	// Self (3) counts towards the cap but is not a candidate.
	if want := []int64{1, 2, 4, 5, 6, 7, 8, 9, 10}; !slices.Equal(c.IDs(), want) {
		t.Fatalf("IDs = %v, want %v", c.IDs(), want)
	}
	pulled = 0
	if capped := c.Scan(counted([]int64{9, 20, 3, 21}, &pulled)); capped || pulled != 4 {
		t.Fatalf("small bucket: capped=%v after %d", capped, pulled)
	}
	if want := []int64{1, 2, 4, 5, 6, 7, 8, 9, 10, 20, 21}; !slices.Equal(c.IDs(), want) {
		t.Fatalf("IDs = %v, want %v", c.IDs(), want)
	}
	if capped := c.Scan(slices.Values(seq(100, 10))); capped {
		t.Fatal("a bucket of exactly PerBucket entries is not over it")
	}
	if c.Capped() != 1 || c.Full() {
		t.Fatalf("Capped = %d, Full = %v; want 1, false", c.Capped(), c.Full())
	}
	c.Reset(1)
	if len(c.IDs()) != 0 || c.Capped() != 0 {
		t.Fatal("Reset kept state")
	}
	c.Scan(slices.Values([]int64{1, 2}))
	if !slices.Equal(c.IDs(), []int64{2}) {
		t.Fatalf("after Reset: IDs = %v", c.IDs())
	}
}

// TestCandidatesBudget: past Candidates, buckets add no candidate but
// still count the buckets the known ones share; Best re-ranks the Rerank
// that share the most (ties: read first).
func TestCandidatesBudget(t *testing.T) {
	c := NewCandidates(0, Limits{PerBucket: 100, Candidates: 25, Rerank: 4})
	c.Scan(slices.Values(seq(1, 20)))
	var pulled int
	if capped := c.Scan(counted(seq(11, 50), &pulled)); capped || len(c.IDs()) != 25 || !c.Full() {
		t.Fatalf("capped=%v, %d candidates, Full=%v; want false, 25, true", capped, len(c.IDs()), c.Full())
	}
	if pulled != 50 {
		t.Fatalf("pulled %d entries, want the bucket's 50", pulled)
	}
	if capped := c.Scan(slices.Values([]int64{500, 3, 12, 501})); capped || len(c.IDs()) != 25 {
		t.Fatalf("full: capped=%v, %d candidates", capped, len(c.IDs()))
	}
	// 12 is in three buckets, 3 and 11…20 in two.
	if got, want := c.Best(10, 1), []int64{12, 3, 11, 13}; !slices.Equal(got, want) {
		t.Fatalf("Best = %v, want %v", got, want)
	}
	// Only 12 shares three buckets: enough for k = 1, not for k = 2.
	if got, want := c.Best(1, 3), []int64{12}; !slices.Equal(got, want) {
		t.Fatalf("Best(1, 3) = %v, want %v", got, want)
	}
	if got, want := c.Best(2, 3), []int64{12, 3, 11, 13}; !slices.Equal(got, want) {
		t.Fatalf("Best(2, 3) = %v, want %v", got, want)
	}
	if c.Capped() != 0 {
		t.Fatalf("Capped = %d, want 0", c.Capped())
	}
}

func TestLimits(t *testing.T) {
	if l := (Limits{}).withDefaults(); l.PerBucket != DefaultPerBucket || l.Candidates != DefaultCandidates {
		t.Fatalf("defaults %+v", l)
	}
	for _, tc := range []struct {
		l   Limits
		err string
	}{
		{Limits{}, ""},
		{Limits{PerBucket: 1, Candidates: 1}, ""},
		{Limits{PerBucket: -1}, "lsh: PerBucket -1 negative"},
		{Limits{Candidates: -2}, "lsh: Candidates -2 negative"},
		{Limits{Rerank: -3}, "lsh: Rerank -3 negative"},
	} {
		err := tc.l.Validate()
		if (err == nil) != (tc.err == "") || (err != nil && err.Error() != tc.err) {
			t.Errorf("%+v: Validate = %v, want %q", tc.l, err, tc.err)
		}
	}
	defer func() {
		if r := recover(); r == nil || !strings.HasPrefix(r.(string), "lsh: ") {
			t.Fatalf("recovered %v", r)
		}
	}()
	NewCandidates(1, Limits{PerBucket: -1})
}

// TestCandidatesBestOrder checks Best against a stable sort of the
// candidates by shared buckets, for random buckets, limits, k and
// minShared: those sharing fewer than minShared buckets are left out
// when k others share that many.
func TestCandidatesBestOrder(t *testing.T) {
	rng := rand.New(rand.NewPCG(21, 21))
	for range 200 {
		lim := Limits{Rerank: 1 + rng.IntN(60), Candidates: 1 + rng.IntN(80)}
		c := NewCandidates(0, lim)
		for range rng.IntN(12) {
			var bucket []int64
			for range rng.IntN(30) {
				bucket = append(bucket, rng.Int64N(100))
			}
			slices.Sort(bucket)
			c.Scan(slices.Values(slices.Compact(bucket)))
		}
		order := make([]int, len(c.ids))
		for i := range order {
			order[i] = i
		}
		sort.SliceStable(order, func(a, b int) bool { return c.hits[order[a]] > c.hits[order[b]] })
		k, minShared := 1+rng.IntN(10), rng.IntN(5)
		enough := 0
		for _, h := range c.hits {
			if int(h) >= minShared {
				enough++
			}
		}
		var want []int64
		for _, i := range order[:min(len(order), lim.Rerank)] {
			if enough < k || int(c.hits[i]) >= minShared {
				want = append(want, c.ids[i])
			}
		}
		if got := c.Best(k, minShared); !slices.Equal(got, want) && len(got)+len(want) > 0 {
			t.Fatalf("%+v, k %d, minShared %d: Best = %v\nwant %v", lim, k, minShared, got, want)
		}
	}
}
