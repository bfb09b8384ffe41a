package lsh

import (
	"fmt"
	"iter"
	"slices"
)

// Defaults of Limits.
const (
	DefaultPerBucket  = 256
	DefaultCandidates = 4096
	DefaultRerank     = 1024
)

// Limits is the policy for oversized buckets: it bounds the work of one
// query however skewed the data. The zero value means the defaults.
//
// Most buckets are small, but some are shared by a large part of the
// population: a band every user who plays only one hit artist shares, a
// table every song with the same placeholder vector shares. A query reads
// at most PerBucket entries of each of its buckets, in the order the store
// yields them (ascending member id for a store keyed by bucket | id), and
// ignores the rest of that bucket; it collects at most Candidates
// distinct candidates (past them, later buckets only count the buckets
// the known ones share); and it re-ranks at most Rerank of them, those
// that share the most buckets with the query. So a query reads at most
// Tables×PerBucket entries (96×256 = 24,576 for a user, 48×256 = 12,288
// for a song with the defaults) and at most Rerank items, and its answer
// is still a pure function of the stored state. The store keeps every entry: limits
// bound reads, never writes, so the −/+ bucket deltas stay exact. Members
// of an oversized bucket are mostly near-duplicates of each other (the
// same one or two artists, the same vector), so any PerBucket of them
// serve a query as well as the others.
type Limits struct {
	// PerBucket is the most entries a query reads from one bucket (the
	// query item itself and repeats included). Default DefaultPerBucket
	// (256).
	PerBucket int
	// Candidates is the most distinct candidates a query collects.
	// Default DefaultCandidates (4096).
	Candidates int
	// Rerank is the most candidates a query re-ranks by their items
	// (signature or vector): those that share the most buckets with the
	// query ([Candidates.Best]). Default DefaultRerank (1024). Reading a
	// candidate's item is the costly part of a query against a store (a
	// random read each), and a near neighbour shares many buckets: one at
	// Jaccard 0.5 about b·0.5^r = 12 of 96 bands, an unrelated user
	// (0.1) about 0.1.
	Rerank int
}

func (l Limits) withDefaults() Limits {
	if l.PerBucket == 0 {
		l.PerBucket = DefaultPerBucket
	}
	if l.Candidates == 0 {
		l.Candidates = DefaultCandidates
	}
	if l.Rerank == 0 {
		l.Rerank = DefaultRerank
	}
	return l
}

// Validate reports a negative limit. Errors are prefixed "lsh: ".
func (l Limits) Validate() error {
	switch {
	case l.PerBucket < 0:
		return fmt.Errorf("lsh: PerBucket %d negative", l.PerBucket)
	case l.Candidates < 0:
		return fmt.Errorf("lsh: Candidates %d negative", l.Candidates)
	case l.Rerank < 0:
		return fmt.Errorf("lsh: Rerank %d negative", l.Rerank)
	}
	return nil
}

// Candidates collects the distinct candidates of one query from its
// buckets, applying Limits. Use one per query, or Reset it:
//
//	c := lsh.NewCandidates(userID, limits)
//	for _, b := range buckets {
//		c.Scan(store.Members(b)) // an iter.Seq[int64] over the bucket
//	}
//	top := lsh.RankJaccard(sig, store.Signatures(c.Best()), 10)
//
// A Candidates is not safe for concurrent use.
type Candidates struct {
	lim    Limits
	self   int64
	seen   map[int64]int // candidate → its index in ids and hits
	ids    []int64
	hits   []int32 // buckets shared with the query, by candidate
	capped int
	start  []int // Best's counting sort: by shared buckets, where they go
}

// NewCandidates returns an empty Candidates for a query of the item self
// (never its own candidate). It panics if l.Validate fails: validate
// operator settings when starting up.
func NewCandidates(self int64, l Limits) *Candidates {
	if err := l.Validate(); err != nil {
		panic(err.Error())
	}
	return &Candidates{lim: l.withDefaults(), self: self, seen: make(map[int64]int)}
}

// Reset empties c for a query of the item self, keeping its limits and
// memory.
func (c *Candidates) Reset(self int64) {
	c.self = self
	clear(c.seen)
	c.ids, c.hits = c.ids[:0], c.hits[:0]
	c.capped = 0
}

// Scan reads the members of one bucket, adding the new ones to the
// candidates while they are not Full and counting a shared bucket for the
// known ones, until the bucket ends or PerBucket entries are read; it then
// stops the iteration. It reports whether it stopped before the end of
// the bucket (it reads one entry more to know).
func (c *Candidates) Scan(members iter.Seq[int64]) (capped bool) {
	n := 0
	for id := range members {
		if n == c.lim.PerBucket {
			c.capped++
			return true
		}
		n++
		if id == c.self {
			continue
		}
		if i, dup := c.seen[id]; dup {
			c.hits[i]++
			continue
		}
		if c.Full() {
			continue
		}
		c.seen[id] = len(c.ids)
		c.ids = append(c.ids, id)
		c.hits = append(c.hits, 1)
	}
	return false
}

// Best returns the Limits.Rerank candidates that share the most buckets
// with the query, most first (ties: the one read first); all of them,
// in that order, when there are no more. When k or more candidates share
// minShared buckets or more with the query, the others are left out:
// they are the least likely neighbours, and scoring them costs a read
// each (minShared ≤ 1 leaves out none). The slice is new.
func (c *Candidates) Best(k, minShared int) []int64 {
	n := min(len(c.ids), c.lim.Rerank)
	if n == 0 {
		return []int64{}
	}
	// NB: a counting sort, stable: a candidate shares at most one bucket
	// per Scan, and sorting a thousand candidates by comparison took a
	// tenth of a songs query.
	top := slices.Max(c.hits)
	c.start = slices.Grow(c.start[:0], int(top)+1)[:top+1]
	clear(c.start)
	for _, h := range c.hits {
		c.start[h]++
	}
	next := 0 // the place of the first candidate sharing h buckets, h from top down
	for h := top; h >= 1; h-- {
		if int(h) == minShared-1 && next >= k {
			n = min(n, next)
		}
		next, c.start[h] = next+c.start[h], next
	}
	out := make([]int64, n)
	for i, h := range c.hits {
		if p := c.start[h]; p < n {
			out[p] = c.ids[i]
		}
		c.start[h]++
	}
	return out
}

// Full reports whether c holds Limits.Candidates candidates: reading more
// buckets adds none, and only counts shared buckets.
func (c *Candidates) Full() bool { return len(c.ids) >= c.lim.Candidates }

// IDs returns the distinct candidates so far, in the order first read. The
// slice is owned by c and valid until the next Scan or Reset.
func (c *Candidates) IDs() []int64 { return c.ids }

// Capped returns the number of buckets Scan stopped reading before their
// end: a metric worth exporting, since a growing count means a band or
// table that everyone shares.
func (c *Candidates) Capped() int { return c.capped }
