// Package rollups counts plays and streams per (song, day, country) and per
// (artist, day, country), and answers range queries over them.
//
// A play is a valid listen; a stream is a play of at least 30 s; the day is
// the UTC date of the event time. Counts are exact: every valid listen adds
// exactly one play to its song and to its artist.
//
// Processing is in two stages (see Stage1 and Stage2); the stores
// of stage 2 hold the tables (first key byte)
//
//	0x10 song   | day  →  day row
//	0x12 artist | day  →  day row
//
// with ids as 8-byte and days as 4-byte big-endian integers, so a day
// range of one id is one contiguous scan; a day row holds the plays and
// streams of each country (row.go).
package rollups

import (
	"cmp"
	"slices"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kappa-stream/kappa/events"
	"github.com/kappa-stream/kappa/state"
	"github.com/kappa-stream/kappa/topology"
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

func (k cellKey) day() int32 { return int32(uint32(k.lo >> 24)) }

// sameDay reports whether k and o are cells of one table, id and day.
func (k cellKey) sameDay(o cellKey) bool { return k.hi == o.hi && k.lo>>24 == o.lo>>24 }

func dayKey(dst []byte, e entity, day int32) []byte {
	dst = e.append(dst)
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

// cells accumulates counts per cellKey between Prepares. Memory is bounded
// by the number of distinct cells seen in one commit interval.
type cells struct {
	index map[cellKey]int32 // position of a pending cell in list
	list  []cell
}

func (cs *cells) add(k cellKey, c counts) {
	if cs.index == nil {
		cs.index = make(map[cellKey]int32)
	}
	i, ok := cs.index[k]
	if !ok {
		i = int32(len(cs.list))
		cs.index[k] = i
		cs.list = append(cs.list, cell{k: k})
	}
	cs.list[i].c.add(c)
}

// sorted returns the pending cells in key order.
//
// NB: writes in key order are much cheaper for Pebble than random ones:
// its batch inserter and iterators start where the last one ended.
func (cs *cells) sorted() []cell {
	slices.SortFunc(cs.list, func(x, y cell) int { return x.k.compare(y.k) })
	return cs.list
}

func (cs *cells) reset() {
	cs.list = cs.list[:0]
	clear(cs.index)
}

// Stage1 is stage 1 of the rollups, on a partition of the listens topic:
// it pre-aggregates the valid listens it is given (Add) per (song |
// artist, day, country) for one commit interval, and sends the deltas to
// the repartition topic, one record per stage-2 partition (more past the
// packer's size cap). A song played a million times in an interval costs
// stage 2 one delta.
type Stage1 struct {
	pk    *topology.Packer
	cells cells
	key   []byte
}

// NewStage1 returns a stage-1 part that sends its deltas to topic, which
// has the given number of partitions.
func NewStage1(topic string, partitions int32) *Stage1 {
	return &Stage1{pk: topology.NewPacker(topic, partitions, deltaHead, 0)}
}

// deltaHead is the header of a delta record: its format byte.
func deltaHead(dst []byte, _ int32, _ int, _ bool) []byte { return append(dst, deltaFormat) }

// Add counts one valid listen.
func (t *Stage1) Add(l *events.Listen) error {
	c := counts{plays: 1}
	if l.IsStream() {
		c.streams = 1
	}
	day := l.Day()
	t.cells.add(newCellKey(tableSong, l.SongID, day, l.Country), c)
	t.cells.add(newCellKey(tableArtist, l.ArtistID, day, l.Country), c)
	return nil
}

// NextDue implements processors.Stage1: nothing is ever due without a
// listen.
func (t *Stage1) NextDue() time.Time { return time.Time{} }

// Prepare sends the pending counts and resets the part.
func (t *Stage1) Prepare(out *topology.Output, _ bool) error {
	list := t.cells.sorted()
	t.pk.Start(out)
	for i := 0; i < len(list); {
		e := list[i].k.entity()
		j := i + 1
		for j < len(list) && list[j].k.entity() == e {
			j++
		}
		t.key = e.append(t.key[:0])
		b := t.pk.To(t.pk.Partition(t.key))
		*b = appendDeltas(*b, e, list[i:j])
		i = j
	}
	t.pk.Flush(false)
	t.cells.reset()
	return nil
}

// Stage2 is stage 2 of the rollups, run on a partition of the
// repartition topic: it sums the deltas of its songs and artists and
// writes the new totals to its store (and so to the changelog).
type Stage2 struct {
	store  *state.Store
	cells  cells
	deltas []delta
	key    []byte
	val    []byte
	row    []rowEntry
	recent *state.Recent
	// observer is told of every row written (nil: none).
	observer RowObserver
}

// NewStage2 returns a stage-2 part over the partition's store that keeps
// the rows it wrote lately in recent (nil: none), a Recent of its own.
func NewStage2(s *state.Store, recent *state.Recent) *Stage2 {
	return &Stage2{store: s, recent: recent}
}

// Process adds one delta record; a malformed one changes nothing.
func (t *Stage2) Process(rec *kgo.Record) error {
	var err error
	if t.deltas, err = parseDeltas(t.deltas[:0], rec.Value); err != nil {
		return err
	}
	for _, d := range t.deltas {
		t.cells.add(d.k, d.n)
	}
	return nil
}

// Prepare writes the new day rows of the songs and artists that changed.
func (t *Stage2) Prepare(out *topology.Output) error {
	list := t.cells.sorted()
	if len(list) == 0 {
		return nil
	}
	r, err := t.store.NewSortedReader()
	if err != nil {
		return err
	}
	defer r.Close()
	for i := 0; i < len(list); {
		j := i + 1
		for j < len(list) && list[j].k.sameDay(list[i].k) {
			j++
		}
		e, day := list[i].k.entity(), list[i].k.day()
		t.key = dayKey(t.key[:0], e, day)
		old, _, err := t.recent.Get(r, t.key)
		if err != nil {
			return err
		}
		if t.val, err = mergeRow(t.val[:0], old, list[i:j], &t.row); err != nil {
			return err
		}
		if t.observer != nil {
			if err := t.observer.RowChanged(e.public(), e.id, day, old, t.val); err != nil {
				return err
			}
		}
		out.Put(t.key, t.val)
		t.recent.Put(t.key, t.val)
		i = j
	}
	t.cells.reset()
	return nil
}

// PartitionKey is the key of e's id in the repartition topic: the stage-2
// partition that counts an id, and so the instance that serves it, is
// murmur2(PartitionKey) modulo the partition count.
func PartitionKey(dst []byte, e Entity, id int64) []byte {
	return entity{table: e.table(), id: id}.append(dst)
}
