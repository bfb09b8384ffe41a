// Package lsh finds similar users and similar songs with locality-sensitive
// hashing: MinHash over the set of artists a user plays, random hyperplanes
// over a song's feature vector, both banded into buckets that a store keyed
// by bucket holds. It is pure: no I/O, no goroutines, no global state.
//
// # Similar users: MinHash
//
// A [MinHash] maps a set of artist ids to a [Signature] of Bands×Rows
// 32-bit slots; two sets agree in a slot with probability equal to their
// Jaccard similarity, so [Jaccard] of two signatures estimates it. Stage 1
// keeps a user's signature and updates it with [MinHash.Add] when the user
// plays an artist for the first time (O(Bands×Rows), reporting whether it
// changed). [MinHash.Buckets] cuts the signature into Bands bands of Rows
// slots and hashes each into a [Bucket]; two users sharing a bucket are
// candidates of each other. When a signature changes, [Diff] of the old and
// new buckets gives the bucket entries to remove and to add, which stage 2
// applies to its bucket store exactly once:
//
//	old := m.Buckets(sig, nil) // before Add, which updates sig in place
//	if m.Add(sig, artistID) {
//		removed, added := lsh.Diff(old, m.Buckets(sig, nil))
//		// emit −(bucket, user) for removed, +(bucket, user) for added
//	}
//
// Two sets are candidates with probability P(s) = 1 − (1 − s^r)^b for
// Jaccard similarity s, b bands and r rows: an S-curve that rises most
// steeply near the threshold (1/b)^(1/r). The defaults are b = 96 bands of
// r = 3 rows (288 slots), threshold (1/b)^(1/r) = 0.218:
//
//	s                  0.1    0.2    0.3    0.4    0.5     0.7    0.9
//	P(user candidate)  0.092  0.537  0.928  0.998  1.0000  1.000  1.000
//
// (1 − P(0.5) is 2.7e−6, 1 − P(0.7) 3.1e−18.) Why these: the design point
// is a neighbour at Jaccard ≈ 0.5, and the answer (CONTRACT.md: score =
// estimated Jaccard) is ranked by the estimate, so three things must hold.
// First, a neighbour at 0.5 must be a candidate almost surely, where the
// classic choice of a threshold at 0.5 (b = 2^r: 16×4, 32×5) finds only
// 64% of them. Second, the estimate must be precise enough to rank the
// neighbours, which are close together near the tenth place: its standard
// error √(s(1−s)/(b·r)) is 0.029 at s = 0.5 with 288 slots (0.022 with
// 512, 0.044 with 128). Third, a query reads one bucket per band, so the
// bands are its cost. With r = 3 rather than 4 the curve is less steep:
// users at s ≈ 0.2, neither neighbours nor strangers, are candidates about
// half the time, which costs little, as the candidates that share the
// most buckets with the query are the ones scored (Limits.Rerank); and
// fewer bands reach the same recall. Measured recall@10 on the generated
// users of BenchmarkBandsRecall (e2e; 100,000 users, 2,000,000 listens, 1,000
// queries, the default Limits; a user's 10th neighbour at J ≈ 0.5),
// ranking by the estimate:
//
//	b×r                      32×4   48×3   64×2   64×3   64×4   80×3   96×4   128×4   96×3
//	recall@10                0.75   0.89   0.90   0.92   0.87   0.93   0.92   0.94    0.94
//
// 96×3 matches 128×4 with three quarters of the bucket reads per query
// and a signature of 1,152 bytes instead of 2,048. A query then scores
// the candidates' signatures, most of which share one band with it:
// [Candidates.Best] can leave out those sharing fewer than minShared
// buckets while k others share that many (kappa's users: two; 112
// signatures scored per query instead of 485, recall@10 0.937).
//
// The price of more bands: every user has b bucket entries (the store
// grows with b), a signature has 4·b·r bytes, Add costs O(b·r), a query
// reads b buckets, and a signature change touches more bands: adding the
// (n+1)-th artist changes a slot with probability 1/(n+1), so about
// b·r/(n+1) bands (13 of 96 when a user's 22nd artist arrives), each one
// − and one + bucket entry. A store that re-ranked by exact Jaccard of
// the artist sets instead of the estimate would rank better but keep
// every user's artists in stage 2.
//
// # Similar songs: random hyperplanes
//
// [Hyperplanes] hashes a feature vector (--feature-dim, default 32) with
// Tables tables of Bits random hyperplanes: bit j of table t is the side of
// hyperplane (t, j) the vector lies on, so two vectors at angle θ agree in
// a bit with probability 1 − θ/π, and a table's bits form its bucket.
// Candidates are ranked by the exact cosine of the stored vectors
// ([RankCosine]). With cosine similarity c and p = 1 − arccos(c)/π, two
// songs are candidates with probability 1 − (1 − p^k)^L. The defaults are
// L = 48 tables of k = 14 bits:
//
//	cos                0.0    0.3    0.5    0.7    0.8    0.9    0.95
//	P(song candidate)  0.003  0.034  0.152  0.556  0.862  0.997  1.000
//
// Why these: a song's close neighbours in feature space sit at cosine 0.8
// and above, and those are found (0.86–1.0); 14 bits make a random song
// (cosine ≈ 0) a candidate with probability 0.003 only, so the candidates
// stay few as the catalogue grows (about 440 per query among 50,000 songs,
// against 870 with 32×12 bits). Measured recall@10 on the generated songs
// of the tests: 48×14: 0.93; 32×12: 0.94; 64×16: 0.92; 24×12: 0.91;
// 32×14: 0.89. The zero vector has no direction and no bucket.
//
// # Oversized buckets
//
// [Limits] caps the work of a query: at most PerBucket entries read per
// bucket (default 256, in store order: ascending id), at most Candidates
// distinct candidates (default 4096) collected, and at most Rerank of them
// (default 1024) re-ranked by their signature or vector: those that share
// the most buckets with the query ([Candidates.Best]), since a near
// neighbour shares many. Past a cap the rest is skipped for that query
// only; the store keeps every entry, so the bucket deltas stay exact.
// [Candidates] applies the policy while a query reads its buckets. A query
// whose every bucket holds 10,000 entries takes about 1.1 ms (users) and
// 0.25 ms (songs) in memory on a 2-core machine.
//
// # Quality and latency
//
// BenchmarkRecall measures recall@10 against brute-force exact top 10
// (tie-aware: an answer as similar as the true 10th neighbour counts), on
// 100,000 generated users in taste clusters and 50,000 songs around
// cluster centres, with the default configurations, for 1,000 queries
// each, against an in-memory bucket store; latency is candidate lookup
// plus re-ranking, on a 2-core machine:
//
//	users (10th neighbour J ≈ 0.51)   recall@10 0.917   p50 0.18 ms  p99 1.2 ms
//	users (looser, J ≈ 0.46)          recall@10 0.881   p50 0.19 ms  p99 1.2 ms
//	songs (10th neighbour cos ≈ 0.87) recall@10 0.933   p50 0.17 ms  p99 0.3 ms
//
// Recall depends on where the true neighbours sit on the S-curve: users
// whose nearest neighbours are at Jaccard 0.3 are found with probability
// about 0.65 each.
//
// # Determinism
//
// Signatures and bucket ids are part of the stored state: every instance
// and every replay must compute the same ones. All hashing is seeded
// integer arithmetic (splitmix64), never map order or a global random
// source; the hyperplanes are derived from the seed with integers only;
// dot products multiply float32s exactly in float64 and add them in a fixed
// order. Tests pin golden values. Changing a configuration's Bands, Rows,
// Dim, Tables, Bits or Seed, or this package's hashing, changes bucket ids:
// it needs a new topology version (a replay).
package lsh
