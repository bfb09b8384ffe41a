package topk

import (
	"bytes"
	"fmt"
	"slices"

	"github.com/kappa-stream/kappa/events"
	"github.com/kappa-stream/kappa/processors/rollups"
	"github.com/kappa-stream/kappa/topology"
)

// Indexer is the stage-2 part of top-K on one partition of the
// repartition topic: the rollups' AggregateTask of the partition tells
// it of every day row it writes (rollups.RowObserver), and its Prepare,
// called after the rollups' in the same transaction, writes the rank keys
// that moved. It keeps nothing between Prepares but the moves pending.
// It is not safe for concurrent use.
type Indexer struct {
	moves      []move
	arena      []byte // the moves' keys
	olds, news []rowCount
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

// NewIndexer returns the indexer of a partition.
func NewIndexer() *Indexer { return &Indexer{} }

// RowChanged implements rollups.RowObserver: it records the rank keys that
// the row's change moves.
func (x *Indexer) RowChanged(e rollups.Entity, id int64, day int32, old, new []byte) error {
	var err error
	if x.olds, err = appendRow(x.olds[:0], old); err != nil {
		return err
	}
	if x.news, err = appendRow(x.news[:0], new); err != nil {
		return err
	}
	var oldAll, newAll rowCount
	i := 0
	for _, n := range x.news {
		var o rowCount
		for i < len(x.olds) && countryCmp(x.olds[i].c, n.c) < 0 {
			oldAll.add(x.olds[i]) // NB: rows only grow; a country never leaves one
			i++
		}
		if i < len(x.olds) && x.olds[i].c == n.c {
			o = x.olds[i]
			oldAll.add(o)
			i++
		}
		newAll.add(n)
		if n.c != allCountries {
			x.moveCounts(e, id, day, n.c, o, n)
		}
	}
	for ; i < len(x.olds); i++ {
		oldAll.add(x.olds[i])
	}
	x.moveCounts(e, id, day, allCountries, oldAll, newAll)
	return nil
}

func (c *rowCount) add(o rowCount) {
	c.plays += o.plays
	c.streams += o.streams
}

// moveCounts records the move of id's key in the list of (e, day, c)
// when its plays there go from o to n. (Streams are not indexed: a
// stream is a play, so the plays' buckets bound the streams too.)
func (x *Indexer) moveCounts(e rollups.Entity, id int64, day int32, c events.Country, o, n rowCount) {
	if o.plays == n.plays || (o.plays > 0 && bucketOf(o.plays) == bucketOf(n.plays)) {
		return
	}
	if o.plays > 0 {
		start := len(x.arena)
		x.arena = rankKey(x.arena, e, day, c, o.plays, id)
		x.moves = append(x.moves, move{start: start, end: len(x.arena), del: true})
	}
	start := len(x.arena)
	x.arena = rankKey(x.arena, e, day, c, n.plays, id)
	x.moves = append(x.moves, move{start: start, end: len(x.arena)})
}

// Prepare writes the moves recorded since the last Prepare, in key order.
func (x *Indexer) Prepare(out *topology.Output) error {
	key := func(m move) []byte { return x.arena[m.start:m.end] }
	slices.SortFunc(x.moves, func(a, b move) int { return bytes.Compare(key(a), key(b)) })
	for _, m := range x.moves {
		if m.del {
			out.Delete(key(m))
		} else {
			out.Put(key(m), nil)
		}
	}
	x.moves, x.arena = x.moves[:0], x.arena[:0]
	return nil
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
