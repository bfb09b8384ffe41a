package similar

import (
	"slices"

	"github.com/kappa-stream/kappa/events"
	"github.com/kappa-stream/kappa/lsh"
	"github.com/kappa-stream/kappa/state"
	"github.com/kappa-stream/kappa/topology"
)

// maxCachedUsers is how many signatures a UserCollector keeps in memory
// between commits (2 KiB each with the defaults); past it, the cache
// starts afresh from the store.
const maxCachedUsers = 20_000

// UserCollector is stage 1 of similar users for one partition of listens:
// it keeps the partition's users' signatures in its store and sends the
// changes of each commit interval to stage 2. Its signatures are cached in
// memory between Prepares; the store is the truth, and the runtime makes a
// new UserCollector after an aborted transaction.
type UserCollector struct {
	ix      *Index
	store   *state.Store
	e       emitter
	users   map[int64]*userSig
	changed []int64 // users whose signature changed in the interval
	scratch lsh.Signature
	key     []byte
	val     []byte
	old     []lsh.Bucket
	new     []lsh.Bucket
}

// userSig is a cached signature and, once it changed in the interval,
// what it was at the interval's start.
type userSig struct {
	sig, before lsh.Signature
}

// NewUserCollector returns the collector of a partition of listens over
// its store, sending to topic, which has the given number of partitions.
func (ix *Index) NewUserCollector(s *state.Store, topic string, partitions int32) *UserCollector {
	return &UserCollector{
		ix: ix, store: s, e: newEmitter(topic, partitions),
		users: map[int64]*userSig{}, scratch: ix.mh.Empty(),
	}
}

// Add applies one valid listen: its artist joins the user's set.
func (c *UserCollector) Add(l *events.Listen) error {
	u, err := c.user(l.UserID)
	if err != nil {
		return err
	}
	if u.before != nil {
		c.ix.mh.Add(u.sig, l.ArtistID)
		return nil
	}
	copy(c.scratch, u.sig)
	if c.ix.mh.Add(u.sig, l.ArtistID) {
		u.before = slices.Clone(c.scratch)
		c.changed = append(c.changed, l.UserID)
	}
	return nil
}

// user is the cached signature of id, read from the store when not cached.
func (c *UserCollector) user(id int64) (*userSig, error) {
	if u, ok := c.users[id]; ok {
		return u, nil
	}
	c.key = sigKey(c.key[:0], id)
	v, found, err := c.store.Get(c.val[:0], c.key)
	if err != nil {
		return nil, err
	}
	c.val = v
	u := &userSig{sig: c.ix.mh.Empty()}
	if found {
		if u.sig, err = c.ix.mh.ParseSignature(v); err != nil {
			return nil, corrupt("signature of user %d: %v", id, err)
		}
	}
	c.users[id] = u
	return u, nil
}

// Prepare writes the changed signatures and sends them and their bucket
// changes to stage 2.
func (c *UserCollector) Prepare(out *topology.Output) {
	slices.Sort(c.changed)
	c.e.start(out)
	for _, id := range c.changed {
		u := c.users[id]
		c.val, _ = u.sig.AppendBinary(c.val[:0])
		out.Put(sigKey(c.key[:0], id), c.val)
		c.e.item(Users, id, c.val)
		c.old = c.ix.mh.Buckets(u.before, c.old[:0])
		c.new = c.ix.mh.Buckets(u.sig, c.new[:0])
		left, joined := lsh.Diff(c.old, c.new)
		c.e.members(Users, id, left, joined)
		u.before = nil
	}
	c.changed = c.changed[:0]
	c.e.flush()
	if len(c.users) > maxCachedUsers {
		clear(c.users)
	}
}

func sigKey(dst []byte, id int64) []byte {
	return state.AppendUint64(append(dst, tableSig), uint64(id))
}
