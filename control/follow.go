package control

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kappa-stream/kappa/topology"
)

// Follower follows the control topic from its start and keeps its State.
// Create it with NewFollower and start it with Run; State, Synced and
// Changed are safe for concurrent use.
type Follower struct {
	brokers []string
	topic   string
	logger  *slog.Logger
	opts    []kgo.Opt

	mu sync.Mutex
	// state is what the records read so far say. REQUIRES: mu held.
	state State

	synced     chan struct{}
	syncedOnce sync.Once
	changed    chan struct{}
}

// NewFollower returns a follower of topic on brokers. logger receives
// unreadable records and fetch errors (nil: discard); opts are extra
// franz-go options, e.g. hooks.
func NewFollower(brokers []string, topic string, logger *slog.Logger, opts ...kgo.Opt) (*Follower, error) {
	if len(brokers) == 0 || topic == "" {
		return nil, errors.New("control: a follower needs brokers and a topic")
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &Follower{
		brokers: brokers, topic: topic, logger: logger, opts: opts,
		synced:  make(chan struct{}),
		changed: make(chan struct{}, 1),
	}, nil
}

// State returns the control state read so far.
func (f *Follower) State() State {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.state.clone()
}

// Synced is closed once the follower has read every record that was in
// the topic when Run started.
func (f *Follower) Synced() <-chan struct{} { return f.synced }

// Changed receives a value after a record was applied to the state
// (coalesced: a reader that is behind gets one value for several).
func (f *Follower) Changed() <-chan struct{} { return f.changed }

// Run reads the topic until ctx ends and returns nil then; it fails only
// when the client cannot be made. Broker errors are logged and retried.
func (f *Follower) Run(ctx context.Context) error {
	err := topology.FollowTopic(ctx, f.topic, "control topic", append([]kgo.Opt{kgo.SeedBrokers(f.brokers...)}, f.opts...),
		time.Second, f.logger, f.apply, func() { f.syncedOnce.Do(func() { close(f.synced) }) })
	if err != nil {
		return fmt.Errorf("control: client: %w", err)
	}
	return nil
}

func (f *Follower) apply(r *kgo.Record) {
	f.mu.Lock()
	err := f.state.apply(r.Key, r.Value)
	f.mu.Unlock()
	if err != nil {
		f.logger.Warn("ignoring an unreadable control record", "topic", r.Topic, "offset", r.Offset, "err", err)
		return
	}
	select {
	case f.changed <- struct{}{}:
	default:
	}
}

// Load reads the whole control topic once and returns its state. As a
// Follower, it skips records it cannot read.
func Load(ctx context.Context, brokers []string, topic string, opts ...kgo.Opt) (State, error) {
	var st State
	err := topology.ReadTopic(ctx, brokers, topic, func(r *kgo.Record) {
		_ = st.apply(r.Key, r.Value) // NB: an unreadable record leaves st as it was
	}, opts...)
	if err != nil {
		return State{}, fmt.Errorf("control: %w", err)
	}
	return st, nil
}

// PutVersion writes v's record and waits for the broker to acknowledge it.
func PutVersion(ctx context.Context, cl *kgo.Client, topic string, v Version) error {
	key, value, err := encodeVersion(v)
	if err != nil {
		return err
	}
	return put(ctx, cl, topic, key, value)
}

// PutServing writes the serving pointer and waits for the broker to
// acknowledge it.
func PutServing(ctx context.Context, cl *kgo.Client, topic string, s Serving) error {
	key, value, err := encodeServing(s)
	if err != nil {
		return err
	}
	return put(ctx, cl, topic, key, value)
}

func put(ctx context.Context, cl *kgo.Client, topic string, key, value []byte) error {
	rec := &kgo.Record{Topic: topic, Key: key, Value: value}
	if err := cl.ProduceSync(ctx, rec).FirstErr(); err != nil {
		return fmt.Errorf("control: write %s to %s: %w", key, topic, err)
	}
	return nil
}
