package fans

import (
	"cmp"
	"encoding/binary"
	"fmt"
	"slices"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/uber/h3-go/v4"

	"github.com/kappa-stream/kappa/events"
	"github.com/kappa-stream/kappa/processors"
	"github.com/kappa-stream/kappa/processors/rollups"
	"github.com/kappa-stream/kappa/state"
	"github.com/kappa-stream/kappa/topology"
)

// The two stages of the fan zones on kappa's topology:
//
//   - Stage1 (on a partition of listens) keeps the partition's
//     users in its store, table 0x30 | user id → User, applies each listen,
//     and marks a user whose counts in stage 2 are out of date pending,
//     table 0x32 | user id → 8-byte Unix ns since when (and their number
//     and the oldest's time in key 0x33: a processors.PendingQueue). A user pending for
//     Config.Delay is published: the net change of their counts goes, with
//     the other publications of the commit interval summed per cell, to
//     the stage-2 partition of each artist (that of the artist's rollups);
//   - Stage2 (on a partition of the repartition topic) keeps the number of fans per (artist, res, cell),
//     table 0x31 | artist | res | cell → 8-byte count, absent when 0.
//
// Delta records share the repartition topic with the other processors';
// their first byte is Format. The value is
//
//	Format | uvarint count | count × (Delta.AppendKey | Delta.AppendValue)
const (
	tableUser    byte = 0x30
	tableCount   byte = 0x31
	tablePending byte = 0x32
	// tableSummary is one key: how many users are pending and since when
	// the oldest waits (processors.PendingQueue).
	tableSummary byte = 0x33
	// Format is the first byte of a fan-delta record.
	Format byte = 0x46
)

// IsDelta reports whether a record value of the repartition topic is a
// fan-delta record.
func IsDelta(value []byte) bool { return len(value) > 0 && value[0] == Format }

// maxCachedUsers is how many decoded users a Stage1 keeps in memory
// between commits; past it, the cache starts afresh from the store.
const maxCachedUsers = 50_000

// Stage1 is stage 1 of the fan zones for one partition of listens.
//
// A listen changes its user's state at once, but stage 2's counts only
// when the user is published, Config.Delay after the first listen that
// made the counts out of date (the home moved, or the user became a fan),
// or sooner, when the caller's partition is idle (Prepare's all).
// So a user who listens away from home and comes back within the delay
// sends nothing, and a backlog, which replays a user's whole history
// within seconds, sends about one net change per user instead of one per
// move (each a −1 and a +1 for every fan artist at every resolution).
//
// Users are cached in memory between Prepares; the store is the truth
// (pending users are marked in it), and the runtime makes a new Stage1
// after an aborted transaction.
type Stage1 struct {
	p        *Processor
	store    *state.Store
	pk       *topology.Packer
	now      func() time.Time
	users    map[int64]*User
	changed  []int64 // users to write back
	pending  *processors.PendingQueue
	deltas   []Delta // the interval's publications
	key, val []byte
}

// NewStage1 returns the stage-1 part of a partition of listens over its
// store, sending to topic, which has the given number of partitions. The
// users its store marks pending keep their time.
func NewStage1(p *Processor, s *state.Store, topic string, partitions int32) (*Stage1, error) {
	c := &Stage1{
		p: p, store: s,
		pk:    topology.NewPacker(topic, partitions, deltaHead, 0),
		now:   time.Now,
		users: map[int64]*User{},
	}
	var err error
	c.pending, err = processors.LoadPendingQueue(s, tablePending, []byte{tableSummary}, p.delay, c.now())
	if err != nil {
		return nil, err
	}
	return c, nil
}

// PendingUsers returns the number of users of a stage-1 store whose
// counts stage 2 does not have yet, and since when the oldest of them
// waits (zero when none does), as of the last commit.
func PendingUsers(s *state.Store) (n int64, oldest time.Time, err error) {
	return processors.ReadPendingSummary(s, []byte{tableSummary})
}

// NextDue is when the first pending user is due to be published (zero:
// none is pending); the runtime prepares the part then, also when no
// listen comes (topology.Timer).
func (c *Stage1) NextDue() time.Time { return c.pending.NextDue() }

// Add applies one valid listen to its user.
func (c *Stage1) Add(l *events.Listen) error {
	u, err := c.user(l.UserID)
	if err != nil {
		return err
	}
	wasChanged := u.changed
	if c.p.Apply(u, l) {
		c.pending.Mark(l.UserID)
	}
	if u.changed && !wasChanged { // NB: cleared when written back
		c.changed = append(c.changed, l.UserID)
	}
	return nil
}

// user is the cached user id, read from the store when not cached.
func (c *Stage1) user(id int64) (*User, error) {
	if u, ok := c.users[id]; ok {
		return u, nil
	}
	u := &User{}
	c.key = userKey(c.key[:0], id)
	v, found, err := c.store.Get(c.val[:0], c.key)
	if err != nil {
		return nil, err
	}
	c.val = v
	if found {
		if err := u.Decode(v); err != nil {
			return nil, fmt.Errorf("fans: user %d: %w", id, err)
		}
	}
	c.users[id] = u
	return u, nil
}

// Prepare marks the users pending since the interval, publishes those
// pending for Config.Delay (all of them when idle: the partition had no
// listen in the interval, so nothing is left to net their changes with),
// writes the changed users and sends the publications' deltas.
func (c *Stage1) Prepare(out *topology.Output, idle bool) error {
	for _, id := range c.pending.Prepare(out, c.now(), idle) {
		if err := c.publish(id); err != nil {
			return err
		}
	}
	slices.Sort(c.changed)
	for _, id := range c.changed {
		u := c.users[id]
		u.changed = false
		c.val = u.Append(c.val[:0])
		out.Put(userKey(c.key[:0], id), c.val)
	}
	c.changed = c.changed[:0]
	c.send(out)
	if len(c.users) > maxCachedUsers {
		clear(c.users)
	}
	return nil
}

// publish adds user id's net change to the interval's deltas.
func (c *Stage1) publish(id int64) error {
	u, err := c.user(id)
	if err != nil {
		return err
	}
	wasChanged := u.changed
	c.deltas = c.p.Publish(u, c.deltas)
	if u.changed && !wasChanged {
		c.changed = append(c.changed, id)
	}
	return nil
}

// deltaHead is the header of a fan-delta record of n deltas.
func deltaHead(dst []byte, _ int32, n int, _ bool) []byte {
	return binary.AppendUvarint(append(dst, Format), uint64(n))
}

// send sends the interval's deltas, summed per cell, to the stage-2
// partitions of their artists.
func (c *Stage1) send(out *topology.Output) {
	ds := sumDeltas(c.deltas)
	c.deltas = c.deltas[:0]
	c.pk.Start(out)
	var p int32
	for i := range ds {
		d := &ds[i]
		if i == 0 || d.Artist != ds[i-1].Artist { // NB: sorted by artist
			c.key = rollups.PartitionKey(c.key[:0], rollups.Artist, d.Artist)
			p = c.pk.Partition(c.key)
		}
		b := c.pk.To(p)
		*b = d.AppendValue(d.AppendKey(*b))
	}
	c.pk.Flush(false)
}

func userKey(dst []byte, id int64) []byte {
	return state.AppendUint64(append(dst, tableUser), uint64(id))
}

// Stage2 is stage 2 of the fan zones: it adds the deltas of its artists
// to their cells' fan counts.
//
// It reads each count it updates from the store: most cells are
// updated once or twice in a log's life (at resolutions 8 and 9 nearly
// every fan has a cell of their own), so a state.Recent of the counts
// missed far more often than it hit and cost a backlog 20% of its rate.
type Stage2 struct {
	store    *state.Store
	deltas   []Delta // the interval's
	key, val []byte
}

// NewStage2 returns the stage-2 part of a partition over its store.
func NewStage2(s *state.Store) *Stage2 {
	return &Stage2{store: s}
}

// Process adds one fan-delta record; a malformed one is an error and
// changes nothing.
func (t *Stage2) Process(rec *kgo.Record) error {
	v := rec.Value
	if !IsDelta(v) {
		return corrupt("delta record: not a fan-delta record")
	}
	n, w := binary.Uvarint(v[1:])
	if w <= 0 || n > uint64(len(v)) {
		return corrupt("delta record: count")
	}
	const size = KeyLen + 8
	b := v[1+w:]
	if uint64(len(b)) != n*size {
		return corrupt("delta record: length")
	}
	kept := len(t.deltas) // NB: a malformed record counts none of its deltas
	for i := 0; i < len(b); i += size {
		d, err := DecodeDelta(b[i:i+KeyLen], b[i+KeyLen:i+size])
		if err != nil {
			t.deltas = t.deltas[:kept]
			return err
		}
		t.deltas = append(t.deltas, d)
	}
	return nil
}

// Prepare writes the new counts of the cells that changed.
func (t *Stage2) Prepare(out *topology.Output) error {
	ds := sumDeltas(t.deltas)
	t.deltas = t.deltas[:0]
	if len(ds) == 0 {
		return nil
	}
	r, err := t.store.NewSortedReader()
	if err != nil {
		return err
	}
	defer r.Close()
	for i := range ds {
		d := &ds[i]
		t.key = d.AppendKey(append(t.key[:0], tableCount))
		old, found, err := r.Get(t.key)
		if err != nil {
			return err
		}
		n := d.N
		if found {
			if len(old) != 8 {
				return corrupt("count: value length")
			}
			n += int64(binary.BigEndian.Uint64(old))
		}
		switch {
		case n < 0:
			return fmt.Errorf("fans: the count of artist %d in cell %s would be %d", d.Artist, d.Cell, n)
		case n == 0:
			out.Delete(t.key)
		default:
			t.val = binary.BigEndian.AppendUint64(t.val[:0], uint64(n))
			out.Put(t.key, t.val)
		}
	}
	return nil
}

// Zone is a cell and its number of fans.
type Zone struct {
	Cell h3.Cell
	Fans int64
}

// Zones returns artist's cells at res with at least minFans fans, by fans
// descending, then cell; at most limit of them.
func Zones(s *state.Store, artist int64, res int, minFans int64, limit int) ([]Zone, error) {
	prefix := AppendPrefix([]byte{tableCount}, artist, res)
	var zs []Zone
	err := s.Scan(prefix, state.PrefixEnd(prefix), func(k, v []byte) error {
		if len(k) != 1+KeyLen || len(v) != 8 {
			return corrupt("count: key or value length")
		}
		if n := int64(binary.BigEndian.Uint64(v)); n >= minFans {
			zs = append(zs, Zone{Cell: h3.Cell(state.Uint64(k, 1+8+1)), Fans: n})
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	slices.SortFunc(zs, func(a, b Zone) int {
		if c := cmp.Compare(b.Fans, a.Fans); c != 0 {
			return c
		}
		return cmp.Compare(a.Cell, b.Cell)
	})
	return zs[:min(len(zs), limit)], nil
}

// CellFans returns the number of fans of artist whose home cell is cell.
func CellFans(s *state.Store, artist int64, cell h3.Cell) (int64, error) {
	d := Delta{Artist: artist, Res: cell.Resolution(), Cell: cell}
	v, found, err := s.Get(nil, d.AppendKey([]byte{tableCount}))
	if err != nil || !found {
		return 0, err
	}
	if len(v) != 8 {
		return 0, corrupt("count: value length")
	}
	return int64(binary.BigEndian.Uint64(v)), nil
}
