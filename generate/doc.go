// Package generate produces a seeded, deterministic and realistic stream of
// synthetic listen events as JSON lines (the listen event schema of
// CONTRACT.md).
//
// The stream looks like real listening traffic: song popularity is Zipf
// distributed (s ≈ 1.1), every song belongs to one artist and artists own
// a skewed number of songs, users live around real world cities (with the
// right ISO 3166-1 country code) and keep coming back to a few favourite
// artists shared with users of similar taste, event times drift forward
// over the configured span with light disorder, and the encoding varies the
// way real producers do (timestamps as RFC 3339 in UTC or with an offset,
// or as epoch milliseconds; optional fields present or not; lower-case
// countries; unknown fields). On request the stream also carries malformed
// lines at a given rate and a live-drop burst: one new song started by many
// distinct users within one minute of event time, in the middle of the
// stream.
//
// Taste follows clusters, so that users have near neighbours by the
// artists they play (what GET /v1/users/{id}/similar finds, by MinHash
// over those sets). Users fall into max(1, Users/50) taste clusters. Each
// cluster has a core of 4 to 8 artists, half drawn with the popularity
// skew, half uniformly over all artists (niche ones, mostly). A user keeps
// each core artist with a probability of its own, 0.6 to 1 (and at least
// one): those are its favourite artists. A share of its listens, 0.75 to
// 0.95 by user, goes to its favourites; the rest are globally popular
// songs. Two users of one cluster thus share most of their favourites and
// users of different clusters few. Neither users nor clusters are stored:
// a user is a pure function of the seed and its id, a cluster's core of
// the seed and its index.
//
// A Generator is cheap to build (memory grows with the number of artists
// only) and fast: Next appends one line to a caller-owned buffer without
// allocating. The same Config always yields the same byte stream. (The
// song popularity draw uses math/rand/v2's Zipf, whose math.Exp and
// math.Log may differ in the last bit between CPU architectures; a rare
// song choice may then differ across architectures, never across runs.)
//
// A Generator is not safe for concurrent use.
package generate
