package state

// Recent keeps in memory the values a task wrote to its store in its last
// transactions, so that a task that reads back what it writes (a day row
// that grows all day, a fan count) finds a hot key without seeking
// Pebble's memtables and levels, where each lookup costs microseconds of
// cache misses.
//
// It holds two generations: writes go to the young one; when the young
// one's keys and values pass half the budget, the old one is dropped and
// the young one becomes old. A key written in either is answered from
// memory; one written in neither is read from the store.
//
// INVARIANT: a Recent holds, for each key it has, the value the store
// has or will have once the transaction being prepared commits. Its owner
// keeps that true by giving every write to Put and by dropping the Recent
// with the task when a transaction aborts (the runtime makes a new task).
//
// A nil *Recent holds nothing: Get reads the store, Put does nothing.
// A Recent is not safe for concurrent use.
type Recent struct {
	young, old map[string][]byte
	size       int // bytes of young, with recentOverhead per entry
	budget     int
}

// recentOverhead is the bytes counted per entry on top of its key and
// value: the map slot and the two allocations' headers.
const recentOverhead = 64

// NewRecent returns a Recent that holds about budget bytes of keys and
// values at most; a budget of 0 or less returns nil, which holds nothing.
func NewRecent(budget int) *Recent {
	if budget <= 0 {
		return nil
	}
	return &Recent{young: map[string][]byte{}, old: map[string][]byte{}, budget: budget}
}

// Get returns key's value and whether it is present: from memory when c
// holds key, otherwise through r. The value is valid until the next Put
// or the next use of r, and must not be modified.
func (c *Recent) Get(r *SortedReader, key []byte) ([]byte, bool, error) {
	if c != nil {
		if v, ok := c.young[string(key)]; ok {
			return v, v != nil, nil
		}
		if v, ok := c.old[string(key)]; ok {
			return v, v != nil, nil
		}
	}
	return r.Get(key)
}

// Put records that key's value is now value; nil records that key is
// deleted. c keeps copies of both.
func (c *Recent) Put(key, value []byte) {
	if c == nil {
		return
	}
	if v, ok := c.young[string(key)]; ok {
		c.size -= len(key) + len(v) + recentOverhead
	}
	if value != nil {
		value = append(make([]byte, 0, len(value)), value...)
	}
	c.young[string(key)] = value
	c.size += len(key) + len(value) + recentOverhead
	if c.size > c.budget/2 {
		c.old, c.young = c.young, make(map[string][]byte, len(c.young))
		c.size = 0
	}
}
