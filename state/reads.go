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
// Two generations bound its memory, as in Recent.
type readCache struct {
	mu     sync.RWMutex
	young  map[string]cachedRead
	old    map[string]cachedRead
	scans  [2]map[string]cachedScan // young, old: by prefix
	lens   []int                    // the lengths of the prefixes ever cached
	size   int                      // bytes of young, with recentOverhead per entry
	budget int
	gen    uint64 // commits so far
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
}

// WithReadCache keeps up to about bytes of the values read by CachedGet
// and CachedScan in memory (0: none), and the values committed under the
// keys keep accepts (nil: none), so that they are read from memory even
// the first time.
func WithReadCache(bytes int, keep func(key []byte) bool) Opt {
	return opt(func(c *cfg) { c.readCache, c.readCacheKeep = bytes, keep })
}

func newReadCache(budget int, keep func([]byte) bool) *readCache {
	if budget <= 0 {
		return nil
	}
	return &readCache{young: map[string]cachedRead{}, old: map[string]cachedRead{},
		scans: [2]map[string]cachedScan{{}, {}}, budget: budget, keep: keep}
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
	r, ok := c.young[string(key)]
	if !ok {
		r, ok = c.old[string(key)]
	}
	gen := c.gen
	c.mu.RUnlock()
	if ok {
		return r.v, r.found, nil
	}
	v, found, err := s.Get(nil, key)
	if err != nil {
		return nil, false, err
	}
	c.mu.Lock()
	if c.gen == gen { // NB: else a commit may have written key since the read
		c.put(key, cachedRead{v: v, found: found})
	}
	c.mu.Unlock()
	return v, found, nil
}

// put sets key's entry in the young generation. c.mu is held.
func (c *readCache) put(key []byte, r cachedRead) {
	if e, ok := c.young[string(key)]; ok {
		c.size -= len(key) + len(e.v) + recentOverhead
	}
	c.young[string(key)] = r
	c.grow(len(key) + len(r.v))
}

// grow counts an entry of n bytes added to the young generation and, past
// half the budget, makes it the old one. c.mu is held.
func (c *readCache) grow(n int) {
	c.size += n + recentOverhead
	if c.size > c.budget/2 {
		c.old, c.young = c.young, make(map[string]cachedRead, len(c.young))
		c.scans[1], c.scans[0] = c.scans[0], make(map[string]cachedScan, len(c.scans[0]))
		c.size = 0
	}
}

// CachedScan calls fn, in key order, for the keys with prefix until fn
// returns false, as SortedReader.Scan, through the store's read cache
// (WithReadCache): the pairs a scan visited are kept under prefix, and a
// commit that writes a key with a cached prefix drops it. The slices
// passed to fn must not be modified. It is safe for concurrent use, with
// commits too.
func (s *Store) CachedScan(prefix []byte, fn func(key, value []byte) bool) error {
	c := s.reads
	if c == nil {
		return s.scanFrom(prefix, prefix, fn)
	}
	c.mu.RLock()
	e, ok := c.scans[0][string(prefix)]
	if !ok {
		e, ok = c.scans[1][string(prefix)]
	}
	gen := c.gen
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
		return s.scanFrom(prefix, append(last[:len(last):len(last)], 0), fn)
	}
	e.complete = true
	size := 0
	err := s.scanFrom(prefix, prefix, func(k, v []byte) bool {
		kv := [2][]byte{append([]byte(nil), k...), append([]byte(nil), v...)}
		e.kvs = append(e.kvs, kv)
		size += len(k) + len(v)
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
	if c.gen == gen { // NB: else a commit may have written under prefix since
		if !slices.Contains(c.lens, len(prefix)) {
			c.lens = append(c.lens, len(prefix))
		}
		c.scans[0][string(prefix)] = e
		c.grow(len(prefix) + size)
	}
	c.mu.Unlock()
	return nil
}

// scanFrom calls fn for the keys with prefix from start on, in order,
// until fn returns false.
func (s *Store) scanFrom(prefix, start []byte, fn func(key, value []byte) bool) error {
	r, err := s.NewSortedReader()
	if err != nil {
		return err
	}
	defer r.Close()
	return r.scan(r.it.SeekGE(start), prefix, fn)
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
	if c.keep == nil && len(c.young)+len(c.old)+len(c.scans[0])+len(c.scans[1]) == 0 {
		return
	}
	r := batchrepr.Read(repr)
	for {
		kind, key, value, ok, err := r.Next()
		if err != nil {
			// NB: a batch Pebble committed decodes; should one not, the
			// cache cannot tell what it wrote and forgets everything.
			clear(c.young)
			clear(c.old)
			clear(c.scans[0])
			clear(c.scans[1])
			c.size = 0
			return
		}
		if !ok {
			return
		}
		delete(c.old, string(key))
		switch keep := c.keep != nil && c.keep(key); {
		case keep && kind == pebble.InternalKeyKindSet:
			c.put(key, cachedRead{v: append([]byte(nil), value...), found: true})
		case keep && kind == pebble.InternalKeyKindDelete:
			c.put(key, cachedRead{})
		default:
			delete(c.young, string(key))
		}
		for _, n := range c.lens {
			if n <= len(key) {
				delete(c.scans[0], string(key[:n]))
				delete(c.scans[1], string(key[:n]))
			}
		}
	}
}
