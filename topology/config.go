// Package topology runs processors as a Kafka consumer group: one task per
// assigned input partition, records pre-aggregated in the task and flushed
// every commit interval as one Pebble batch that also records the input
// offsets it reflects. A task resumes from the offsets in its store, so the
// store counts every input record exactly once, whatever Kafka's committed
// group offsets say (those are committed after each flush, for lag tools).
//
// Invalid records go to a dead-letter topic with their original bytes and
// the headers kappa-error (the reason) and kappa-source
// (topic/partition/offset); the partition keeps going.
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
type Task interface {
	// Process handles one input record value. A non-nil error rejects the
	// record: it goes to the dead-letter topic with the error text as its
	// reason, and the task must be left as if the record never came.
	Process(value []byte) error
	// Flush writes everything processed since the last Flush into b. The
	// runtime adds the input offsets to b and commits it; Flush must not
	// commit or close b.
	Flush(b *state.Batch) error
}

// Config configures a Runner. Zero fields take the documented defaults.
type Config struct {
	// Brokers are the seed brokers (required).
	Brokers []string
	// Group is the consumer group id (required), e.g. "kappa.v1.rollups".
	Group string
	// InstanceID makes the member static (KIP-345): a member restarted
	// with the same id gets its partitions back at once, without waiting
	// for the session timeout of its previous incarnation. Default: none.
	InstanceID string
	// Topic is the input topic (required).
	Topic string
	// DLQTopic receives rejected records (required).
	DLQTopic string
	// CommitInterval is how often tasks flush to the store (default 100 ms).
	CommitInterval time.Duration
	// ReadyLag is the lag, in records, under which a partition counts as
	// caught up for readiness (default 1000).
	ReadyLag int64
	// Store keeps the state and the input offsets (required).
	Store *state.Store
	// NewTask makes the task of a newly assigned partition (required).
	NewTask func(partition int32) Task
	// Logger receives runtime events (default: discard).
	Logger *slog.Logger
	// MeterProvider receives the runtime's metrics (default: no-op).
	MeterProvider metric.MeterProvider
	// ClientOpts are extra franz-go options, e.g. hooks.
	ClientOpts []kgo.Opt
}

func (c *Config) setDefaults() {
	if c.CommitInterval == 0 {
		c.CommitInterval = 100 * time.Millisecond
	}
	if c.ReadyLag == 0 {
		c.ReadyLag = 1000
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.MeterProvider == nil {
		c.MeterProvider = noop.NewMeterProvider()
	}
}

// Validate reports the first missing or invalid setting.
func (c *Config) Validate() error {
	var errs []error
	if len(c.Brokers) == 0 {
		errs = append(errs, errors.New("no brokers"))
	}
	if c.Group == "" {
		errs = append(errs, errors.New("no group"))
	}
	if c.Topic == "" {
		errs = append(errs, errors.New("no input topic"))
	}
	if c.DLQTopic == "" {
		errs = append(errs, errors.New("no dead-letter topic"))
	}
	if c.CommitInterval < 0 {
		errs = append(errs, fmt.Errorf("negative commit interval %s", c.CommitInterval))
	}
	if c.ReadyLag < 0 {
		errs = append(errs, fmt.Errorf("negative ready lag %d", c.ReadyLag))
	}
	if c.Store == nil {
		errs = append(errs, errors.New("no store"))
	}
	if c.NewTask == nil {
		errs = append(errs, errors.New("no task constructor"))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("topology: config: %w", err)
	}
	return nil
}
