package state

import "sync"

// readCache keeps values read through Store.CachedGet, so that a key that
// many queries read (a similarity item, scored against every query whose
// candidates it is among) costs a map lookup instead of a Pebble seek
// through the memtables and every level, which takes microseconds even
// when the blocks are cached.
//
// INVARIANT: every value it holds is the store's value of its key as of
// some moment after the last commit that wrote the key. A commit drops the
// keys it wrote (Batch.Commit, after the write); a read that started
// before a commit does not insert what it read (gen).
//
// Two generations bound its memory, as in Recent.
type readCache struct {
	mu     sync.RWMutex
	young  map[string]cachedRead
	old    map[string]cachedRead
	size   int // bytes of young, with recentOverhead per entry
	budget int
	gen    uint64 // commits that dropped keys so far
}

type cachedRead struct {
	v     []byte
	found bool
}

// WithReadCache keeps up to about bytes of the values read by CachedGet
// in memory (0: none).
func WithReadCache(bytes int) Opt {
	return opt(func(c *cfg) { c.readCache = bytes })
}

func newReadCache(budget int) *readCache {
	if budget <= 0 {
		return nil
	}
	return &readCache{young: map[string]cachedRead{}, old: map[string]cachedRead{}, budget: budget}
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
		c.young[string(key)] = cachedRead{v: v, found: found}
		c.size += len(key) + len(v) + recentOverhead
		if c.size > c.budget/2 {
			c.old, c.young = c.young, make(map[string]cachedRead, len(c.young))
			c.size = 0
		}
	}
	c.mu.Unlock()
	return v, found, nil
}

// drop forgets the keys b wrote, once b is committed.
func (c *readCache) drop(b *Batch) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gen++
	if len(c.young)+len(c.old) == 0 {
		return
	}
	r := b.b.Reader()
	for {
		_, key, _, ok, err := r.Next()
		if err != nil {
			// NB: a batch Pebble committed decodes; should one not, the
			// cache cannot tell what it wrote and forgets everything.
			clear(c.young)
			clear(c.old)
			c.size = 0
			return
		}
		if !ok {
			return
		}
		delete(c.young, string(key))
		delete(c.old, string(key))
	}
}
