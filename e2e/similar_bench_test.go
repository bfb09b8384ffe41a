package e2e

import (
	"cmp"
	"context"
	"fmt"
	"maps"
	"math/rand/v2"
	"runtime"
	"slices"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/kappa-stream/kappa/generate"
	"github.com/kappa-stream/kappa/lsh"
)

// Size of the similarity benchmarks' dataset.
const (
	simBenchUsers   = 100_000
	simBenchSongs   = 50_000
	simBenchEvents  = benchEvents
	simBenchQueries = 1_000
)

// simBenchConfig generates the similarity benchmarks' dataset.
var simBenchConfig = generate.Config{Seed: 13, Users: simBenchUsers, Songs: simBenchSongs, Events: simBenchEvents}

// simBenchModel reads the listens of simBenchConfig into a model; the
// generator is left to make the song features.
func simBenchModel(b *testing.B) (*simModel, *generate.Generator) {
	b.Helper()
	m := newSimModel(b)
	g, err := generate.New(simBenchConfig)
	if err != nil {
		b.Fatal(err)
	}
	for range simBenchConfig.Events {
		line, _ := g.Next(nil)
		l, _, err := parseRaw(line)
		if err != nil {
			b.Fatal(err)
		}
		m.listen(l.UserID, l.ArtistID)
	}
	return m, g
}

// BenchmarkSimilar measures the similarity indexes end to end on
// 2,000,000 generated listens of 100,000 users (taste clusters) and the
// feature vectors of 50,000 songs (latent clusters), with the default
// hashing and limits:
//
//   - recall@10 of GET /v1/users/{id}/similar and /v1/songs/{id}/similar
//     for 1,000 random users and songs each, against brute-force exact top
//     10 over the raw events (Jaccard of the artist sets) and the produced
//     vectors (cosine); tie-aware: an answer as similar as the true 10th
//     neighbour counts;
//   - query latency p50/p99 of both endpoints under concurrent load: as
//     many clients as the machine has cores querying at once, each sending
//     its next query when the last is answered, for 10 s, through HTTP
//     (after the recall queries, so the caches hold what queries read, as
//     on a serving instance, and with the model of the recall dropped, so
//     that the benchmark's own collector does not scan it meanwhile);
//   - the throughput impact: a second process builds a fresh version from
//     the whole log with the rollups only (--live-windows off) and with the
//     rollups and the similarity indexes (--similar); events/s of both and
//     their ratio.
func BenchmarkSimilar(b *testing.B) {
	cfg := simBenchConfig
	for i := 0; i < b.N; i++ {
		m, g := simBenchModel(b)
		var features [][]byte
		for id, v := range g.SongFeatures(lsh.DefaultDim) {
			features = append(features, generate.AppendFeature(nil, id, v))
		}

		kafka, httpAddr := freeAddr(b), freeAddr(b)
		up := startKappa(b, "bench-similar.log", "up", "--data", b.TempDir(), "--kafka-addr", kafka, "--http", httpAddr, "--similar")
		waitReady(b, httpAddr)
		produceFeatures(b, kafka, m, features)
		produceGenerated(b, kafka, cfg)
		waitGroupCaughtUp(b, kafka, "kappa.v1.features", "song-features")
		waitCaughtUp(b, kafka, simBenchEvents, 10*time.Minute, httpAddr)
		// NB: a user is published --similar-delay after its last change.

		rng := rand.New(rand.NewPCG(13, 13))
		users := slices.Sorted(maps.Keys(m.artists))
		songs := slices.Sorted(maps.Keys(m.vectors))
		c := newClient(httpAddr)
		recallUsers := simRecall(b, c, "/v1/users/", pick(rng, users, simBenchQueries), m.exactUsers)
		recallSongs := simRecall(b, c, "/v1/songs/", pick(rng, songs, simBenchQueries), m.exactSongs)
		// NB: the clients share the machine with kappa; the collector of
		// this process must not scan the model while they measure.
		m = nil
		runtime.GC()
		userLat := simLatency(b, httpAddr, "/v1/users/", users)
		songLat := simLatency(b, httpAddr, "/v1/songs/", songs)

		rollups, _ := backlogRun(b, kafka, "v2", "--live-windows", "off")
		withSimilar, _ := backlogRun(b, kafka, "v3", "--live-windows", "off", "--similar")
		up.stop(b, syscall.SIGTERM)

		b.ReportMetric(recallUsers, "users-recall@10")
		b.ReportMetric(recallSongs, "songs-recall@10")
		b.ReportMetric(userLat.p50, "users-p50-ms")
		b.ReportMetric(userLat.p99, "users-p99-ms")
		b.ReportMetric(userLat.qps, "users-q/s")
		b.ReportMetric(songLat.p50, "songs-p50-ms")
		b.ReportMetric(songLat.p99, "songs-p99-ms")
		b.ReportMetric(songLat.qps, "songs-q/s")
		b.ReportMetric(simBenchEvents/rollups.Seconds(), "backlog-rollups-events/s")
		b.ReportMetric(simBenchEvents/withSimilar.Seconds(), "backlog-similar-events/s")
		b.ReportMetric(rollups.Seconds()/withSimilar.Seconds(), "similar/rollups")
	}
}

func pick(rng *rand.Rand, ids []int64, n int) []int64 {
	out := make([]int64, n)
	for i := range out {
		out[i] = ids[rng.IntN(len(ids))]
	}
	return out
}

// exactUsers returns the exact Jaccard similarity of user q's artist set
// with every other user's that shares an artist, by brute force over an
// inverted index.
func (m *simModel) exactUsers() func(q int64) map[int64]float64 {
	byArtist := map[int64][]int64{}
	for u, set := range m.artists {
		for a := range set {
			byArtist[a] = append(byArtist[a], u)
		}
	}
	return func(q int64) map[int64]float64 {
		inter := map[int64]int{}
		for a := range m.artists[q] {
			for _, u := range byArtist[a] {
				if u != q {
					inter[u]++
				}
			}
		}
		out := make(map[int64]float64, len(inter))
		for u, n := range inter {
			out[u] = float64(n) / float64(len(m.artists[q])+len(m.artists[u])-n)
		}
		return out
	}
}

// exactSongs returns the exact cosine of song q's vector with every other
// song's.
func (m *simModel) exactSongs() func(q int64) map[int64]float64 {
	return func(q int64) map[int64]float64 {
		out := make(map[int64]float64, len(m.vectors))
		for s, v := range m.vectors {
			if s != q {
				out[s] = lsh.Cosine(m.vectors[q], v)
			}
		}
		return out
	}
}

// simRecall asks for the 10 most similar of each query and returns
// recall@10 against the exact similarities exact gives: the share of the
// true top 10 (those with a positive similarity) that the answers match,
// where an answer matches when it is at least as similar as the true 10th.
func simRecall(b *testing.B, c *client, path string, queries []int64, newExact func() func(int64) map[int64]float64) float64 {
	b.Helper()
	exact := newExact()
	hits, want := 0, 0
	for _, q := range queries {
		sims := exact(q)
		if !hasNeighbour(sims) {
			continue
		}
		var a similarAnswer
		if _, err := c.getJSON(path+itoa(q)+"/similar?k=10", &a); err != nil {
			b.Fatal(err)
		}
		h, w := recallHits(sims, a.scored())
		hits += h
		want += w
	}
	if want == 0 {
		b.Fatalf("%s: no query has a neighbour", path)
	}
	return float64(hits) / float64(want)
}

// hasNeighbour reports whether an exact similarity of sims is positive.
func hasNeighbour(sims map[int64]float64) bool {
	for _, s := range sims {
		if s > 0 {
			return true
		}
	}
	return false
}

// recallHits counts the answers in got as similar to the query as its
// true 10th neighbour or more (ties count; sims are the exact
// similarities of every other item), out of the true top 10 (the
// positive ones): recall@10 is hits/want over the queries.
func recallHits(sims map[int64]float64, got []lsh.Scored) (hits, want int) {
	all := slices.Collect(maps.Values(sims))
	slices.SortFunc(all, func(x, y float64) int { return cmp.Compare(y, x) })
	for len(all) > 0 && all[len(all)-1] <= 0 {
		all = all[:len(all)-1]
	}
	top := all[:min(10, len(all))]
	if len(top) == 0 {
		return 0, 0
	}
	floor := top[len(top)-1]
	for _, s := range got {
		if sims[s.ID] >= floor-1e-9 {
			hits++
		}
	}
	return min(hits, len(top)), len(top)
}

// BenchmarkBandsRecall measures recall@10 of similar users for several
// b×r (and the fewest bands a scored candidate shares, -minN: see
// lsh.Candidates.Best) on the users of BenchmarkSimilar and its 1,000
// queries, in memory, with the default limits and the ranking by exact
// Jaccard of the artist sets that kappa does (so recall is the
// candidates'): the tables of docs/similarity.md. A query reads b
// buckets and the items of the candidates it scores, so the figures to
// weigh against recall are b and scored/query.
func BenchmarkBandsRecall(b *testing.B) {
	m, _ := simBenchModel(b)
	users := slices.Sorted(maps.Keys(m.artists))
	bandsRecall(b, m, pick(rand.New(rand.NewPCG(13, 13)), users, simBenchQueries)) // NB: BenchmarkSimilar's
}

// BenchmarkBandsRecallOdd is BenchmarkBandsRecall on the users of
// TestOddData's dataset (weak taste clusters: the 10th neighbour at
// Jaccard 0.26–0.40) and 1,000 of them as queries.
func BenchmarkBandsRecallOdd(b *testing.B) {
	m := newSimModel(b)
	for l := range oddDataset(b, oddTestConfig()).valid(b) {
		m.listen(l.UserID, l.ArtistID)
	}
	users := slices.Sorted(maps.Keys(m.artists))
	bandsRecall(b, m, pick(rand.New(rand.NewPCG(13, 13)), users, simBenchQueries))
}

// bandsRecall runs the sub-benchmarks of BenchmarkBandsRecall over the
// users of m and the queries.
func bandsRecall(b *testing.B, m *simModel, queries []int64) {
	exact := m.exactUsers()
	sims := make([]map[int64]float64, len(queries))
	for i, q := range queries {
		sims[i] = exact(q)
	}
	users := slices.Sorted(maps.Keys(m.artists))
	for _, br := range [][3]int{{32, 4, 1}, {48, 3, 1}, {64, 2, 1}, {64, 3, 1}, {64, 4, 1}, {80, 3, 1}, {96, 4, 1}, {128, 4, 1}, {96, 3, 1}, {96, 3, 2}, {96, 3, 3}, {64, 2, 2}, {96, 2, 2}, {128, 3, 2}, {64, 2, 3}, {80, 2, 3}, {64, 2, 4}} {
		b.Run(fmt.Sprintf("%dx%d-min%d", br[0], br[1], br[2]), func(b *testing.B) {
			mh, err := lsh.NewMinHash(lsh.MinHashConfig{Bands: br[0], Rows: br[1]})
			if err != nil {
				b.Fatal(err)
			}
			sigs := make(map[int64]lsh.Signature, len(users))
			buckets := map[lsh.Bucket][]int64{}
			for _, u := range users {
				sigs[u] = mh.Signature(slices.Collect(maps.Keys(m.artists[u])))
				for _, bk := range mh.Buckets(sigs[u], nil) {
					buckets[bk] = append(buckets[bk], u) // NB: ascending ids, as stored
				}
			}
			limit := lsh.DefaultPerBucket + 1 // as a query reads: the user itself too
			var hits, want, scored int
			for b.Loop() {
				hits, want, scored = 0, 0, 0
				for i, q := range queries {
					c := lsh.NewCandidates(q, lsh.Limits{})
					for _, bk := range mh.Buckets(sigs[q], nil) {
						members := buckets[bk]
						c.Scan(slices.Values(members[:min(len(members), limit)]))
					}
					best := c.Best(10, br[2])
					scored += len(best)
					var scores []lsh.Scored
					for _, id := range best {
						if s := sims[i][id]; s > 0 {
							scores = append(scores, lsh.Scored{ID: id, Score: s})
						}
					}
					got := lsh.TopK(scores, 10)
					h, w := recallHits(sims[i], got)
					hits += h
					want += w
				}
			}
			b.ReportMetric(float64(hits)/float64(want), "recall@10")
			b.ReportMetric(float64(br[0]), "bucket-reads/query")
			b.ReportMetric(float64(scored)/float64(len(queries)), "scored/query")
		})
	}
}

// latency is the result of a latency run.
type latency struct{ p50, p99, qps float64 }

// simLatency runs one client per core querying random ids' similar
// items (k=10) for 10 s and returns the latency percentiles in ms.
func simLatency(b *testing.B, httpAddr, path string, ids []int64) latency {
	b.Helper()
	const run = 10 * time.Second
	clients := runtime.NumCPU()
	var (
		mu   sync.Mutex
		took []time.Duration
		wg   sync.WaitGroup
	)
	ctx, cancel := context.WithTimeout(context.Background(), run)
	defer cancel()
	start := time.Now()
	for w := range clients {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(w), 99))
			c := newClient(httpAddr)
			var mine []time.Duration
			for ctx.Err() == nil {
				id := ids[rng.IntN(len(ids))]
				t0 := time.Now()
				var a similarAnswer
				if _, err := c.getJSON(path+itoa(id)+"/similar?k=10", &a); err != nil {
					b.Error(err)
					return
				}
				mine = append(mine, time.Since(t0))
			}
			mu.Lock()
			took = append(took, mine...)
			mu.Unlock()
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	if len(took) == 0 {
		b.Fatalf("%s: no answer", path)
	}
	slices.Sort(took)
	return latency{p50: ms(percentile(took, 0.50)), p99: ms(percentile(took, 0.99)), qps: float64(len(took)) / elapsed.Seconds()}
}

// waitGroupCaughtUp waits until group has committed every record of topic.
func waitGroupCaughtUp(t testing.TB, kafka, group, topic string) {
	t.Helper()
	adm := newAdmin(t, kafka)
	waitFor(t, 5*time.Minute, "lag 0 on "+group, func() (bool, string) {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		committed, end, lagging, err := groupProgress(ctx, adm, group, topic)
		if err != nil {
			return false, err.Error()
		}
		return committed == end && end > 0, fmt.Sprintf("committed %d of %d; lagging:%s", committed, end, lagging)
	})
}
