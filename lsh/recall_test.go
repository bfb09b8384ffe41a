package lsh

import (
	"math"
	"math/rand/v2"
	"slices"
	"sort"
	"testing"
	"time"
)

// This file holds the recall harness: a generated dataset with latent
// clusters, an in-memory bucket index (the reference for the store that
// lives elsewhere), brute-force exact top-k as ground truth, and the
// recall@k and latency measurement.

// userModel shapes the generated users. Every user belongs to a taste
// cluster of about 50 users; a cluster has a core of CoreMin…CoreMax
// artists, half popular (Zipf over the catalogue), half niche. A user keeps
// each core artist with a probability drawn from KeepMin…KeepMax (how much
// of the cluster's taste they share) and adds 0…Extra artists from the
// whole catalogue (Zipf). Tiny is the fraction of users with only one or
// two, mostly popular, artists: the source of oversized buckets.
type userModel struct {
	CoreMin, CoreMax int
	KeepMin, KeepMax float64
	Extra            int
	Tiny             float64
}

// userSets generates n users' sorted artist sets (index = user id; index 0
// is unused).
func userSets(n int, m userModel, seed uint64) [][]int64 {
	const artists = 20_000
	rng := rand.New(rand.NewPCG(seed, 1))
	zipf := rand.NewZipf(rng, 1.1, 1, artists-1)
	popular := func() int64 { return int64(zipf.Uint64()) + 1 }
	clusters := make([][]int64, max(1, n/50))
	for c := range clusters {
		core := make([]int64, m.CoreMin+rng.IntN(m.CoreMax-m.CoreMin+1))
		for i := range core {
			if rng.IntN(2) == 0 {
				core[i] = popular()
			} else {
				core[i] = 1 + rng.Int64N(artists)
			}
		}
		clusters[c] = core
	}
	sets := make([][]int64, n+1)
	for u := 1; u <= n; u++ {
		var set []int64
		if rng.Float64() < m.Tiny {
			for range 1 + rng.IntN(2) {
				set = append(set, popular())
			}
		} else {
			keep := m.KeepMin + (m.KeepMax-m.KeepMin)*rng.Float64()
			for _, a := range clusters[rng.IntN(len(clusters))] {
				if rng.Float64() < keep {
					set = append(set, a)
				}
			}
			for range rng.IntN(m.Extra + 1) {
				set = append(set, popular())
			}
			if len(set) == 0 {
				set = append(set, popular())
			}
		}
		slices.Sort(set)
		sets[u] = slices.Compact(set)
	}
	return sets
}

// songVectors generates n song vectors (index = song id; index 0 is unused)
// of dimension dim around cluster centres: clusters of about 50 songs with
// a spread of 0.2–0.6 (noise norm relative to the centre's), 5% outliers
// (random directions), 1% exact copies of another song's vector, and every
// vector scaled by 0.5–2 (so cosine, not dot product, matters).
func songVectors(n, dim int, seed uint64) [][]float32 {
	rng := rand.New(rand.NewPCG(seed, 2))
	gauss := func(scale float64) []float64 {
		v := make([]float64, dim)
		for i := range v {
			v[i] = rng.NormFloat64() * scale / math.Sqrt(float64(dim))
		}
		return v
	}
	type cluster struct {
		centre []float64
		spread float64
	}
	clusters := make([]cluster, max(1, n/50))
	for c := range clusters {
		clusters[c] = cluster{gauss(1), 0.2 + 0.4*rng.Float64()}
	}
	vecs := make([][]float32, n+1)
	for s := 1; s <= n; s++ {
		switch r := rng.IntN(100); {
		case r == 0 && s > 1:
			vecs[s] = slices.Clone(vecs[1+rng.IntN(s-1)])
			continue
		case r < 6:
			vecs[s] = f32(gauss(1), 0.5+1.5*rng.Float64())
		default:
			c := clusters[rng.IntN(len(clusters))]
			v := gauss(c.spread)
			for i := range v {
				v[i] += c.centre[i]
			}
			vecs[s] = f32(v, 0.5+1.5*rng.Float64())
		}
	}
	return vecs
}

func f32(v []float64, scale float64) []float32 {
	out := make([]float32, len(v))
	for i, x := range v {
		out[i] = float32(x * scale)
	}
	return out
}

// memIndex is an in-memory bucket store: the members of each bucket in
// ascending id order, as a store keyed by bucket | id yields them.
type memIndex map[Bucket][]int64

// add adds id to its buckets. REQUIRES: ids are added in ascending order.
func (m memIndex) add(id int64, buckets []Bucket) {
	for _, b := range buckets {
		m[b] = append(m[b], id)
	}
}

// remove removes id from the given buckets.
func (m memIndex) remove(id int64, buckets []Bucket) {
	for _, b := range buckets {
		members := m[b]
		if i, ok := slices.BinarySearch(members, id); ok {
			members = slices.Delete(members, i, i+1)
		}
		if len(members) == 0 {
			delete(m, b)
		} else {
			m[b] = members
		}
	}
}

// insert adds id to its buckets, keeping every bucket sorted.
func (m memIndex) insert(id int64, buckets []Bucket) {
	for _, b := range buckets {
		members := m[b]
		i, ok := slices.BinarySearch(members, id)
		if !ok {
			m[b] = slices.Insert(members, i, id)
		}
	}
}

// userIndex answers similar-user queries the way the serving side will:
// the query's buckets, capped candidate scan, re-rank by estimated Jaccard.
type userIndex struct {
	mh      *MinHash
	lim     Limits
	sigs    []Signature
	buckets memIndex
}

func newUserIndex(mh *MinHash, lim Limits, sets [][]int64) *userIndex {
	ix := &userIndex{mh: mh, lim: lim, sigs: make([]Signature, len(sets)), buckets: memIndex{}}
	var buf []Bucket
	for u := 1; u < len(sets); u++ {
		ix.sigs[u] = mh.Signature(sets[u])
		buf = mh.Buckets(ix.sigs[u], buf[:0])
		ix.buckets.add(int64(u), buf)
	}
	return ix
}

func (ix *userIndex) similar(c *Candidates, buf []Bucket, u int64, k int) ([]Scored, []Bucket) {
	sig := ix.sigs[u]
	buf = ix.mh.Buckets(sig, buf[:0])
	c.Reset(u)
	for _, b := range buf {
		c.Scan(slices.Values(ix.buckets[b]))
	}
	return RankJaccard(sig, func(yield func(int64, Signature) bool) {
		for _, id := range c.Best(k, 1) {
			if !yield(id, ix.sigs[id]) {
				return
			}
		}
	}, k), buf
}

// songIndex is userIndex for songs: hyperplane buckets, exact cosine.
type songIndex struct {
	hp      *Hyperplanes
	lim     Limits
	vecs    [][]float32
	buckets memIndex
}

func newSongIndex(tb testing.TB, hp *Hyperplanes, lim Limits, vecs [][]float32) *songIndex {
	ix := &songIndex{hp: hp, lim: lim, vecs: vecs, buckets: memIndex{}}
	var buf []Bucket
	var err error
	for s := 1; s < len(vecs); s++ {
		if buf, err = hp.Buckets(vecs[s], buf[:0]); err != nil {
			tb.Fatal(err)
		}
		ix.buckets.add(int64(s), buf)
	}
	return ix
}

func (ix *songIndex) similar(c *Candidates, buf []Bucket, s int64, k int) ([]Scored, []Bucket) {
	v := ix.vecs[s]
	buf, _ = ix.hp.Buckets(v, buf[:0])
	c.Reset(s)
	for _, b := range buf {
		c.Scan(slices.Values(ix.buckets[b]))
	}
	return RankCosine(v, func(yield func(int64, []float32) bool) {
		for _, id := range c.Best(k, 1) {
			if !yield(id, ix.vecs[id]) {
				return
			}
		}
	}, k), buf
}

// exactJaccard is the Jaccard similarity of two sorted sets.
func exactJaccard(a, b []int64) float64 {
	inter, i, j := 0, 0, 0
	for i < len(a) && j < len(b) {
		switch {
		case a[i] < b[j]:
			i++
		case a[i] > b[j]:
			j++
		default:
			inter++
			i++
			j++
		}
	}
	if u := len(a) + len(b) - inter; u > 0 {
		return float64(inter) / float64(u)
	}
	return 0
}

// userTruth computes exact Jaccard similarities of one query user with
// every user sharing an artist (all others have 0), through postings.
type userTruth struct {
	sets     [][]int64
	postings map[int64][]int64
	inter    []int32
	touched  []int64
}

func newUserTruth(sets [][]int64) *userTruth {
	t := &userTruth{sets: sets, postings: map[int64][]int64{}, inter: make([]int32, len(sets))}
	for u := 1; u < len(sets); u++ {
		for _, a := range sets[u] {
			t.postings[a] = append(t.postings[a], int64(u))
		}
	}
	return t
}

// kth returns the k-th best exact Jaccard of u with another user (0 when
// fewer than k others share an artist) and how many others have J > 0.
func (t *userTruth) kth(u int64, k int) (float64, int) {
	for _, a := range t.sets[u] {
		for _, v := range t.postings[a] {
			if v != u {
				if t.inter[v] == 0 {
					t.touched = append(t.touched, v)
				}
				t.inter[v]++
			}
		}
	}
	var js []float64
	nu := len(t.sets[u])
	for _, v := range t.touched {
		in := int(t.inter[v])
		js = append(js, float64(in)/float64(nu+len(t.sets[v])-in))
		t.inter[v] = 0
	}
	t.touched = t.touched[:0]
	sort.Sort(sort.Reverse(sort.Float64Slice(js)))
	if len(js) < k {
		return 0, len(js)
	}
	return js[k-1], len(js)
}

// recallStats aggregates one run of queries.
type recallStats struct {
	queries    int
	recall     float64 // mean recall@k of the answers
	candRecall float64 // mean recall@k of the candidate sets
	candidates float64 // mean candidates per query
	capped     float64 // mean buckets over the cap per query
	kthScore   float64 // mean exact similarity of the k-th true neighbour
	p50, p99   time.Duration
	max, mean  time.Duration
}

// hits counts, tie-aware, how many of scores reach the k-th best exact
// score kth (any item as good as the k-th true neighbour is a right
// answer), capped at want.
func hits(scores []float64, kth float64, want int) int {
	n := 0
	for _, s := range scores {
		if s >= kth && s > 0 {
			n++
		}
	}
	return min(n, want)
}

// userCase is one similar-users query with its ground truth: the k-th
// best exact Jaccard and how many answers to expect (min(k, users with
// J > 0)).
type userCase struct {
	id   int64
	kth  float64
	want int
}

func userCases(truth *userTruth, queries []int64, k int) []userCase {
	var cs []userCase
	for _, u := range queries {
		kth, positive := truth.kth(u, k)
		if positive > 0 { // else it shares no artist with anyone: nothing to find
			cs = append(cs, userCase{u, kth, min(k, positive)})
		}
	}
	return cs
}

func runUsers(ix *userIndex, truth *userTruth, cases []userCase, k int) recallStats {
	var st recallStats
	c := NewCandidates(0, ix.lim)
	var buf []Bucket
	lat := make([]time.Duration, 0, len(cases))
	scores := make([]float64, 0, k)
	for _, q := range cases {
		start := time.Now()
		var got []Scored
		got, buf = ix.similar(c, buf, q.id, k)
		lat = append(lat, time.Since(start))

		scores = scores[:0]
		for _, g := range got {
			scores = append(scores, exactJaccard(truth.sets[q.id], truth.sets[g.ID]))
		}
		st.recall += float64(hits(scores, q.kth, q.want)) / float64(q.want)
		scores = scores[:0]
		for _, id := range c.IDs() {
			scores = append(scores, exactJaccard(truth.sets[q.id], truth.sets[id]))
		}
		st.candRecall += float64(hits(scores, q.kth, q.want)) / float64(q.want)
		st.add(len(c.IDs()), c.Capped(), q.kth)
	}
	st.finish(lat)
	return st
}

// songCase is one similar-songs query with the k-th best exact cosine.
type songCase struct {
	id  int64
	kth float64
}

func songCases(vecs [][]float32, queries []int64, k int) []songCase {
	cs := make([]songCase, len(queries))
	for i, s := range queries {
		t := top{k: k}
		nq := norm2(vecs[s])
		for v := 1; v < len(vecs); v++ {
			if int64(v) != s {
				t.offer(Scored{ID: int64(v), Score: cosine(vecs[s], vecs[v], nq)})
			}
		}
		cs[i] = songCase{s, t.result()[k-1].Score}
	}
	return cs
}

func runSongs(ix *songIndex, cases []songCase, k int) recallStats {
	var st recallStats
	c := NewCandidates(0, ix.lim)
	var buf []Bucket
	lat := make([]time.Duration, 0, len(cases))
	scores := make([]float64, 0, k)
	for _, q := range cases {
		start := time.Now()
		var got []Scored
		got, buf = ix.similar(c, buf, q.id, k)
		lat = append(lat, time.Since(start))

		scores = scores[:0]
		for _, g := range got {
			scores = append(scores, g.Score) // exact cosines already
		}
		st.recall += float64(hits(scores, q.kth, k)) / float64(k)
		scores = scores[:0]
		nq := norm2(ix.vecs[q.id])
		for _, id := range c.IDs() {
			scores = append(scores, cosine(ix.vecs[q.id], ix.vecs[id], nq))
		}
		st.candRecall += float64(hits(scores, q.kth, k)) / float64(k)
		st.add(len(c.IDs()), c.Capped(), q.kth)
	}
	st.finish(lat)
	return st
}

func (st *recallStats) add(candidates, capped int, kth float64) {
	st.candidates += float64(candidates)
	st.capped += float64(capped)
	st.kthScore += kth
	st.queries++
}

func (st *recallStats) finish(lat []time.Duration) {
	if st.queries == 0 {
		return
	}
	q := float64(st.queries)
	st.recall /= q
	st.candRecall /= q
	st.candidates /= q
	st.capped /= q
	st.kthScore /= q
	slices.Sort(lat)
	st.p50 = lat[len(lat)/2]
	st.p99 = lat[min(len(lat)-1, len(lat)*99/100)]
	st.max = lat[len(lat)-1]
	var sum time.Duration
	for _, d := range lat {
		sum += d
	}
	st.mean = sum / time.Duration(len(lat))
}

// sample returns n distinct ids in 1…max, seeded.
func sample(n, maxID int, seed uint64) []int64 {
	rng := rand.New(rand.NewPCG(seed, 3))
	ids := make([]int64, 0, n)
	for _, i := range rng.Perm(maxID)[:n] {
		ids = append(ids, int64(i)+1)
	}
	return ids
}

// designUsers is the user model of the recall tests: taste clusters in
// which a user's 10th most similar user has an exact Jaccard similarity of
// about 0.5 on average (the design point of the default S-curve).
// looseUsers has larger, looser clusters (10th neighbour at J ≈ 0.45) and
// shows how recall falls when the neighbours sit lower on the S-curve.
var (
	designUsers = userModel{CoreMin: 10, CoreMax: 30, KeepMin: 0.5, KeepMax: 0.8, Extra: 4, Tiny: 0.05}
	looseUsers  = userModel{CoreMin: 10, CoreMax: 40, KeepMin: 0.4, KeepMax: 0.8, Extra: 6, Tiny: 0.05}
)

// TestRecall is the small version of BenchmarkRecall: 20,000 users and
// 10,000 songs, 300 queries each, default configurations. The data and
// hashes are seeded, so the figures are the same on every run; the bounds
// sit a little below them and catch a regression.
func TestRecall(t *testing.T) {
	if testing.Short() {
		t.Skip("short")
	}
	const k = 10
	t.Run("users", func(t *testing.T) {
		sets := userSets(20_000, designUsers, 1)
		truth := newUserTruth(sets)
		ix := newUserIndex(mustMinHash(t, MinHashConfig{}), Limits{}, sets)
		st := runUsers(ix, truth, userCases(truth, sample(300, 20_000, 7), k), k)
		t.Logf("recall@10 %.3f (candidates %.3f), %.0f candidates/query, 10th neighbour J %.3f, p50 %s p99 %s",
			st.recall, st.candRecall, st.candidates, st.kthScore, st.p50, st.p99)
		if st.recall < 0.88 || st.candRecall < 0.95 {
			t.Errorf("recall@10 %.3f, candidate recall %.3f; want ≥ 0.88 and ≥ 0.95", st.recall, st.candRecall)
		}
	})
	t.Run("songs", func(t *testing.T) {
		vecs := songVectors(10_000, DefaultDim, 1)
		ix := newSongIndex(t, mustHyperplanes(t, HyperplaneConfig{}), Limits{}, vecs)
		st := runSongs(ix, songCases(vecs, sample(300, 10_000, 8), k), k)
		t.Logf("recall@10 %.3f, %.0f candidates/query, 10th neighbour cosine %.3f, p50 %s p99 %s",
			st.recall, st.candidates, st.kthScore, st.p50, st.p99)
		if st.recall < 0.90 {
			t.Errorf("recall@10 %.3f; want ≥ 0.90", st.recall)
		}
	})
}
