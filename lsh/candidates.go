package lsh

import (
	"fmt"
	"iter"
)

// Defaults of Limits.
const (
	DefaultPerBucket  = 256
	DefaultCandidates = 4096
)

// Limits is the policy for oversized buckets: it bounds the work of one
// query however skewed the data. The zero value means the defaults.
//
// Most buckets are small, but some are shared by a large part of the
// population: a band every user who plays only one hit artist shares, a
// table every song with the same placeholder vector shares. A query reads
// at most PerBucket entries of each of its buckets, in the order the store
// yields them (ascending member id for a store keyed by bucket | id), and
// ignores the rest of that bucket; and it collects at most Candidates
// distinct candidates, after which it reads no more buckets (buckets are
// read in table order, and tables are alike, so which ones are left out
// does not matter). So a query reads at most Tables×PerBucket entries
// (128×256 = 32,768 for a user, 48×256 = 12,288 for a song with the
// defaults) and re-ranks at most Candidates, and its answer is still a
// pure function of the stored state. The store keeps every entry: limits
// bound reads, never writes, so the −/+ bucket deltas stay exact. Members
// of an oversized bucket are mostly near-duplicates of each other (the
// same one or two artists, the same vector), so any PerBucket of them
// serve a query as well as the others.
type Limits struct {
	// PerBucket is the most entries a query reads from one bucket (the
	// query item itself and repeats included). Default DefaultPerBucket
	// (256).
	PerBucket int
	// Candidates is the most distinct candidates a query collects, and so
	// re-ranks. Default DefaultCandidates (4096): re-ranking that many
	// takes about 1 ms in memory (default signatures or vectors).
	Candidates int
}

func (l Limits) withDefaults() Limits {
	if l.PerBucket == 0 {
		l.PerBucket = DefaultPerBucket
	}
	if l.Candidates == 0 {
		l.Candidates = DefaultCandidates
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
	}
	return nil
}

// Candidates collects the distinct candidates of one query from its
// buckets, applying Limits. Use one per query, or Reset it:
//
//	c := lsh.NewCandidates(userID, limits)
//	for _, b := range buckets {
//		if c.Full() {
//			break
//		}
//		c.Scan(store.Members(b)) // an iter.Seq[int64] over the bucket
//	}
//	top := lsh.RankJaccard(sig, store.Signatures(c.IDs()), 10)
//
// A Candidates is not safe for concurrent use.
type Candidates struct {
	lim    Limits
	self   int64
	seen   map[int64]struct{}
	ids    []int64
	capped int
}

// NewCandidates returns an empty Candidates for a query of the item self
// (never its own candidate). It panics if l.Validate fails: validate
// operator settings when starting up.
func NewCandidates(self int64, l Limits) *Candidates {
	if err := l.Validate(); err != nil {
		panic(err.Error())
	}
	return &Candidates{lim: l.withDefaults(), self: self, seen: make(map[int64]struct{})}
}

// Reset empties c for a query of the item self, keeping its limits and
// memory.
func (c *Candidates) Reset(self int64) {
	c.self = self
	clear(c.seen)
	c.ids = c.ids[:0]
	c.capped = 0
}

// Scan reads the members of one bucket, adding the new ones to the
// candidates, until the bucket ends, PerBucket entries are read or the
// candidates are Full; it then stops the iteration. It reports whether it
// stopped before the end of the bucket (it reads one entry more to know;
// once Full it reads nothing and reports true).
func (c *Candidates) Scan(members iter.Seq[int64]) (capped bool) {
	n := 0
	for id := range members {
		if n == c.lim.PerBucket || c.Full() {
			c.capped++
			return true
		}
		n++
		if id == c.self {
			continue
		}
		if _, dup := c.seen[id]; dup {
			continue
		}
		c.seen[id] = struct{}{}
		c.ids = append(c.ids, id)
	}
	return false
}

// Full reports whether c holds Limits.Candidates candidates: reading more
// buckets would add nothing.
func (c *Candidates) Full() bool { return len(c.ids) >= c.lim.Candidates }

// IDs returns the distinct candidates so far, in the order first read. The
// slice is owned by c and valid until the next Scan or Reset.
func (c *Candidates) IDs() []int64 { return c.ids }

// Capped returns the number of buckets Scan stopped reading before their
// end: a metric worth exporting, since a growing count means a band or
// table that everyone shares.
func (c *Candidates) Capped() int { return c.capped }
