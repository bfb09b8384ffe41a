package state

import (
	"slices"
	"sync"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/batchrepr"
)

// readCache keeps values read through Store.CachedGet, so that a key that
// many queries read (a similarity item, scored against every query whose
// candidates it is among) costs a map lookup instead of a Pebble seek
// through the memtables and every level, which takes microseconds even
// when the blocks are cached.
//
// INVARIANT: every value it holds is the store's value of its key as of
// some moment after the last commit that wrote the key. A commit
// (Batch.Commit, after the write) puts the new values of the keys keep
// accepts and drops the other keys it wrote; a read that started before
// a commit does not insert what it read (gen).
//
// Two generations each (generations) bound the memory of the values and
// of the scans, apart, so that scans of prefixes that few queries share
// do not push out values that many do: the values get seven eighths of
// the budget. A value read from the old generation moves to the young
// one.
type readCache struct {
	mu    sync.RWMutex
	reads generations[cachedRead]
	scans generations[cachedScan] // by prefix
	lens  []int                   // the lengths of the prefixes ever cached
	gen   uint64                  // commits so far
	// keep tells the keys whose new values a commit puts in the cache
	// (nil: none); a commit drops the other keys it wrote.
	keep func(key []byte) bool
}

type cachedRead struct {
	v     []byte
	found bool
}

// cachedScan is what a scan of a prefix visited: its first pairs, in key
// order, and whether they are all the prefix has.
type cachedScan struct {
	kvs      [][2][]byte
	complete bool
	size     int // bytes of kvs' keys and values
}

// WithReadCache keeps up to about bytes of the values read by CachedGet
// and CachedReader in memory (0: none), and the values committed under the
// keys keep accepts (nil: none), so that they are read from memory even
// the first time.
func WithReadCache(bytes int, keep func(key []byte) bool) Opt {
	return opt(func(c *cfg) { c.readCache, c.readCacheKeep = bytes, keep })
}

func newReadCache(budget int, keep func([]byte) bool) *readCache {
	if budget <= 0 {
		return nil
	}
	return &readCache{
		reads: newGenerations(budget-budget/8, func(r cachedRead) int { return len(r.v) }),
		scans: newGenerations(budget/8, func(e cachedScan) int { return e.size }),
		keep:  keep,
	}
}

// CachedGet returns key's value, valid until the store closes and not to
// be modified, and false when the key is absent: from the store's read
// cache (WithReadCache) when it holds key, otherwise from the store, and
// then remembered. It is safe for concurrent use, with commits too.
func (s *Store) CachedGet(key []byte) ([]byte, bool, error) {
	c := s.reads
	if c == nil {
		return s.Get(nil, key)
	}
	c.mu.RLock()
	r, ok, old := c.reads.get(key)
	gen := c.gen
	c.mu.RUnlock()
	if ok {
		if old {
			c.mu.Lock()
			if c.gen == gen { // NB: else a commit may have written key since the read
				c.reads.put(key, r)
			}
			c.mu.Unlock()
		}
		return r.v, r.found, nil
	}
	v, found, err := s.Get(nil, key)
	if err != nil {
		return nil, false, err
	}
	c.mu.Lock()
	if c.gen == gen { // NB: else a commit may have written key since the read
		c.reads.put(key, cachedRead{v: v, found: found})
	}
	c.mu.Unlock()
	return v, found, nil
}

// CachedReader reads prefix scans through its store's read cache
// (WithReadCache): the pairs a scan visited are kept under prefix, and a
// commit that writes a key with a cached prefix drops it. What the cache
// does not hold is read from one Pebble iterator, opened by the first
// such scan, so that a query of many prefixes pays for one; the reader
// sees the store as of that moment, as a SortedReader does. It is not
// safe for concurrent use (open one per query); Close it after use.
type CachedReader struct {
	s   *Store
	it  *SortedReader // nil until a scan misses the cache
	gen uint64        // the cache's commits when it was opened
}

// NewCachedReader opens a CachedReader.
func (s *Store) NewCachedReader() *CachedReader { return &CachedReader{s: s} }

// Close releases the reader.
func (r *CachedReader) Close() error {
	if r.it == nil {
		return nil
	}
	return r.it.Close()
}

// iter returns the reader's iterator, opening it on first use.
func (r *CachedReader) iter() (*SortedReader, error) {
	if r.it != nil {
		return r.it, nil
	}
	if c := r.s.reads; c != nil {
		c.mu.RLock()
		r.gen = c.gen // NB: before the iterator, which sees this commit or a later one
		c.mu.RUnlock()
	}
	it, err := r.s.NewSortedReader()
	r.it = it
	return it, err
}

// Scan calls fn, in key order, for the keys with prefix until fn returns
// false, from the read cache when it holds prefix and otherwise from the
// store, then kept. The slices passed to fn must not be modified.
func (r *CachedReader) Scan(prefix []byte, fn func(key, value []byte) bool) error {
	c := r.s.reads
	if c == nil {
		return r.scanFrom(prefix, prefix, fn)
	}
	c.mu.RLock()
	e, ok, _ := c.scans.get(prefix)
	c.mu.RUnlock()
	if ok {
		for _, kv := range e.kvs {
			if !fn(kv[0], kv[1]) {
				return nil
			}
		}
		if e.complete || len(e.kvs) == 0 {
			return nil
		}
		// NB: past what was cached, from the store, not kept.
		last := e.kvs[len(e.kvs)-1][0]
		return r.scanFrom(prefix, append(last[:len(last):len(last)], 0), fn)
	}
	e.complete = true
	err := r.scanFrom(prefix, prefix, func(k, v []byte) bool {
		kv := [2][]byte{append([]byte(nil), k...), append([]byte(nil), v...)}
		e.kvs = append(e.kvs, kv)
		e.size += len(k) + len(v)
		if !fn(kv[0], kv[1]) {
			e.complete = false
			return false
		}
		return true
	})
	if err != nil {
		return err
	}
	c.mu.Lock()
	if c.gen == r.gen { // NB: else a commit may have written under prefix since the iterator opened
		if !slices.Contains(c.lens, len(prefix)) {
			c.lens = append(c.lens, len(prefix))
		}
		c.scans.put(prefix, e)
	}
	c.mu.Unlock()
	return nil
}

// scanFrom calls fn for the keys with prefix from start on, in order,
// until fn returns false.
func (r *CachedReader) scanFrom(prefix, start []byte, fn func(key, value []byte) bool) error {
	it, err := r.iter()
	if err != nil {
		return err
	}
	return it.scan(it.it.SeekGE(start), prefix, fn)
}

// committed takes in what a batch wrote, once it is committed: the new
// values of the keys c.keep accepts; the other keys leave the cache, and
// so does every cached scan of a prefix of a written key. repr is the
// batch's representation, taken before the commit (Pebble empties a large
// batch as it commits it).
func (c *readCache) committed(repr []byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gen++
	if c.keep == nil && c.reads.len()+c.scans.len() == 0 {
		return
	}
	r := batchrepr.Read(repr)
	for {
		kind, key, value, ok, err := r.Next()
		if err != nil {
			// NB: a batch Pebble committed decodes; should one not, the
			// cache cannot tell what it wrote and forgets everything.
			c.reads.clear()
			c.scans.clear()
			return
		}
		if !ok {
			return
		}
		switch keep := c.keep != nil && c.keep(key); {
		case keep && kind == pebble.InternalKeyKindSet:
			c.reads.put(key, cachedRead{v: append([]byte(nil), value...), found: true})
		case keep && kind == pebble.InternalKeyKindDelete:
			c.reads.put(key, cachedRead{})
		default:
			c.reads.delete(key)
		}
		for _, n := range c.lens {
			if n <= len(key) {
				c.scans.delete(key[:n])
			}
		}
	}
}
