package similar

import (
	"encoding/binary"
	"maps"
	"math"
	"slices"
	"time"

	"github.com/kappa-stream/kappa/events"
	"github.com/kappa-stream/kappa/lsh"
	"github.com/kappa-stream/kappa/processors"
	"github.com/kappa-stream/kappa/state"
	"github.com/kappa-stream/kappa/topology"
)

// maxCachedUsers is how many artist sets a Stage1 keeps in memory
// between commits; past it, the cache starts afresh from the store.
const maxCachedUsers = 50_000

// Stage1 is stage 1 of similar users for one partition of listens.
// It keeps, per user of the partition, the set of artists the user played
// (a listen of a known artist changes nothing and costs a lookup) and the
// set whose signature stage 2 has (published). A user whose set grew is
// pending; once pending for Config.Delay (or sooner, when the caller's
// partition is idle: Prepare's idle), the user is published: the
// signature of the new set goes to stage 2 with the bucket leaves and
// joins from the published set's signature to it. So a user who plays
// many new artists in a short time moves their bucket entries once, not
// once per artist (a backlog replays a user's whole history within
// seconds), and the signatures are computed once per publication.
//
// Sets are cached in memory between Prepares; the store is the truth
// (pending users are marked in it), and the runtime makes a new
// Stage1 after an aborted transaction.
type Stage1 struct {
	ix      *Index
	store   *state.Store
	e       emitter
	users   map[int64][]int64 // artist sets, ascending
	changed map[int64]bool    // set grew in the interval
	pending *processors.PendingQueue
	now     func() time.Time
	key     []byte
	val     []byte
	old     []lsh.Bucket
	new     []lsh.Bucket
}

// NewStage1 returns the collector of a partition of listens over
// its store, sending to topic, which has the given number of partitions.
// The users its store marks pending keep the time they have waited.
func (ix *Index) NewStage1(s *state.Store, topic string, partitions int32) (*Stage1, error) {
	c := &Stage1{
		ix: ix, store: s, e: newEmitter(topic, partitions),
		users: map[int64][]int64{}, changed: map[int64]bool{},
		now: time.Now,
	}
	var err error
	c.pending, err = processors.LoadPendingQueue(s, tablePending, []byte{tableSummary}, ix.cfg.Delay, c.now())
	if err != nil {
		return nil, err
	}
	return c, nil
}

// PendingUsers returns the number of users of a stage-1 store whose
// latest set stage 2 does not have yet, and since when the oldest of them
// waits (zero when none does), as of the last commit.
func PendingUsers(s *state.Store) (n int64, oldest time.Time, err error) {
	return processors.ReadPendingSummary(s, []byte{tableSummary})
}

// NextDue is when the first pending user is due to be published (zero:
// no user is pending); the runtime prepares the collector then, also when
// no listen comes (topology.Timer).
func (c *Stage1) NextDue() time.Time { return c.pending.NextDue() }

// Add applies one valid listen: its artist joins the user's set.
func (c *Stage1) Add(l *events.Listen) error {
	set, err := c.user(l.UserID)
	if err != nil {
		return err
	}
	i, found := slices.BinarySearch(set, l.ArtistID)
	if found {
		return nil
	}
	c.users[l.UserID] = slices.Insert(set, i, l.ArtistID)
	c.changed[l.UserID] = true
	c.pending.Mark(l.UserID)
	return nil
}

// user is the cached artist set of id, read from the store when not
// cached.
func (c *Stage1) user(id int64) ([]int64, error) {
	if set, ok := c.users[id]; ok {
		return set, nil
	}
	set, err := c.read(tableArtists, id)
	if err != nil {
		return nil, err
	}
	c.users[id] = set
	return set, nil
}

// read reads the artist set of id in table from the store; empty when
// there is none.
func (c *Stage1) read(table byte, id int64) ([]int64, error) {
	c.key = userKey(c.key[:0], table, id)
	v, found, err := c.store.Get(c.val[:0], c.key)
	if err != nil {
		return nil, err
	}
	c.val = v
	if !found {
		return nil, nil
	}
	set, err := decodeSet(v)
	if err != nil {
		return nil, corrupt("artists of user %d: %v", id, err)
	}
	return set, nil
}

// Prepare writes the grown sets and publishes the users pending for
// Config.Delay (all of them when idle: the partition had no listen in
// the interval).
func (c *Stage1) Prepare(out *topology.Output, idle bool) error {
	for _, id := range slices.Sorted(maps.Keys(c.changed)) {
		out.Put(userKey(c.key[:0], tableArtists, id), appendSet(c.val[:0], c.users[id]))
	}
	clear(c.changed)
	c.e.start(out)
	defer c.e.flush()
	for _, id := range c.pending.Prepare(out, c.now(), idle) {
		if err := c.publish(out, id); err != nil {
			return err
		}
	}
	if len(c.users) > maxCachedUsers {
		clear(c.users)
	}
	return nil
}

// publish sends the signature of user id's set and its bucket changes to
// stage 2.
func (c *Stage1) publish(out *topology.Output, id int64) error {
	set, err := c.user(id)
	if err != nil {
		return err
	}
	published, err := c.read(tablePublished, id)
	if err != nil {
		return err
	}
	out.Put(userKey(c.key[:0], tablePublished, id), appendSet(c.val[:0], set))
	// NB: the item goes whenever the set grew, for its exact scores;
	// the buckets move only when the signature changed.
	before, after := c.ix.mh.Signature(published), c.ix.mh.Signature(set)
	c.val = appendUserItem(c.val[:0], after, set)
	c.e.item(Users, id, c.val)
	if slices.Equal(before, after) {
		return nil
	}
	c.old = c.ix.mh.Buckets(before, c.old[:0])
	c.new = c.ix.mh.Buckets(after, c.new[:0])
	left, joined := lsh.Diff(c.old, c.new)
	c.e.members(Users, id, left, joined)
	return nil
}

func userKey(dst []byte, table byte, id int64) []byte {
	return state.AppendUint64(append(dst, table), uint64(id))
}

// The stored form of an artist set: uvarint count, then each id as the
// uvarint gap to the previous one (the first: the id itself).
func appendSet(dst []byte, set []int64) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(set)))
	prev := int64(0)
	for _, a := range set {
		dst = binary.AppendUvarint(dst, uint64(a-prev))
		prev = a
	}
	return dst
}

func decodeSet(b []byte) ([]int64, error) {
	n, w := binary.Uvarint(b)
	if w <= 0 || n > uint64(len(b)) {
		return nil, corrupt("set size")
	}
	b = b[w:]
	set := make([]int64, 0, n)
	prev := int64(0)
	for range n {
		gap, w := binary.Uvarint(b)
		if w <= 0 || gap == 0 || gap > uint64(math.MaxInt64-prev) {
			return nil, corrupt("set member")
		}
		b = b[w:]
		prev += int64(gap)
		set = append(set, prev)
	}
	if len(b) != 0 {
		return nil, corrupt("set: trailing bytes")
	}
	return set, nil
}
