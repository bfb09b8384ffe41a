package lsh_test

import (
	"cmp"
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"

	"github.com/kappa-stream/kappa/events"
	"github.com/kappa-stream/kappa/generate"
	"github.com/kappa-stream/kappa/lsh"
)

// bandsData is the users of BenchmarkSimilar (e2e): the artist sets of
// the listens kappa generate makes with seed 13, and 1,000 of its users
// with their exact top-10 Jaccard floor.
type bandsData struct {
	artists map[int64][]int64
	queries []int64
	exact   []map[int64]float64 // of queries[i]: every other user with a common artist
}

var bandsOnce = sync.OnceValues(func() (*bandsData, error) {
	g, err := generate.New(generate.Config{Seed: 13, Users: 100_000, Songs: 50_000, Events: 2_000_000})
	if err != nil {
		return nil, err
	}
	var dec events.Decoder
	sets := map[int64]map[int64]bool{}
	var line []byte
	for range 2_000_000 {
		var l events.Listen
		line, _ = g.Next(line[:0])
		if dec.Decode(line, &l) != nil {
			continue
		}
		if sets[l.UserID] == nil {
			sets[l.UserID] = map[int64]bool{}
		}
		sets[l.UserID][l.ArtistID] = true
	}
	d := &bandsData{artists: map[int64][]int64{}}
	byArtist := map[int64][]int64{}
	for u, set := range sets {
		d.artists[u] = slices.Sorted(maps.Keys(set))
		for a := range set {
			byArtist[a] = append(byArtist[a], u)
		}
	}
	users := slices.Sorted(maps.Keys(d.artists))
	rng := rand.New(rand.NewPCG(13, 13))
	for range 1000 {
		q := users[rng.IntN(len(users))]
		inter := map[int64]int{}
		for _, a := range d.artists[q] {
			for _, u := range byArtist[a] {
				if u != q {
					inter[u]++
				}
			}
		}
		exact := make(map[int64]float64, len(inter))
		for u, n := range inter {
			exact[u] = float64(n) / float64(len(d.artists[q])+len(d.artists[u])-n)
		}
		d.queries = append(d.queries, q)
		d.exact = append(d.exact, exact)
	}
	return d, nil
})

// BenchmarkBandsRecall measures recall@10 of similar users for several
// b×r (and the fewest bands a scored candidate shares, -minN: see
// Candidates.Best) on the users of BenchmarkSimilar, with the default
// Limits and the ranking by estimated Jaccard that kappa does: the tables
// of the package documentation and docs/similarity.md. A query reads b
// buckets and the signatures of the candidates it scores, so the figures
// to weigh against recall are b and scored/query. ns/op is the 1,000 queries, in
// memory.
func BenchmarkBandsRecall(b *testing.B) {
	d, err := bandsOnce()
	if err != nil {
		b.Fatal(err)
	}
	for _, br := range [][3]int{{32, 4, 1}, {48, 3, 1}, {64, 2, 1}, {64, 3, 1}, {64, 4, 1}, {80, 3, 1}, {96, 4, 1}, {128, 4, 1}, {96, 3, 1}, {96, 3, 2}, {96, 3, 3}} {
		b.Run(fmt.Sprintf("%dx%d-min%d", br[0], br[1], br[2]), func(b *testing.B) {
			mh, err := lsh.NewMinHash(lsh.MinHashConfig{Bands: br[0], Rows: br[1]})
			if err != nil {
				b.Fatal(err)
			}
			sigs := make(map[int64]lsh.Signature, len(d.artists))
			buckets := map[lsh.Bucket][]int64{}
			for _, u := range slices.Sorted(maps.Keys(d.artists)) {
				sigs[u] = mh.Signature(d.artists[u])
				for _, bk := range mh.Buckets(sigs[u], nil) {
					buckets[bk] = append(buckets[bk], u) // NB: ascending ids, as stored
				}
			}
			limit := lsh.DefaultPerBucket + 1 // as a query reads: the user itself too
			var hits, want, scored int
			for b.Loop() {
				hits, want, scored = 0, 0, 0
				for i, q := range d.queries {
					c := lsh.NewCandidates(q, lsh.Limits{})
					for _, bk := range mh.Buckets(sigs[q], nil) {
						m := buckets[bk]
						c.Scan(slices.Values(m[:min(len(m), limit)]))
					}
					best := c.Best(10, br[2])
					scored += len(best)
					got := lsh.RankJaccard(sigs[q], func(yield func(int64, lsh.Signature) bool) {
						for _, id := range best {
							if !yield(id, sigs[id]) {
								return
							}
						}
					}, 10)
					h, w := recallHits(d.exact[i], got)
					hits += h
					want += w
				}
			}
			b.ReportMetric(float64(hits)/float64(want), "recall@10")
			b.ReportMetric(float64(br[0]), "bucket-reads/query")
			b.ReportMetric(float64(scored)/float64(len(d.queries)), "scored/query")
		})
	}
}

// recallHits counts the answers whose exact similarity reaches the 10th
// best exact one (ties count), out of the true top 10, as BenchmarkSimilar
// does.
func recallHits(exact map[int64]float64, got []lsh.Scored) (hits, want int) {
	all := slices.SortedFunc(maps.Values(exact), func(x, y float64) int { return cmp.Compare(y, x) })
	top := all[:min(10, len(all))]
	if len(top) == 0 {
		return 0, 0
	}
	floor := top[len(top)-1]
	for _, s := range got {
		if exact[s.ID] >= floor-1e-9 {
			hits++
		}
	}
	return min(hits, len(top)), len(top)
}
