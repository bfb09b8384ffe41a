package topk

import (
	"bytes"
	"fmt"
	"slices"

	"github.com/kappa-stream/kappa/events"
	"github.com/kappa-stream/kappa/processors/rollups"
	"github.com/kappa-stream/kappa/state"
	"github.com/kappa-stream/kappa/topology"
)

// Indexer is the stage-2 part of top-K on one partition of the
// repartition topic: the rollups' AggregateTask of the partition tells
// it of every day row it writes (rollups.RowObserver), and its Prepare,
// called after the rollups' in the same transaction, moves the rank keys
// of the weeks those rows changed. It keeps nothing between Prepares but
// the changes pending. It is not safe for concurrent use.
type Indexer struct {
	store *state.Store
	// changes are the rows' changes since the last Prepare, in row key
	// order (so those of one id's week are together).
	changes    []rowChange
	moves      []move
	arena      []byte // the moves' keys
	olds, news []rowCount
	week       []rowCount // scratch: a week's totals
	key        []byte
	// weeks caches the totals of the weeks this Indexer moved keys of,
	// as the store has them once the transaction being prepared
	// commits, so that an id played all week does not read its week's
	// rows at each commit. INVARIANT: it holds no week's totals but
	// those; an aborted transaction drops it with the task (the runtime
	// makes a new one).
	weeks map[weekKey][]rowCount
}

// weekKey is an id's week.
type weekKey struct {
	e  rollups.Entity
	id int64
	w  int32
}

// maxCachedWeeks bounds Indexer.weeks: past it, the cache starts afresh.
const maxCachedWeeks = 200_000

// rowChange is the change of one day row: per country, new minus old.
type rowChange struct {
	e     rollups.Entity
	id    int64
	day   int32
	delta []rowCount
}

// move is a rank key to put or delete; key indexes the arena.
type move struct {
	start, end int
	del        bool
}

// rowCount is one country's counts in a day row.
type rowCount struct {
	c              events.Country
	plays, streams int64
}

// NewIndexer returns the indexer of a partition over its store, which
// it reads the weeks' other day rows from.
func NewIndexer(s *state.Store) *Indexer {
	return &Indexer{store: s, weeks: map[weekKey][]rowCount{}}
}

// RowChanged implements rollups.RowObserver: it records the change.
func (x *Indexer) RowChanged(e rollups.Entity, id int64, day int32, old, new []byte) error {
	var err error
	if x.olds, err = appendRow(x.olds[:0], old); err != nil {
		return err
	}
	if x.news, err = appendRow(x.news[:0], new); err != nil {
		return err
	}
	ch := rowChange{e: e, id: id, day: day}
	i := 0
	for _, n := range x.news {
		for i < len(x.olds) && countryCmp(x.olds[i].c, n.c) < 0 {
			i++ // NB: rows only grow; a country never leaves one
		}
		if i < len(x.olds) && x.olds[i].c == n.c {
			n.plays -= x.olds[i].plays
			n.streams -= x.olds[i].streams
			i++
		}
		if n.plays != 0 {
			ch.delta = append(ch.delta, n)
		}
	}
	x.changes = append(x.changes, ch)
	return nil
}

func (c *rowCount) add(o rowCount) {
	c.plays += o.plays
	c.streams += o.streams
}

// Prepare moves the rank keys of the weeks whose rows changed since the
// last Prepare, in key order.
func (x *Indexer) Prepare(out *topology.Output) error {
	if len(x.changes) > 0 {
		r, err := x.store.NewSortedReader()
		if err != nil {
			return err
		}
		for i := 0; i < len(x.changes); {
			c := x.changes[i]
			j := i + 1
			for j < len(x.changes) && x.changes[j].e == c.e && x.changes[j].id == c.id && weekOf(x.changes[j].day) == weekOf(c.day) {
				j++
			}
			if err := x.moveWeek(r, x.changes[i:j]); err != nil {
				r.Close()
				return err
			}
			i = j
		}
		if err := r.Close(); err != nil {
			return fmt.Errorf("topk: %w", err)
		}
	}
	key := func(m move) []byte { return x.arena[m.start:m.end] }
	slices.SortFunc(x.moves, func(a, b move) int { return bytes.Compare(key(a), key(b)) })
	for _, m := range x.moves {
		if m.del {
			out.Delete(key(m))
		} else {
			out.Put(key(m), nil)
		}
	}
	x.changes, x.moves, x.arena = x.changes[:0], x.moves[:0], x.arena[:0]
	return nil
}

// moveWeek records the moves of the changes of one id's week: its totals
// before are its day rows in the store (as of the last commit), after
// those plus the changes.
func (x *Indexer) moveWeek(r *state.SortedReader, changes []rowChange) error {
	c := changes[0]
	w := weekOf(c.day)
	wk := weekKey{c.e, c.id, w}
	old, ok := x.weeks[wk]
	if !ok {
		var err error
		if old, err = x.weekTotals(r, x.week[:0], c.e, c.id, w); err != nil {
			return err
		}
		x.week = old
	}
	var oldAll, newAll rowCount
	for _, o := range old {
		oldAll.add(o)
	}
	newAll = oldAll
	// NB: the countries changed, with their deltas summed over the days.
	x.news = x.news[:0]
	for _, ch := range changes {
		for _, d := range ch.delta {
			newAll.add(d)
			k := slices.IndexFunc(x.news, func(n rowCount) bool { return n.c == d.c })
			if k < 0 {
				x.news = append(x.news, rowCount{c: d.c})
				k = len(x.news) - 1
			}
			x.news[k].add(d)
		}
	}
	for _, d := range x.news {
		if d.c.IsZero() {
			continue // NB: the listens without a country count in all countries only
		}
		var o rowCount
		if k := slices.IndexFunc(old, func(n rowCount) bool { return n.c == d.c }); k >= 0 {
			o = old[k]
		}
		x.moveKey(c.e, c.id, w, d.c, o.plays, o.plays+d.plays)
	}
	x.moveKey(c.e, c.id, w, events.Country{}, oldAll.plays, newAll.plays) // NB: all countries
	if len(x.weeks) >= maxCachedWeeks {
		clear(x.weeks)
	}
	totals := slices.Clone(old)
	for _, d := range x.news {
		k := slices.IndexFunc(totals, func(n rowCount) bool { return n.c == d.c })
		if k < 0 {
			totals = append(totals, rowCount{c: d.c})
			k = len(totals) - 1
		}
		totals[k].add(d)
	}
	x.weeks[wk] = totals
	return nil
}

// weekTotals appends to dst the counts per country of id's day rows of
// week w in r.
func (x *Indexer) weekTotals(r *state.SortedReader, dst []rowCount, e rollups.Entity, id int64, w int32) ([]rowCount, error) {
	x.key = rollups.DayKey(x.key[:0], e, id, w*weekDays)
	prefix := x.key[:len(x.key)-4]
	var rowErr error
	err := r.ScanFrom(prefix, x.key, func(k, v []byte) bool {
		if int32(state.Uint32(k, len(prefix))) >= (w+1)*weekDays {
			return false
		}
		rowErr = rollups.ForRow(v, func(c events.Country, plays, streams int64) {
			for i := range dst {
				if dst[i].c == c {
					dst[i].plays += plays
					dst[i].streams += streams
					return
				}
			}
			dst = append(dst, rowCount{c: c, plays: plays, streams: streams})
		})
		return rowErr == nil
	})
	if err == nil {
		err = rowErr
	}
	if err != nil {
		return dst, fmt.Errorf("topk: read week: %w", err)
	}
	return dst, nil
}

// moveKey records the move of id's key in the list of (e, w, c) when its
// plays there go from o to n. (Streams are not indexed: a stream is a
// play, so the plays' buckets bound the streams too.)
func (x *Indexer) moveKey(e rollups.Entity, id int64, w int32, c events.Country, o, n int64) {
	if o == n || (o > 0 && bucketOf(o) == bucketOf(n)) {
		return
	}
	if o > 0 {
		start := len(x.arena)
		x.arena = rankKey(x.arena, e, w, c, o, id)
		x.moves = append(x.moves, move{start: start, end: len(x.arena), del: true})
	}
	start := len(x.arena)
	x.arena = rankKey(x.arena, e, w, c, n, id)
	x.moves = append(x.moves, move{start: start, end: len(x.arena)})
}

// appendRow appends the counts of a day row to dst.
func appendRow(dst []rowCount, row []byte) ([]rowCount, error) {
	err := rollups.ForRow(row, func(c events.Country, plays, streams int64) {
		dst = append(dst, rowCount{c: c, plays: plays, streams: streams})
	})
	if err != nil {
		return dst, fmt.Errorf("topk: %w", err)
	}
	return dst, nil
}

func countryCmp(a, b events.Country) int {
	if a[0] != b[0] {
		return int(a[0]) - int(b[0])
	}
	return int(a[1]) - int(b[1])
}
