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
type Recent struct{ gens generations[[]byte] }

// NewRecent returns a Recent that holds about budget bytes of keys and
// values at most; a budget of 0 or less returns nil, which holds nothing.
func NewRecent(budget int) *Recent {
	if budget <= 0 {
		return nil
	}
	return &Recent{gens: newGenerations(budget, func(v []byte) int { return len(v) })}
}

// Get returns key's value and whether it is present: from memory when c
// holds key, otherwise through r. The value is valid until the next Put
// or the next use of r, and must not be modified.
func (c *Recent) Get(r *SortedReader, key []byte) ([]byte, bool, error) {
	if c != nil {
		if v, ok, _ := c.gens.get(key); ok {
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
	if value != nil {
		value = append(make([]byte, 0, len(value)), value...)
	}
	c.gens.put(key, value)
}
