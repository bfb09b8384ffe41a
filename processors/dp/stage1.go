package dp

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"slices"
	"time"

	"github.com/uber/h3-go/v4"

	"github.com/kappa-stream/kappa/events"
	"github.com/kappa-stream/kappa/processors/rollups"
	"github.com/kappa-stream/kappa/state"
	"github.com/kappa-stream/kappa/topology"
)

// userDay is the bounding state of one user on one day: the songs and
// artists kept, in the order they came.
type userDay struct {
	songs   []keptSong
	artists []keptArtist
}

type keptSong struct {
	id      int64
	country events.Country
	plays   int64 // counted so far, at most MaxPlays
}

type keptArtist struct {
	id      int64
	country events.Country
}

func (u *userDay) song(id int64) int {
	return slices.IndexFunc(u.songs, func(s keptSong) bool { return s.id == id })
}

func (u *userDay) artist(id int64) int {
	return slices.IndexFunc(u.artists, func(a keptArtist) bool { return a.id == id })
}

func (u *userDay) append(dst []byte) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(u.songs)))
	for _, s := range u.songs {
		dst = binary.AppendUvarint(dst, uint64(s.id))
		dst = append(dst, s.country[:]...)
		dst = binary.AppendUvarint(dst, uint64(s.plays))
	}
	dst = binary.AppendUvarint(dst, uint64(len(u.artists)))
	for _, a := range u.artists {
		dst = binary.AppendUvarint(dst, uint64(a.id))
		dst = append(dst, a.country[:]...)
	}
	return dst
}

var errUserDay = errors.New("dp: malformed user-day state")

func parseUserDay(b []byte) (*userDay, error) {
	u := &userDay{}
	n, w := binary.Uvarint(b)
	if w <= 0 || n > uint64(len(b)) {
		return nil, errUserDay
	}
	b = b[w:]
	for range n {
		id, w := binary.Uvarint(b)
		if w <= 0 || len(b) < w+2 {
			return nil, errUserDay
		}
		c := events.Country{b[w], b[w+1]}
		b = b[w+2:]
		plays, w := binary.Uvarint(b)
		if w <= 0 {
			return nil, errUserDay
		}
		b = b[w:]
		u.songs = append(u.songs, keptSong{id: int64(id), country: c, plays: int64(plays)})
	}
	n, w = binary.Uvarint(b)
	if w <= 0 || n > uint64(len(b)) {
		return nil, errUserDay
	}
	b = b[w:]
	for range n {
		id, w := binary.Uvarint(b)
		if w <= 0 || len(b) < w+2 {
			return nil, errUserDay
		}
		u.artists = append(u.artists, keptArtist{id: int64(id), country: events.Country{b[w], b[w+1]}})
		b = b[w+2:]
	}
	if len(b) != 0 {
		return nil, errUserDay
	}
	return u, nil
}

func userDayKey(dst []byte, day int32, user int64) []byte {
	dst = append(dst, tableUserDay)
	dst = state.AppendUint32(dst, uint32(day))
	return state.AppendUint64(dst, uint64(user))
}

type udKey struct {
	day  int32
	user int64
}

// cellKey is one cell of a table: of a country, or of an H3 cell for
// ArtistFans.
type cellKey struct {
	kind    Kind
	id      int64
	day     int32
	country events.Country
	cell    h3.Cell
}

func (k cellKey) append(dst []byte) []byte {
	dst = append(dst, tableCell, byte(k.kind))
	dst = state.AppendUint64(dst, uint64(k.id))
	dst = state.AppendUint32(dst, uint32(k.day))
	if k.kind == ArtistFans {
		return state.AppendUint64(dst, uint64(k.cell))
	}
	return append(dst, k.country[:]...)
}

// home is a user's latest location.
type home struct {
	ts       int64
	lat, lng float64
	known    bool
}

func homeKey(dst []byte, user int64) []byte {
	return state.AppendUint64(append(dst, tableHome), uint64(user))
}

// Stage1 bounds the contributions of the users of one partition of
// listens and sends the bounded counts, pre-aggregated per interval, to
// the stage-2 partitions of their songs and artists, with the
// partition's largest event time.
type Stage1 struct {
	cfg    Config
	source int32
	store  *state.Store
	pk     *topology.Packer

	maxTS  int64
	seen   bool  // maxTS is set
	oldest int32 // the oldest day with state in the store, when hasOld
	hasOld bool
	sentTS int64 // maxTS last sent to every partition
	sent   bool

	users map[udKey]*userDay // touched since the last Prepare
	homes map[int64]*home    // read or changed since the last Prepare
	moved map[int64]bool     // homes changed since the last Prepare
	cells map[cellKey]int64
	key   []byte
}

// NewStage1 returns the part of partition source of listens over its
// store s, sending to topic (partitions partitions).
func NewStage1(cfg Config, source int32, s *state.Store, topic string, partitions int32) (*Stage1, error) {
	if s == nil {
		return nil, errors.New("dp: stage 1 needs a store")
	}
	t := &Stage1{cfg: cfg, source: source, store: s, users: map[udKey]*userDay{}, cells: map[cellKey]int64{},
		homes: map[int64]*home{}, moved: map[int64]bool{}}
	t.pk = topology.NewPacker(topic, partitions, t.head, 0)
	v, found, err := s.Get(nil, []byte{tableMeta})
	if err != nil {
		return nil, fmt.Errorf("dp: read stage-1 meta: %w", err)
	}
	if found {
		if len(v) != 13 {
			return nil, fmt.Errorf("dp: stage-1 meta of %d bytes", len(v))
		}
		t.maxTS, t.seen = int64(state.Uint64(v, 0)), true
		t.oldest, t.hasOld = int32(state.Uint32(v, 8)), v[12] == 1
	}
	return t, nil
}

// head starts a record: format | uvarint source | 1 and the largest
// event time (last record of the partition in a Prepare) or 0.
func (t *Stage1) head(dst []byte, _ int32, _ int, last bool) []byte {
	dst = binary.AppendUvarint(append(dst, Format), uint64(t.source))
	if last && t.seen {
		return state.AppendUint64(append(dst, 1), uint64(t.maxTS))
	}
	return append(dst, 0)
}

// late reports whether day is closed for this partition already.
func (t *Stage1) late(day int32) bool { return t.seen && t.cfg.Closed(t.maxTS, day) }

// Add bounds one listen: counted if its day is open here, its song
// (artist) is among the user's first MaxItems of the day, and the song
// has fewer than MaxPlays plays counted.
func (t *Stage1) Add(l *events.Listen) error {
	day := l.Day()
	late := t.late(day)
	if !t.seen || l.TS > t.maxTS {
		t.maxTS, t.seen = l.TS, true
	}
	h, err := t.home(l.UserID)
	if err != nil {
		return err
	}
	if l.HasLoc && (!h.known || l.TS >= h.ts) {
		*h = home{ts: l.TS, lat: l.Lat, lng: l.Lng, known: true}
		t.moved[l.UserID] = true
	}
	if late {
		return nil
	}
	k := udKey{day: day, user: l.UserID}
	u, ok := t.users[k]
	if !ok {
		var err error
		if u, err = t.load(k); err != nil {
			return err
		}
		t.users[k] = u
	}
	if i := u.song(l.SongID); i >= 0 {
		if s := &u.songs[i]; s.plays < int64(t.cfg.MaxPlays) {
			s.plays++
			t.cells[cellKey{kind: SongPlays, id: l.SongID, day: day, country: s.country}]++
		}
	} else if len(u.songs) < t.cfg.MaxItems {
		u.songs = append(u.songs, keptSong{id: l.SongID, country: l.Country, plays: 1})
		t.cells[cellKey{kind: SongListeners, id: l.SongID, day: day, country: l.Country}]++
		t.cells[cellKey{kind: SongPlays, id: l.SongID, day: day, country: l.Country}]++
	}
	if u.artist(l.ArtistID) < 0 && len(u.artists) < t.cfg.MaxItems {
		u.artists = append(u.artists, keptArtist{id: l.ArtistID, country: l.Country})
		t.cells[cellKey{kind: ArtistListeners, id: l.ArtistID, day: day, country: l.Country}]++
		if h.known {
			ll := h3.NewLatLng(h.lat, h.lng)
			for _, r := range t.cfg.Resolutions {
				t.cells[cellKey{kind: ArtistFans, id: l.ArtistID, day: day, cell: h3.LatLngToCell(ll, r)}]++
			}
		}
	}
	if !t.hasOld || day < t.oldest {
		t.oldest, t.hasOld = day, true
	}
	return nil
}

// home returns the user's home, read from the store on first use in an
// interval.
func (t *Stage1) home(user int64) (*home, error) {
	if h, ok := t.homes[user]; ok {
		return h, nil
	}
	h := &home{}
	t.key = homeKey(t.key[:0], user)
	v, found, err := t.store.Get(nil, t.key)
	if err != nil {
		return nil, fmt.Errorf("dp: read home: %w", err)
	}
	if found {
		if len(v) != 24 {
			return nil, fmt.Errorf("dp: home of %d bytes", len(v))
		}
		*h = home{ts: int64(state.Uint64(v, 0)), lat: math.Float64frombits(state.Uint64(v, 8)),
			lng: math.Float64frombits(state.Uint64(v, 16)), known: true}
	}
	t.homes[user] = h
	return h, nil
}

func (t *Stage1) load(k udKey) (*userDay, error) {
	t.key = userDayKey(t.key[:0], k.day, k.user)
	v, found, err := t.store.Get(nil, t.key)
	if err != nil {
		return nil, fmt.Errorf("dp: read user-day: %w", err)
	}
	if !found {
		return &userDay{}, nil
	}
	return parseUserDay(v)
}

// NextDue implements processors.Stage1: nothing is due without a listen.
func (t *Stage1) NextDue() time.Time { return time.Time{} }

// Prepare sends the interval's counts, puts the touched user-days in the
// store, deletes those Keep past their day's close, and sends the largest
// event time to every stage-2 partition when it moved by a minute or
// more since it was last sent (or was never sent by this part).
func (t *Stage1) Prepare(out *topology.Output, _ bool) error {
	if !t.seen {
		return nil
	}
	cells := make([]cellKey, 0, len(t.cells))
	for k := range t.cells {
		cells = append(cells, k)
	}
	slices.SortFunc(cells, func(a, b cellKey) int { return compareCells(a, b) })
	t.pk.Start(out)
	for _, k := range cells {
		t.key = rollups.PartitionKey(t.key[:0], k.kind.Entity(), k.id)
		b := t.pk.To(t.pk.Partition(t.key))
		*b = appendCell(*b, k, t.cells[k])
	}
	every := !t.sent || t.maxTS-t.sentTS >= time.Minute.Milliseconds()
	t.pk.Flush(every)
	if every {
		t.sentTS, t.sent = t.maxTS, true
	}
	clear(t.cells)

	cut := int32(floorDiv(t.maxTS-t.cfg.Grace.Milliseconds()-t.cfg.Keep.Milliseconds(), msPerDay))
	keys := make([]udKey, 0, len(t.users))
	for k := range t.users {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b udKey) int {
		if a.day != b.day {
			return int(a.day) - int(b.day)
		}
		return cmpInt64(a.user, b.user)
	})
	var buf []byte
	for _, k := range keys {
		if k.day < cut {
			continue // deleted below
		}
		t.key = userDayKey(t.key[:0], k.day, k.user)
		buf = t.users[k].append(buf[:0])
		out.Put(t.key, buf)
	}
	clear(t.users)
	users := make([]int64, 0, len(t.moved))
	for u := range t.moved {
		users = append(users, u)
	}
	slices.Sort(users)
	for _, u := range users {
		h := t.homes[u]
		buf = state.AppendUint64(buf[:0], uint64(h.ts))
		buf = state.AppendUint64(buf, math.Float64bits(h.lat))
		buf = state.AppendUint64(buf, math.Float64bits(h.lng))
		t.key = homeKey(t.key[:0], u)
		out.Put(t.key, buf)
	}
	clear(t.moved)
	clear(t.homes)
	if t.hasOld && t.oldest < cut {
		lo := userDayKey(nil, t.oldest, 0)
		hi := state.AppendUint32([]byte{tableUserDay}, uint32(cut))
		err := t.store.Scan(lo, hi, func(k, _ []byte) error { out.Delete(k); return nil })
		if err != nil {
			return fmt.Errorf("dp: scan expired user-days: %w", err)
		}
		t.oldest = cut
	}
	meta := state.AppendUint64(nil, uint64(t.maxTS))
	meta = state.AppendUint32(meta, uint32(t.oldest))
	if t.hasOld {
		meta = append(meta, 1)
	} else {
		meta = append(meta, 0)
	}
	out.Put([]byte{tableMeta}, meta)
	return nil
}

func compareCells(a, b cellKey) int {
	if a.kind != b.kind {
		return int(a.kind) - int(b.kind)
	}
	if c := cmpInt64(a.id, b.id); c != 0 {
		return c
	}
	if a.day != b.day {
		return int(a.day) - int(b.day)
	}
	if a.cell != b.cell {
		return cmpInt64(int64(a.cell), int64(b.cell))
	}
	if a.country[0] != b.country[0] {
		return int(a.country[0]) - int(b.country[0])
	}
	return int(a.country[1]) - int(b.country[1])
}

func cmpInt64(a, b int64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// appendCell appends one entry: kind | uvarint id | varint day | country
// (2 bytes; an 8-byte H3 cell for ArtistFans) | uvarint n.
func appendCell(dst []byte, k cellKey, n int64) []byte {
	dst = append(dst, byte(k.kind))
	dst = binary.AppendUvarint(dst, uint64(k.id))
	dst = binary.AppendVarint(dst, int64(k.day))
	if k.kind == ArtistFans {
		dst = state.AppendUint64(dst, uint64(k.cell))
	} else {
		dst = append(dst, k.country[:]...)
	}
	return binary.AppendUvarint(dst, uint64(n))
}

func floorDiv(a, b int64) int64 {
	q := a / b
	if a%b != 0 && (a < 0) != (b < 0) {
		q--
	}
	return q
}
