// Package topology runs processors as Kafka consumer groups with
// exactly-once state: one task per assigned input partition, and every
// commit interval one Kafka transaction (franz-go GroupTransactSession)
// that holds the tasks' output records, their store changes as changelog
// records, and the input offsets. Only after the transaction commits do
// the changes reach the partition's local Pebble store, together with the
// changelog offset they reflect. So a local store is never ahead of the
// changelog, and a store that is missing, behind (a kill -9 between the
// commit and the local write, or a partition that another instance owned
// meanwhile) is brought up to date by replaying its changelog partition
// from the offset it records before the task serves or processes.
//
// Every consumer reads read_committed: an aborted transaction's outputs
// and changes are never seen, and its input is consumed again.
//
// Invalid records go to a dead-letter topic, in the same transaction, with
// their original bytes and the headers kappa-error (the reason) and
// kappa-source (topic/partition/offset); the partition keeps going. A
// dead letter always fits its transaction: a value over
// DeadLetterMaxValue is cut, with its size and hash in headers.
package topology

import (
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/metric/noop"

	"github.com/kappa-stream/kappa/state"
)

// Task is the processing logic of one input partition. The runtime calls
// its methods from one goroutine at a time.
//
// Whatever must last goes into Prepare's Output as store changes, and is
// read back from the store; what a task keeps in memory between Prepares
// can only be a cache of its store. When a transaction aborts, the runtime
// replaces the task with a new one from NewTask, so the aborted work
// leaves nothing behind.
type Task interface {
	// Process handles one input record. A non-nil error rejects the
	// record: it goes to the dead-letter topic with the error text as its
	// reason, and the task must be left as if the record never came.
	Process(rec *kgo.Record) error
	// Prepare moves everything processed since the last Prepare into out.
	// The runtime writes out in the current transaction; the store sees
	// the changes only after the transaction commits.
	Prepare(out *Output) error
}

// Timer is implemented by a Task that has work due without input, such as
// state it publishes some time after it changed. The runtime asks NextDue
// after making the task and after each Prepare (on the task's goroutine),
// and prepares the task in the first commit interval that ends at or
// after that time even if its partition got no records. The zero time
// means nothing is due.
type Timer interface {
	NextDue() time.Time
}

// Config configures a Runner. Zero fields take the documented defaults.
type Config struct {
	// Brokers are the seed brokers (required).
	Brokers []string
	// Group is the consumer group id (required), e.g. "kappa.v1.users".
	Group string
	// InstanceID names this member (required). It is the static group
	// membership id (KIP-345): a member restarted with the same id gets
	// its partitions back at once. It also makes the transactional id, so
	// a restarted instance fences its previous incarnation's transaction
	// instead of waiting for it to time out. Ids must be unique per group.
	InstanceID string
	// Topic is the input topic (required).
	Topic string
	// DLQTopic receives rejected records. Without it a rejected record is
	// a fatal error (for internal topics, where one is a bug).
	DLQTopic string
	// Changelog is the compacted changelog topic of the tasks' stores,
	// partitioned like Topic. Empty: the tasks are stateless and may only
	// send records (Output.Put is an error).
	Changelog string
	// ManualTopics are the output topics whose records the tasks send to
	// a partition of their choosing (Output.SendTo).
	ManualTopics []string
	// StoreDir is where the per-partition stores live, one directory per
	// partition (required with Changelog).
	StoreDir string
	// StoreOpts are extra options for the partition stores.
	StoreOpts []state.Opt
	// CommitInterval is how long one transaction collects input (default
	// 100 ms).
	CommitInterval time.Duration
	// PurgeInterval is how often the runner deletes the input records it
	// has committed (DeleteRecords), for an internal topic no one else
	// reads, such as a repartition topic (default 0: never).
	PurgeInterval time.Duration
	// ReadyLag is the lag, in records, under which a partition counts as
	// caught up for readiness (default 1000).
	ReadyLag int64
	// SessionTimeout is the group session timeout: how long a member
	// that died is waited for before its partitions move (default 6 s,
	// the smallest Kafka accepts by default).
	SessionTimeout time.Duration
	// TransactionTimeout is how long the broker waits before aborting the
	// open transaction of a producer that died (default 10 s). Until then
	// the partitions it wrote to cannot be read past it.
	TransactionTimeout time.Duration
	// NewTask makes the task of a newly assigned partition (required).
	// store is the partition's store, restored; nil without Changelog.
	NewTask func(partition int32, store *state.Store) (Task, error)
	// Logger receives runtime events (default: discard).
	Logger *slog.Logger
	// MeterProvider receives the runtime's metrics (default: no-op).
	MeterProvider metric.MeterProvider
	// ClientOpts are extra franz-go options of every client the runner
	// makes, e.g. hooks, TLS and SASL.
	ClientOpts []kgo.Opt
}

func (c *Config) setDefaults() {
	if c.CommitInterval == 0 {
		c.CommitInterval = 100 * time.Millisecond
	}
	if c.ReadyLag == 0 {
		c.ReadyLag = 1000
	}
	if c.SessionTimeout == 0 {
		c.SessionTimeout = 6 * time.Second
	}
	if c.TransactionTimeout == 0 {
		c.TransactionTimeout = 10 * time.Second
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.MeterProvider == nil {
		c.MeterProvider = noop.NewMeterProvider()
	}
}

// Validate reports every missing or invalid setting.
func (c *Config) Validate() error {
	var errs []error
	if len(c.Brokers) == 0 {
		errs = append(errs, errors.New("no brokers"))
	}
	if c.Group == "" {
		errs = append(errs, errors.New("no group"))
	}
	if c.InstanceID == "" {
		errs = append(errs, errors.New("no instance id"))
	}
	if c.Topic == "" {
		errs = append(errs, errors.New("no input topic"))
	}
	if c.Changelog != "" && c.StoreDir == "" {
		errs = append(errs, errors.New("a changelog but no store directory"))
	}
	if c.PurgeInterval < 0 {
		errs = append(errs, fmt.Errorf("negative purge interval %s", c.PurgeInterval))
	}
	if c.CommitInterval < 0 {
		errs = append(errs, fmt.Errorf("negative commit interval %s", c.CommitInterval))
	}
	if c.ReadyLag < 0 {
		errs = append(errs, fmt.Errorf("negative ready lag %d", c.ReadyLag))
	}
	if c.SessionTimeout < 0 || c.TransactionTimeout < 0 {
		errs = append(errs, errors.New("negative timeout"))
	}
	if c.NewTask == nil {
		errs = append(errs, errors.New("no task constructor"))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("topology: config: %w", err)
	}
	return nil
}
