package topk

import (
	"cmp"
	"container/heap"
	"errors"
	"fmt"
	"slices"

	"github.com/kappa-stream/kappa/events"
	"github.com/kappa-stream/kappa/processors/rollups"
	"github.com/kappa-stream/kappa/state"
)

// MaxK is the largest K a Query may ask for.
const MaxK = 1000

// Query asks for the K ids of Entity with the most plays or streams (By)
// over the days From..To (inclusive, UTC day numbers), in one country or
// in all (Country zero).
type Query struct {
	Entity   rollups.Entity
	By       By
	From, To int32
	Country  events.Country
	K        int
}

// Validate reports a query Top cannot answer.
func (q Query) Validate() error {
	switch {
	case q.K < 1 || q.K > MaxK:
		return fmt.Errorf("topk: k %d: want 1…%d", q.K, MaxK)
	case q.From < 0 || q.From > q.To:
		return fmt.Errorf("topk: days %d…%d: want 0 ≤ from ≤ to", q.From, q.To)
	case q.By != Plays && q.By != Streams:
		return errors.New("topk: by must be Plays or Streams")
	}
	return nil
}

// Item is one id of an answer with its exact counts over the range (and
// the country, when the query has one).
type Item struct {
	ID             int64
	Plays, Streams int64
}

func (it Item) measure(by By) int64 {
	if by == Streams {
		return it.Streams
	}
	return it.Plays
}

// compare orders items as answers list them: by the measure descending,
// then by id ascending.
func compare(by By, a, b Item) int {
	if c := cmp.Compare(b.measure(by), a.measure(by)); c != 0 {
		return c
	}
	return cmp.Compare(a.ID, b.ID)
}

// Merge returns the answer to q from the answers of disjoint sets of ids
// (the partitions): the best q.K of all their items, in answer order.
func Merge(q Query, answers ...[]Item) []Item {
	var all []Item
	for _, a := range answers {
		all = append(all, a...)
	}
	slices.SortFunc(all, func(a, b Item) int { return compare(q.By, a, b) })
	return all[:min(len(all), q.K)]
}

// list is the cursor of one day's ranked list.
type list struct {
	prefix []byte
	next   []byte // where the next read starts
	// ceil is the largest count an unread entry can have: the ceiling of
	// the last read entry's bucket (0 once the list is exhausted).
	ceil int64
	done bool
}

// candidate is an id read from some lists and not looked up yet.
type candidate struct {
	id int64
	// seen is the sum of the ceilings of its entries read so far, and
	// days the lists they were read from.
	seen  int64
	days  []int32
	upper int64 // as of the last round: seen + the ceilings of the other lists
	exact bool
}

// firstBatch and maxBatch bound how many entries a round reads from each
// list: the rounds read more and more as a query needs to go deeper.
const (
	firstBatch = 16
	maxBatch   = 1024
)

// Top answers q from the rank index and day rows of store s.
//
// It reads the day lists in rounds (sorted access) and keeps, for each id
// read, the largest total it can have: the ceilings of its entries read
// plus the current ceilings of the lists it has not been read from. It
// reads an id's exact counts from its rows (random access) only when that
// bound is above the bound of every unread id (the sum of the lists'
// ceilings) and could still reach the best K — or, once every list is
// read, when it could reach them — so that the many ids of a sparse range
// (one small country over a month) are ruled out by their bound instead
// of a lookup each. It stops when it has K exact items, the K-th above
// the bound of every unread id, and every other id read ruled out.
func Top(s *state.Store, q Query) ([]Item, error) {
	if err := q.Validate(); err != nil {
		return nil, err
	}
	r, err := s.NewSortedReader()
	if err != nil {
		return nil, err
	}
	defer r.Close()
	// NB: the weeks the range overlaps; an id's plays in a week bound
	// its plays (and streams) in the range's days of that week.
	lists := make([]list, 0, weekOf(q.To)-weekOf(q.From)+1)
	for w := weekOf(q.From); w <= weekOf(q.To); w++ {
		p := listPrefix(nil, q.Entity, w, q.Country)
		lists = append(lists, list{prefix: p, next: p})
	}
	best := &itemHeap{by: q.By}
	cands := map[int64]*candidate{}
	var open []*candidate // read, not looked up, not ruled out
	batch := firstBatch
	for {
		for i := range lists {
			l := &lists[i]
			if l.done {
				continue
			}
			n := 0
			err := r.ScanFrom(l.prefix, l.next, func(key, _ []byte) bool {
				if len(key) != rankKeyLen {
					return true // NB: Check reports it; the list goes on
				}
				ceil, id := parseRank(key)
				l.ceil = ceil
				c := cands[id]
				if c == nil {
					c = &candidate{id: id}
					cands[id] = c
					open = append(open, c)
				}
				if !c.exact {
					c.seen += ceil
					c.days = append(c.days, int32(i))
				}
				if n++; n == batch {
					l.next = append(append(l.next[:0:0], key...), 0)
					return false
				}
				return true
			})
			if err != nil {
				return nil, fmt.Errorf("topk: read index: %w", err)
			}
			if n < batch {
				l.done, l.ceil = true, 0
			}
		}
		var unread int64 // the bound of an id read from no list
		done := true
		for _, l := range lists {
			unread += l.ceil
			done = done && l.done
		}
		for _, c := range open {
			c.upper = c.seen + unread
			for _, d := range c.days {
				c.upper -= lists[d].ceil
			}
		}
		slices.SortFunc(open, func(a, b *candidate) int { return cmp.Or(cmp.Compare(b.upper, a.upper), cmp.Compare(a.id, b.id)) })
		kept := open[:0]
		for i, c := range open {
			if best.Len() == q.K && best.beats(c.upper, c.id) {
				break // NB: the rest are bounded lower still
			}
			if c.upper <= unread && !done {
				kept = append(kept, open[i:]...) // NB: not yet: no better than an unread id
				break
			}
			it, err := exact(r, q, c.id)
			if err != nil {
				return nil, err
			}
			c.exact, c.days = true, nil
			best.offer(it, q.K)
		}
		open = kept
		if done || (best.Len() == q.K && best.items[0].measure(q.By) > unread) {
			break
		}
		batch = min(2*batch, maxBatch)
	}
	out := slices.Clone(best.items)
	slices.SortFunc(out, func(a, b Item) int { return compare(q.By, a, b) })
	return out, nil
}

// exact reads id's counts over q's range (and country) from its day rows.
func exact(r *state.SortedReader, q Query, id int64) (Item, error) {
	it := Item{ID: id}
	start := rollups.DayKey(nil, q.Entity, id, q.From)
	prefix := start[:len(start)-4]
	var rowErr error
	err := r.ScanFrom(prefix, start, func(key, v []byte) bool {
		if int32(state.Uint32(key, len(prefix))) > q.To {
			return false
		}
		rowErr = rollups.ForRow(v, func(c events.Country, plays, streams int64) {
			if q.Country.IsZero() || c == q.Country {
				it.Plays += plays
				it.Streams += streams
			}
		})
		return rowErr == nil
	})
	if err == nil {
		err = rowErr
	}
	if err != nil {
		return it, fmt.Errorf("topk: read rows: %w", err)
	}
	return it, nil
}

// itemHeap keeps the best K items seen; its root is the worst of them.
type itemHeap struct {
	by    By
	items []Item
}

func (h *itemHeap) Len() int           { return len(h.items) }
func (h *itemHeap) Less(i, j int) bool { return compare(h.by, h.items[i], h.items[j]) > 0 }
func (h *itemHeap) Swap(i, j int)      { h.items[i], h.items[j] = h.items[j], h.items[i] }
func (h *itemHeap) Push(x any)         { h.items = append(h.items, x.(Item)) }
func (h *itemHeap) Pop() any {
	it := h.items[len(h.items)-1]
	h.items = h.items[:len(h.items)-1]
	return it
}

// beats reports whether the heap's worst item ranks before an id with
// the given count of the measure (the heap is full).
func (h *itemHeap) beats(count, id int64) bool {
	w := h.items[0]
	return w.measure(h.by) > count || (w.measure(h.by) == count && w.ID < id)
}

// offer keeps it if it is among the best k so far and has a positive
// count of the measure.
func (h *itemHeap) offer(it Item, k int) {
	switch {
	case it.measure(h.by) <= 0:
	case len(h.items) < k:
		heap.Push(h, it)
	case compare(h.by, it, h.items[0]) < 0:
		h.items[0] = it
		heap.Fix(h, 0)
	}
}
