package lsh

import (
	"math/rand/v2"
	"runtime"
	"slices"
	"testing"
)

// BenchmarkMinHashAdd measures the stage-1 hot path: a user plays a new
// artist and the signature is updated in place (default 288 slots).
func BenchmarkMinHashAdd(b *testing.B) {
	m := mustMinHash(b, MinHashConfig{})
	rng := rand.New(rand.NewPCG(1, 1))
	sig := m.Signature([]int64{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20})
	ids := make([]int64, 4096)
	for i := range ids {
		ids[i] = rng.Int64N(1 << 40)
	}
	changed := 0
	n := 0
	for b.Loop() {
		if m.Add(sig, ids[n%len(ids)]) {
			changed++
		}
		n++
	}
	b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "events/s")
}

// BenchmarkMinHashBuckets measures computing a signature's bucket ids (done
// on every signature change, to diff old and new buckets).
func BenchmarkMinHashBuckets(b *testing.B) {
	m := mustMinHash(b, MinHashConfig{})
	sig := m.Signature([]int64{1, 2, 3, 4, 5, 6, 7, 8, 9, 10})
	var buf []Bucket
	n := 0
	for b.Loop() {
		buf = m.Buckets(sig, buf[:0])
		n++
	}
	b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "events/s")
}

// BenchmarkHyperplaneBuckets measures the bucket ids of one song's feature
// vector (default 32 dimensions, 48 tables × 14 bits).
func BenchmarkHyperplaneBuckets(b *testing.B) {
	h := mustHyperplanes(b, HyperplaneConfig{})
	rng := rand.New(rand.NewPCG(2, 2))
	vecs := make([][]float32, 256)
	for i := range vecs {
		vecs[i] = randVec(rng, DefaultDim)
	}
	var buf []Bucket
	n := 0
	for b.Loop() {
		buf, _ = h.Buckets(vecs[n%len(vecs)], buf[:0])
		n++
	}
	b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "events/s")
}

// BenchmarkRecall measures answer quality and query latency with the
// default configurations on generated data: 100,000 users (two cluster
// shapes) and 50,000 songs, 1,000 seeded queries each. Ground truth is the
// brute-force exact top 10 (Jaccard over artist sets, cosine of vectors);
// recall@10 is tie-aware (an answer as similar as the true 10th neighbour
// counts as right). A query is what the serving side does, against an
// in-memory bucket store: the query's buckets, a capped scan of each,
// then re-ranking the candidates (estimated Jaccard from the signatures for
// users, exact cosine of the vectors for songs). ns/op is the mean query
// latency; p50/p99/max the distribution over the queries of one pass.
func BenchmarkRecall(b *testing.B) {
	const k = 10
	report := func(b *testing.B, st recallStats) {
		b.ReportMetric(st.recall, "recall@10")
		b.ReportMetric(st.candRecall, "cand-recall@10")
		b.ReportMetric(st.kthScore, "10th-sim")
		b.ReportMetric(st.candidates, "cands/query")
		b.ReportMetric(st.capped, "capped/query")
		b.ReportMetric(float64(st.p50.Microseconds()), "p50-µs")
		b.ReportMetric(float64(st.p99.Microseconds()), "p99-µs")
		b.ReportMetric(float64(st.max.Microseconds()), "max-µs")
		b.ReportMetric(float64(st.mean.Nanoseconds()), "ns/op")
	}
	for _, tc := range []struct {
		name  string
		model userModel
	}{{"users", designUsers}, {"users-loose", looseUsers}} {
		b.Run(tc.name, func(b *testing.B) {
			const n = 100_000
			sets := userSets(n, tc.model, 1)
			truth := newUserTruth(sets)
			cases := userCases(truth, sample(1000, n, 7), k)
			ix := newUserIndex(mustMinHash(b, MinHashConfig{}), Limits{}, sets)
			runtime.GC()
			var st recallStats
			for b.Loop() {
				st = runUsers(ix, truth, cases, k)
			}
			report(b, st)
		})
	}
	b.Run("songs", func(b *testing.B) {
		const n = 50_000
		vecs := songVectors(n, DefaultDim, 1)
		cases := songCases(vecs, sample(1000, n, 8), k)
		ix := newSongIndex(b, mustHyperplanes(b, HyperplaneConfig{}), Limits{}, vecs)
		runtime.GC()
		var st recallStats
		for b.Loop() {
			st = runSongs(ix, cases, k)
		}
		report(b, st)
	})
}

// BenchmarkQueryWorstCase measures a query all of whose buckets are
// oversized with distinct members (10,000 each): Limits bound the entries
// read and the candidates re-ranked, so the latency stays bounded however
// skewed the data. ns/op is one query.
func BenchmarkQueryWorstCase(b *testing.B) {
	const perBucket = 10_000
	rng := rand.New(rand.NewPCG(3, 3))
	b.Run("users", func(b *testing.B) {
		m := mustMinHash(b, MinHashConfig{})
		pool := make([]Signature, 1024) // candidates' signatures, by id % len(pool)
		for i := range pool {
			pool[i] = m.Signature([]int64{rng.Int64N(50), rng.Int64N(50), rng.Int64N(50)})
		}
		q := m.Signature([]int64{1, 2, 3})
		buckets := m.Buckets(q, nil)
		ix := memIndex{}
		for t, bk := range buckets {
			ix[bk] = seq(1+t*perBucket, perBucket)
		}
		c := NewCandidates(0, Limits{})
		var buf []Bucket
		var got []Scored
		for b.Loop() {
			buf = m.Buckets(q, buf[:0])
			c.Reset(0)
			for _, bk := range buf {
				if c.Full() {
					break
				}
				c.Scan(slices.Values(ix[bk]))
			}
			got = RankJaccard(q, func(yield func(int64, Signature) bool) {
				for _, id := range c.IDs() {
					if !yield(id, pool[id%int64(len(pool))]) {
						return
					}
				}
			}, 10)
		}
		b.ReportMetric(float64(len(c.IDs())), "cands/query")
		_ = got
	})
	b.Run("songs", func(b *testing.B) {
		h := mustHyperplanes(b, HyperplaneConfig{})
		pool := make([][]float32, 1024)
		for i := range pool {
			pool[i] = randVec(rng, DefaultDim)
		}
		q := randVec(rng, DefaultDim)
		buckets, _ := h.Buckets(q, nil)
		ix := memIndex{}
		for t, bk := range buckets {
			ix[bk] = seq(1+t*perBucket, perBucket)
		}
		c := NewCandidates(0, Limits{})
		var buf []Bucket
		var got []Scored
		for b.Loop() {
			buf, _ = h.Buckets(q, buf[:0])
			c.Reset(0)
			for _, bk := range buf {
				if c.Full() {
					break
				}
				c.Scan(slices.Values(ix[bk]))
			}
			got = RankCosine(q, func(yield func(int64, []float32) bool) {
				for _, id := range c.IDs() {
					if !yield(id, pool[id%int64(len(pool))]) {
						return
					}
				}
			}, 10)
		}
		b.ReportMetric(float64(len(c.IDs())), "cands/query")
		_ = got
	})
}
