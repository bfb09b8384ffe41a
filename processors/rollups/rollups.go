// Package rollups counts plays and streams per (song, day, country) and per
// (artist, day, country), and answers range queries over them.
//
// A play is a valid listen; a stream is a play of at least 30 s; the day is
// the UTC date of the event time. Counts are exact: every valid listen adds
// exactly one play to its song and to its artist.
//
// Tables (first key byte), both counter vectors [plays, streams]:
//
//	0x10 song   | day | country
//	0x12 artist | day | country
//
// with ids as 8-byte and days as 4-byte big-endian integers and the country
// as its two upper-case letters (two zero bytes when absent), so a day
// range of one id is one contiguous scan.
package rollups

import (
	"cmp"
	"slices"

	"github.com/kappa-stream/kappa/events"
	"github.com/kappa-stream/kappa/state"
)

const (
	tableSong   byte = 0x10
	tableArtist byte = 0x12
)

// Entity says whose plays a table counts.
type Entity uint8

const (
	// Song counts per song_id.
	Song Entity = iota
	// Artist counts per artist_id.
	Artist
)

func (e Entity) table() byte {
	if e == Artist {
		return tableArtist
	}
	return tableSong
}

// cellKey is a table key packed into two integers, so that comparing
// (hi, lo) orders cellKeys as their encodings are ordered bytewise:
// hi = table | id[0:7], lo = id[7] | day | country | 0.
type cellKey struct{ hi, lo uint64 }

func newCellKey(table byte, id int64, day int32, c events.Country) cellKey {
	return cellKey{
		hi: uint64(table)<<56 | uint64(id)>>8,
		lo: uint64(id)<<56 | uint64(uint32(day))<<24 | uint64(c[0])<<16 | uint64(c[1])<<8,
	}
}

func (k cellKey) compare(o cellKey) int {
	if c := cmp.Compare(k.hi, o.hi); c != 0 {
		return c
	}
	return cmp.Compare(k.lo, o.lo)
}

// append appends the 15-byte encoding of k.
func (k cellKey) append(dst []byte) []byte {
	dst = state.AppendUint64(dst, k.hi)
	return append(dst, byte(k.lo>>56), byte(k.lo>>48), byte(k.lo>>40), byte(k.lo>>32),
		byte(k.lo>>24), byte(k.lo>>16), byte(k.lo>>8))
}

func dayKey(dst []byte, table byte, id int64, day int32) []byte {
	dst = append(dst, table)
	dst = state.AppendUint64(dst, uint64(id))
	return state.AppendUint32(dst, uint32(day))
}

type counts struct{ plays, streams int64 }

func (c *counts) add(o counts) {
	c.plays += o.plays
	c.streams += o.streams
}

type cell struct {
	k cellKey
	c counts
}

// Task pre-aggregates the listens of one input partition between flushes.
// It is not safe for concurrent use; memory is bounded by the number of
// distinct (song, day, country) cells seen in one commit interval.
type Task struct {
	dec   events.Decoder
	l     events.Listen
	index map[cellKey]int32 // position of a pending cell in cells
	cells []cell
	key   []byte
	val   []byte
}

// NewTask returns an empty task.
func NewTask() *Task {
	return &Task{index: make(map[cellKey]int32)}
}

// Process decodes one JSON listen and counts it. An invalid listen returns
// its *events.InvalidError and changes nothing.
func (t *Task) Process(value []byte) error {
	if err := t.dec.Decode(value, &t.l); err != nil {
		return err
	}
	t.Add(&t.l)
	return nil
}

// Add counts one valid listen.
func (t *Task) Add(l *events.Listen) {
	c := counts{plays: 1}
	if l.IsStream() {
		c.streams = 1
	}
	day := l.Day()
	t.add(newCellKey(tableSong, l.SongID, day, l.Country), c)
	t.add(newCellKey(tableArtist, l.ArtistID, day, l.Country), c)
}

func (t *Task) add(k cellKey, c counts) {
	i, ok := t.index[k]
	if !ok {
		i = int32(len(t.cells))
		t.index[k] = i
		t.cells = append(t.cells, cell{k: k})
	}
	t.cells[i].c.add(c)
}

// Pending is the number of cells waiting for Flush.
func (t *Task) Pending() int { return len(t.cells) }

// Flush adds the pending counts to b as merges, in key order, and resets
// the task.
//
// NB: sorted merges are much cheaper for Pebble than random ones: its
// batch inserter starts each skiplist search where the last one ended.
func (t *Task) Flush(b *state.Batch) error {
	slices.SortFunc(t.cells, func(x, y cell) int { return x.k.compare(y.k) })
	for _, e := range t.cells {
		t.key = e.k.append(t.key[:0])
		t.val = state.AppendCounters(t.val[:0], e.c.plays, e.c.streams)
		if err := b.Merge(t.key, t.val); err != nil {
			return err
		}
	}
	t.cells = t.cells[:0]
	clear(t.index)
	return nil
}

// PartitionKey is the key of e's id in the repartition topic: the stage-2
// partition that counts an id, and so the instance that serves it, is
// murmur2(PartitionKey) modulo the partition count.
func PartitionKey(dst []byte, e Entity, id int64) []byte {
	dst = append(dst, e.table())
	return state.AppendUint64(dst, uint64(id))
}
