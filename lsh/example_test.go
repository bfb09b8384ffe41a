package lsh_test

import (
	"fmt"
	"maps"

	"github.com/kappa-stream/kappa/lsh"
)

// A user plays artists; each signature change emits the bucket deltas that
// keep a bucket store exact.
func ExampleDiff() {
	m, err := lsh.NewMinHash(lsh.MinHashConfig{Bands: 8, Rows: 2})
	if err != nil {
		panic(err)
	}
	sig := m.Empty()
	for _, artist := range []int64{7, 7, 12, 40} {
		old := m.Buckets(sig, nil)
		if !m.Add(sig, artist) {
			fmt.Printf("artist %d: no change\n", artist)
			continue
		}
		removed, added := lsh.Diff(old, m.Buckets(sig, nil))
		fmt.Printf("artist %d: −%d +%d bucket entries\n", artist, len(removed), len(added))
	}
	other := m.Signature([]int64{7, 12, 99})
	fmt.Printf("estimated Jaccard %.2f (exact 0.50)\n", lsh.Jaccard(sig, other))
	// Output:
	// artist 7: −0 +8 bucket entries
	// artist 7: no change
	// artist 12: −7 +7 bucket entries
	// artist 40: −5 +5 bucket entries
	// estimated Jaccard 0.50 (exact 0.50)
}

// Similar songs: candidates from the query's buckets, ranked by exact
// cosine.
func ExampleRankCosine() {
	h, err := lsh.NewHyperplanes(lsh.HyperplaneConfig{Dim: 3, Tables: 8, Bits: 4})
	if err != nil {
		panic(err)
	}
	songs := map[int64][]float32{
		1: {1, 0.1, 0},
		2: {2, 0.3, 0.1}, // close to 1
		3: {0, 1, 0},
		4: {-1, 0, 0},
	}
	store := map[lsh.Bucket][]int64{} // bucket → members, ascending
	for _, id := range []int64{1, 2, 3, 4} {
		buckets, err := h.Buckets(songs[id], nil)
		if err != nil {
			panic(err)
		}
		for _, b := range buckets {
			store[b] = append(store[b], id)
		}
	}
	query, _ := h.Buckets(songs[1], nil)
	c := lsh.NewCandidates(1, lsh.Limits{})
	for _, b := range query {
		c.Scan(func(yield func(int64) bool) {
			for _, id := range store[b] {
				if !yield(id) {
					return
				}
			}
		})
	}
	cands := map[int64][]float32{}
	for _, id := range c.IDs() {
		cands[id] = songs[id]
	}
	// Songs 3 and 4 point elsewhere: they share no bucket with song 1.
	for _, s := range lsh.RankCosine(songs[1], maps.All(cands), 2) {
		fmt.Printf("song %d cosine %.3f\n", s.ID, s.Score)
	}
	// Output:
	// song 2 cosine 0.998
}
