// Package rollups counts plays and streams per (song, day, country) and per
// (artist, day, country), and answers range queries over them.
//
// A play is a valid listen; a stream is a play of at least 30 s; the day is
// the UTC date of the event time. Counts are exact: every valid listen adds
// exactly one play to its song and to its artist.
//
// Tables (first key byte), all counter vectors [plays, streams]:
//
//	0x10 song   | day | country   0x11 song   | day
//	0x12 artist | day | country   0x13 artist | day
//
// with ids as 8-byte and days as 4-byte big-endian integers and the country
// as its two upper-case letters (two zero bytes when absent). The per-day
// tables duplicate the per-country ones summed over countries, so a day
// range costs one key per day.
package rollups

import (
	"github.com/kappa-stream/kappa/events"
	"github.com/kappa-stream/kappa/state"
)

const (
	tableSongCountry   byte = 0x10
	tableSongDay       byte = 0x11
	tableArtistCountry byte = 0x12
	tableArtistDay     byte = 0x13
)

// Entity says whose plays a table counts.
type Entity uint8

const (
	// Song counts per song_id.
	Song Entity = iota
	// Artist counts per artist_id.
	Artist
)

func (e Entity) tables() (country, day byte) {
	if e == Artist {
		return tableArtistCountry, tableArtistDay
	}
	return tableSongCountry, tableSongDay
}

type cellKey struct {
	id      int64
	day     int32
	country events.Country
}

type dayKey struct {
	id  int64
	day int32
}

type counts struct{ plays, streams int64 }

func (c *counts) add(o counts) {
	c.plays += o.plays
	c.streams += o.streams
}

// Task pre-aggregates the listens of one input partition between flushes.
// It is not safe for concurrent use; memory is bounded by the number of
// distinct (song, day, country) cells seen in one commit interval.
type Task struct {
	dec     events.Decoder
	l       events.Listen
	songs   map[cellKey]counts
	artists map[cellKey]counts
	days    map[dayKey]counts
	key     []byte
	val     []byte
}

// NewTask returns an empty task.
func NewTask() *Task {
	return &Task{
		songs:   make(map[cellKey]counts),
		artists: make(map[cellKey]counts),
		days:    make(map[dayKey]counts),
	}
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
	sk := cellKey{id: l.SongID, day: day, country: l.Country}
	sc := t.songs[sk]
	sc.add(c)
	t.songs[sk] = sc
	ak := cellKey{id: l.ArtistID, day: day, country: l.Country}
	ac := t.artists[ak]
	ac.add(c)
	t.artists[ak] = ac
}

// Pending is the number of (id, day, country) cells waiting for Flush.
func (t *Task) Pending() int { return len(t.songs) + len(t.artists) }

// Flush adds the pending counts to b as merges and resets the task.
func (t *Task) Flush(b *state.Batch) error {
	if err := t.flush(b, Song, t.songs); err != nil {
		return err
	}
	return t.flush(b, Artist, t.artists)
}

func (t *Task) flush(b *state.Batch, e Entity, cells map[cellKey]counts) error {
	countryTable, dayTable := e.tables()
	for k, c := range cells {
		t.key = cellKeyBytes(t.key[:0], countryTable, k.id, k.day, k.country)
		t.val = state.AppendCounters(t.val[:0], c.plays, c.streams)
		if err := b.Merge(t.key, t.val); err != nil {
			return err
		}
		dk := dayKey{id: k.id, day: k.day}
		dc := t.days[dk]
		dc.add(c)
		t.days[dk] = dc
	}
	for k, c := range t.days {
		t.key = dayKeyBytes(t.key[:0], dayTable, k.id, k.day)
		t.val = state.AppendCounters(t.val[:0], c.plays, c.streams)
		if err := b.Merge(t.key, t.val); err != nil {
			return err
		}
	}
	clear(cells)
	clear(t.days)
	return nil
}

func dayKeyBytes(dst []byte, table byte, id int64, day int32) []byte {
	dst = append(dst, table)
	dst = state.AppendUint64(dst, uint64(id))
	return state.AppendUint32(dst, uint32(day))
}

func cellKeyBytes(dst []byte, table byte, id int64, day int32, c events.Country) []byte {
	dst = dayKeyBytes(dst, table, id, day)
	return append(dst, c[0], c[1])
}
