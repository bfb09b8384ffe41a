package state

// generations is a map bounded by the bytes of its keys and values that
// forgets its least recently used entries in bulk: entries go to a young
// map; when the young one passes half the budget, the old one is dropped
// and the young one becomes old. A lookup sees both. It is what Recent
// and the read cache keep their entries in. It is not safe for concurrent
// use.
type generations[V any] struct {
	young, old map[string]V
	size       int // bytes of young, with recentOverhead per entry
	budget     int
	sizeOf     func(V) int // the bytes of a value
}

// recentOverhead is the bytes counted per entry on top of its key and
// value: the map slot and the two allocations' headers.
const recentOverhead = 64

func newGenerations[V any](budget int, sizeOf func(V) int) generations[V] {
	return generations[V]{young: map[string]V{}, old: map[string]V{}, budget: budget, sizeOf: sizeOf}
}

// get returns key's value and whether g holds it; old says it is in the
// old generation only.
func (g *generations[V]) get(key []byte) (v V, ok, old bool) {
	if v, ok = g.young[string(key)]; ok {
		return v, true, false
	}
	v, ok = g.old[string(key)]
	return v, ok, ok
}

// put sets key's value in the young generation. An older value the old
// generation may hold is shadowed (get looks in the young one first) and
// goes with it.
func (g *generations[V]) put(key []byte, v V) {
	if e, ok := g.young[string(key)]; ok {
		g.size -= len(key) + g.sizeOf(e) + recentOverhead
	}
	g.young[string(key)] = v
	g.size += len(key) + g.sizeOf(v) + recentOverhead
	if g.size > g.budget/2 {
		g.old, g.young = g.young, make(map[string]V, len(g.young))
		g.size = 0
	}
}

// delete forgets key.
func (g *generations[V]) delete(key []byte) {
	if e, ok := g.young[string(key)]; ok {
		g.size -= len(key) + g.sizeOf(e) + recentOverhead
		delete(g.young, string(key))
	}
	delete(g.old, string(key))
}

// clear forgets everything.
func (g *generations[V]) clear() {
	clear(g.young)
	clear(g.old)
	g.size = 0
}

// len is the number of entries.
func (g *generations[V]) len() int { return len(g.young) + len(g.old) }
