package keys

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kappa-stream/kappa/topology"
)

// fetchMaxWait bounds how long a fetch of the keys topic waits for new
// records; the broker answers as soon as one arrives, so a revocation
// reaches a follower well within a second.
const fetchMaxWait = 500 * time.Millisecond

// Follower follows the keys topic from its start and verifies tokens
// against what it read. Create it with NewFollower and start it with
// Run; its methods are safe for concurrent use.
type Follower struct {
	brokers []string
	topic   string
	logger  *slog.Logger
	opts    []kgo.Opt

	mu sync.RWMutex
	// byID are the keys read so far. REQUIRES: mu held.
	byID map[string]Key

	synced     chan struct{}
	syncedOnce sync.Once
}

// NewFollower returns a follower of topic on brokers. logger receives
// unreadable records and fetch errors (nil: discard); opts are extra
// franz-go options, e.g. hooks.
func NewFollower(brokers []string, topic string, logger *slog.Logger, opts ...kgo.Opt) (*Follower, error) {
	if len(brokers) == 0 || topic == "" {
		return nil, errors.New("keys: a follower needs brokers and a topic")
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &Follower{brokers: brokers, topic: topic, logger: logger, opts: opts,
		byID: map[string]Key{}, synced: make(chan struct{})}, nil
}

// Synced is closed once the follower has read every record that was in
// the topic when Run started. Verify rejects every token before.
func (f *Follower) Synced() <-chan struct{} { return f.synced }

// Verify returns the key of token: ErrUnknown for a malformed token or
// one no key has (the hashes compared in constant time), ErrRevoked for
// a revoked key's.
func (f *Follower) Verify(token string) (Key, error) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	return verify(f.byID, token)
}

// List returns the keys read so far, oldest first.
func (f *Follower) List() []Key {
	f.mu.RLock()
	defer f.mu.RUnlock()
	return sorted(f.byID)
}

// Run reads the topic until ctx ends and returns nil then; it fails only
// when the client cannot be made. Broker errors are logged and retried.
func (f *Follower) Run(ctx context.Context) error {
	err := topology.FollowTopic(ctx, f.topic, "keys topic", append([]kgo.Opt{kgo.SeedBrokers(f.brokers...)}, f.opts...),
		fetchMaxWait, f.logger, func(r *kgo.Record) {
			f.mu.Lock()
			err := apply(f.byID, r.Key, r.Value)
			f.mu.Unlock()
			if err != nil {
				f.logger.Warn("ignoring an unreadable keys record", "topic", r.Topic, "offset", r.Offset, "err", err)
			}
		}, func() { f.syncedOnce.Do(func() { close(f.synced) }) })
	if err != nil {
		return fmt.Errorf("keys: client: %w", err)
	}
	return nil
}

// Load reads the whole keys topic once and returns its keys, oldest
// first. As a Follower, it skips records it cannot read.
func Load(ctx context.Context, brokers []string, topic string, opts ...kgo.Opt) ([]Key, error) {
	byID := map[string]Key{}
	err := topology.ReadTopic(ctx, brokers, topic, func(r *kgo.Record) {
		_ = apply(byID, r.Key, r.Value) // NB: an unreadable record changes nothing
	}, opts...)
	if err != nil {
		return nil, fmt.Errorf("keys: %w", err)
	}
	return sorted(byID), nil
}

func sorted(byID map[string]Key) []Key {
	out := slices.Collect(maps.Values(byID))
	slices.SortFunc(out, func(a, b Key) int {
		return cmp.Or(a.Created.Compare(b.Created), cmp.Compare(a.ID, b.ID))
	})
	return out
}

// Put writes k's record and waits for the broker to acknowledge it.
func Put(ctx context.Context, cl *kgo.Client, topic string, k Key) error {
	key, value, err := encode(k)
	if err != nil {
		return err
	}
	if err := cl.ProduceSync(ctx, &kgo.Record{Topic: topic, Key: key, Value: value}).FirstErr(); err != nil {
		return fmt.Errorf("keys: write %s to %s: %w", key, topic, err)
	}
	return nil
}

// Find returns the key in list whose id or name is ref; a name that
// several keys share is an error (revoke those by id).
func Find(list []Key, ref string) (Key, error) {
	var found []Key
	for _, k := range list {
		if k.ID == ref {
			return k, nil
		}
		if k.Name != "" && k.Name == ref {
			found = append(found, k)
		}
	}
	switch len(found) {
	case 0:
		return Key{}, fmt.Errorf("keys: no key has id or name %q", ref)
	case 1:
		return found[0], nil
	}
	return Key{}, fmt.Errorf("keys: %d keys are named %q; give the id", len(found), ref)
}
