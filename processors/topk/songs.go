package topk

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kappa-stream/kappa/events"
	"github.com/kappa-stream/kappa/processors/rollups"
	"github.com/kappa-stream/kappa/state"
	"github.com/kappa-stream/kappa/topology"
)

// The songs of an artist (top songs with artist_id=). The rollups' song
// rows do not know whose listens they count — a song_id may come with
// more than one artist_id — so the top songs of an artist are counted
// apart, in two stages of their own:
//
//   - SongCollector (stage 1, on a partition of listens) sums each commit
//     interval's valid listens per (artist, day, song, country) and sends
//     the sums to the stage-2 partition of the artist (its
//     rollups.PartitionKey, so beside the artist's rollups), in records
//     capped by topology.Packer: SongFormat, then cells of
//
//     artist (8) | day (4) | song (8) | country (2) | uvarint plays | uvarint streams
//
//   - SongTask (stage 2) keeps per (artist, day, song) a day row in
//     rollups' row form (rollups.ForRow: the plays and streams of each
//     country), table 0x51 | artist | day | song → row.
//
// ArtistSongs answers from one store, the artist's: it sums the artist's
// rows over the range, one scan of at most (days × songs of the artist)
// rows.
const (
	tableArtistSongs byte = 0x51
	// SongFormat is the first byte of an artist-songs record.
	SongFormat byte = 0x54
)

// songCellLen is the fixed part of a cell: artist, day, song, country.
const songCellLen = 8 + 4 + 8 + 2

// IsSongDelta reports whether a record value of the repartition topic is
// an artist-songs record.
func IsSongDelta(value []byte) bool { return len(value) > 0 && value[0] == SongFormat }

// songCell is the key of a cell, in the byte order of its encoding.
type songCell [songCellLen]byte

func newSongCell(artist int64, day int32, song int64, c events.Country) songCell {
	var k songCell
	binary.BigEndian.PutUint64(k[0:], uint64(artist))
	binary.BigEndian.PutUint32(k[8:], uint32(day))
	binary.BigEndian.PutUint64(k[12:], uint64(song))
	k[20], k[21] = c[0], c[1]
	return k
}

func (k *songCell) artist() int64 { return int64(binary.BigEndian.Uint64(k[0:])) }

// row is the (artist, day, song) the cell's country belongs to.
func (k *songCell) row() []byte { return k[:songCellLen-2] }

type songCount struct {
	k              songCell
	plays, streams int64
}

// songCells sums counts per cell between Prepares.
type songCells struct {
	index map[songCell]int32
	list  []songCount
}

func (cs *songCells) add(k songCell, plays, streams int64) {
	if cs.index == nil {
		cs.index = map[songCell]int32{}
	}
	i, ok := cs.index[k]
	if !ok {
		i = int32(len(cs.list))
		cs.index[k] = i
		cs.list = append(cs.list, songCount{k: k})
	}
	cs.list[i].plays += plays
	cs.list[i].streams += streams
}

// sorted returns the cells in key order.
func (cs *songCells) sorted() []songCount {
	slices.SortFunc(cs.list, func(a, b songCount) int { return bytes.Compare(a.k[:], b.k[:]) })
	return cs.list
}

func (cs *songCells) reset() {
	cs.list = cs.list[:0]
	clear(cs.index)
}

// SongCollector is stage 1 of the artists' songs on one partition of
// listens. It keeps nothing but the interval's sums. It is not safe for
// concurrent use.
type SongCollector struct {
	pk    *topology.Packer
	cells songCells
	key   []byte
}

// NewSongCollector returns the collector of a partition of listens,
// sending to topic, which has the given number of partitions.
func NewSongCollector(topic string, partitions int32) *SongCollector {
	return &SongCollector{pk: topology.NewPacker(topic, partitions, songHead, 0)}
}

// songHead is the header of an artist-songs record: its format byte.
func songHead(dst []byte, _ int32, _ int, _ bool) []byte { return append(dst, SongFormat) }

// Add counts one valid listen; it never fails (the error is the stage-1
// contract's, for store failures).
func (c *SongCollector) Add(l *events.Listen) error {
	var streams int64
	if l.IsStream() {
		streams = 1
	}
	c.cells.add(newSongCell(l.ArtistID, l.Day(), l.SongID, l.Country), 1, streams)
	return nil
}

// NextDue implements the stage-1 contract: nothing is ever due without
// listens.
func (c *SongCollector) NextDue() time.Time { return time.Time{} }

// Prepare sends the interval's sums to the artists' stage-2 partitions
// (records capped by the packer) and resets the collector. idle is not
// used: every interval's sums are sent at its end.
func (c *SongCollector) Prepare(out *topology.Output, _ bool) error {
	c.pk.Start(out)
	p, last := int32(0), int64(0)
	for i, cell := range c.cells.sorted() {
		if a := cell.k.artist(); i == 0 || a != last {
			c.key = rollups.PartitionKey(c.key[:0], rollups.Artist, a)
			p, last = c.pk.Partition(c.key), a
		}
		b := c.pk.To(p)
		*b = append(*b, cell.k[:]...)
		*b = binary.AppendUvarint(*b, uint64(cell.plays))
		*b = binary.AppendUvarint(*b, uint64(cell.streams))
	}
	c.pk.Flush(false)
	c.cells.reset()
	return nil
}

var errSongRecord = errors.New("topk: malformed artist-songs record")

// parseSongCells calls fn for each cell of a record, after checking the
// whole record.
func parseSongCells(v []byte, fn func(k songCell, plays, streams int64)) error {
	if !IsSongDelta(v) {
		return fmt.Errorf("%w: unknown format", errSongRecord)
	}
	for pass := range 2 {
		for rest := v[1:]; len(rest) > 0; {
			if len(rest) < songCellLen {
				return errSongRecord
			}
			k := songCell(rest[:songCellLen])
			plays, n := binary.Uvarint(rest[songCellLen:])
			if n <= 0 || plays == 0 || plays > 1<<62 {
				return errSongRecord
			}
			streams, m := binary.Uvarint(rest[songCellLen+n:])
			if m <= 0 || streams > plays {
				return errSongRecord
			}
			if pass == 1 {
				fn(k, int64(plays), int64(streams))
			}
			rest = rest[songCellLen+n+m:]
		}
	}
	return nil
}

// SongTask is stage 2 of the artists' songs on one partition of the
// repartition topic: it adds the records' sums to the (artist, day, song)
// rows of its store. It is not safe for concurrent use.
type SongTask struct {
	store    *state.Store
	cells    songCells
	key, val []byte
	olds     []rowCount
}

// NewSongTask returns the task of a partition over its store.
func NewSongTask(s *state.Store) *SongTask { return &SongTask{store: s} }

// Process adds one artist-songs record; a malformed one changes nothing.
func (t *SongTask) Process(rec *kgo.Record) error {
	return parseSongCells(rec.Value, func(k songCell, plays, streams int64) { t.cells.add(k, plays, streams) })
}

// Prepare writes the rows that changed since the last Prepare.
func (t *SongTask) Prepare(out *topology.Output) error {
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
		for j < len(list) && bytes.Equal(list[j].k.row(), list[i].k.row()) {
			j++
		}
		t.key = append(append(t.key[:0], tableArtistSongs), list[i].k.row()...)
		old, _, err := r.Get(t.key)
		if err != nil {
			return err
		}
		if t.olds, err = appendRow(t.olds[:0], old); err != nil {
			return err
		}
		t.val = mergeSongRow(t.val[:0], t.olds, list[i:j])
		out.Put(t.key, t.val)
		i = j
	}
	t.cells.reset()
	return nil
}

// mergeSongRow appends the row of olds plus the cells, both in country
// order, in rollups' row form.
func mergeSongRow(dst []byte, olds []rowCount, cells []songCount) []byte {
	put := func(c events.Country, plays, streams int64) {
		dst = append(dst, c[0], c[1])
		dst = binary.AppendUvarint(dst, uint64(plays))
		dst = binary.AppendUvarint(dst, uint64(streams))
	}
	i := 0
	for _, cell := range cells {
		c := events.Country{cell.k[20], cell.k[21]}
		for i < len(olds) && countryCmp(olds[i].c, c) < 0 {
			put(olds[i].c, olds[i].plays, olds[i].streams)
			i++
		}
		plays, streams := cell.plays, cell.streams
		if i < len(olds) && olds[i].c == c {
			plays, streams = plays+olds[i].plays, streams+olds[i].streams
			i++
		}
		put(c, plays, streams)
	}
	for ; i < len(olds); i++ {
		put(olds[i].c, olds[i].plays, olds[i].streams)
	}
	return dst
}

// ArtistSongs answers q (its Entity is ignored: songs) for the songs
// played under artist, from the store of the artist's partition.
func ArtistSongs(s *state.Store, artist int64, q Query) ([]Item, error) {
	if err := q.Validate(); err != nil {
		return nil, err
	}
	prefix := state.AppendUint64([]byte{tableArtistSongs}, uint64(artist))
	lo := state.AppendUint32(bytes.Clone(prefix), uint32(q.From))
	hi := state.AppendUint32(bytes.Clone(prefix), uint32(q.To)+1)
	sums := map[int64]*Item{}
	err := s.Scan(lo, hi, func(k, v []byte) error {
		if len(k) != 1+songCellLen-2 {
			return fmt.Errorf("topk: artist-songs key %x: want %d bytes", k, 1+songCellLen-2)
		}
		song := int64(state.Uint64(k, 13))
		it := sums[song]
		if it == nil {
			it = &Item{ID: song}
			sums[song] = it
		}
		return rollups.ForRow(v, func(c events.Country, plays, streams int64) {
			if q.Country.IsZero() || c == q.Country {
				it.Plays += plays
				it.Streams += streams
			}
		})
	})
	if err != nil {
		return nil, fmt.Errorf("topk: artist songs: %w", err)
	}
	var out []Item
	for _, it := range sums {
		if it.measure(q.By) > 0 {
			out = append(out, *it)
		}
	}
	slices.SortFunc(out, func(a, b Item) int { return compare(q.By, a, b) })
	return out[:min(len(out), q.K)], nil
}
