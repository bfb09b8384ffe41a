package parquet

import (
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/metric/noop"
)

// Defaults of Config.
const (
	// DefaultGroup is the sink's consumer group on the listens topic. It
	// carries no topology version: the sink reads raw listens, which a
	// new version of the processors does not change.
	DefaultGroup = "kappa.sink"
	// DefaultTopic is the topic of listens.
	DefaultTopic = "listens"
	// DefaultManifestTopic is the compacted topic of the epochs each
	// instance committed, keyed by instance id.
	DefaultManifestTopic = "kappa.sink.manifest"
	// DefaultEpochRows bounds the valid listens of one epoch: about
	// 150 MiB of rows in memory.
	DefaultEpochRows = 1_000_000
	// DefaultEpochInterval bounds the time one epoch reads.
	DefaultEpochInterval = time.Minute
)

// Config is the configuration of a Sink. Brokers, Dir and InstanceID are
// required; the rest has defaults.
type Config struct {
	// Brokers are the seed brokers.
	Brokers []string
	// Dir is the root of the lake: listens/ and catalog/ are its tables,
	// _sink/ the sink's staging area (outside the tables, so no reader's
	// glob sees a staged file).
	Dir string
	// InstanceID is the static member id in the group, part of the
	// transactional id, and the name of the instance's staging folder
	// and manifest key. A restart must reuse it to finish its epochs.
	InstanceID string
	// Group, Topic and ManifestTopic default to DefaultGroup,
	// DefaultTopic and DefaultManifestTopic.
	Group         string
	Topic         string
	ManifestTopic string
	// CatalogTopic is the catalog's compacted table topic, written as
	// catalog/songs.parquet and catalog/artists.parquet; empty: no
	// catalog tables.
	CatalogTopic string
	// EpochRows and EpochInterval end an epoch, whichever comes first
	// (defaults DefaultEpochRows and DefaultEpochInterval). A file holds
	// one day of one partition's listens of one epoch.
	EpochRows     int
	EpochInterval time.Duration
	// SessionTimeout and TransactionTimeout of the group member and the
	// transactional producer (default 6 s and 10 s).
	SessionTimeout     time.Duration
	TransactionTimeout time.Duration
	// Logger defaults to discarding; MeterProvider to no metrics.
	Logger        *slog.Logger
	MeterProvider metric.MeterProvider
	// ClientOpts are added to every Kafka client's options (hooks).
	ClientOpts []kgo.Opt

	// hook, when set, is called at the named points of the epoch
	// protocol; an error stops Run at once, as a crash would (tests).
	hook func(point string) error
}

var instanceIDRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$`)

func (c *Config) setDefaults() {
	if c.Group == "" {
		c.Group = DefaultGroup
	}
	if c.Topic == "" {
		c.Topic = DefaultTopic
	}
	if c.ManifestTopic == "" {
		c.ManifestTopic = DefaultManifestTopic
	}
	if c.EpochRows == 0 {
		c.EpochRows = DefaultEpochRows
	}
	if c.EpochInterval == 0 {
		c.EpochInterval = DefaultEpochInterval
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

// Validate reports the first invalid setting.
func (c *Config) Validate() error {
	switch {
	case len(c.Brokers) == 0:
		return errors.New("parquet: no brokers")
	case c.Dir == "":
		return errors.New("parquet: no directory")
	case !instanceIDRE.MatchString(c.InstanceID):
		return fmt.Errorf("parquet: instance id %q: want letters, digits, '.', '_' or '-'", c.InstanceID)
	case c.EpochRows < 1:
		return fmt.Errorf("parquet: epoch rows %d: want 1 or more", c.EpochRows)
	case c.EpochInterval <= 0:
		return fmt.Errorf("parquet: epoch interval %s: want more than 0", c.EpochInterval)
	case c.SessionTimeout <= 0 || c.TransactionTimeout <= 0:
		return errors.New("parquet: session and transaction timeouts must be positive")
	}
	return nil
}
