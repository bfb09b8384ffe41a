package catalog

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"path/filepath"
	"sync/atomic"
	"time"

	"github.com/IBM/sarama"
	"github.com/lovoo/goka"
	"github.com/lovoo/goka/codec"
	"github.com/twmb/franz-go/pkg/kgo"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/metric/noop"

	"github.com/kappa-stream/kappa/state"
)

// Topics and the goka group of the catalog. The table topic is goka's
// name for the group's table.
const (
	FeedTopic    = "catalog.feed"
	RejectsTopic = "catalog.rejects"
	Group        = goka.Group("kappa.catalog")
)

// TableTopic is the compacted topic of the versioned table.
var TableTopic = string(goka.GroupTable(Group))

// TopicPartitions is the partition count of the feed and table topics
// (the catalog is small; goka needs them equal).
const TopicPartitions = 4

// Partitioner partitions feed records as goka (sarama) does: FNV-1a of
// the key. Every producer into the feed must use it; franz-go's default
// (murmur2) would send an entity's records to partitions goka does not
// look for it in.
func Partitioner() kgo.Partitioner {
	return kgo.StickyKeyPartitioner(kgo.SaramaCompatHasher(fnv32a))
}

func fnv32a(b []byte) uint32 {
	h := fnv.New32a()
	h.Write(b)
	return h.Sum32()
}

// Rejection is the value of a catalog.rejects record (its key is the feed
// record's): why the record was rejected, where it came from, and the
// record as it was.
type Rejection struct {
	Reason string          `json:"reason"`
	Batch  string          `json:"batch,omitempty"`
	Source string          `json:"source"`
	Record json.RawMessage `json:"record,omitempty"`
	// Raw is the record when it is not JSON.
	Raw string `json:"raw,omitempty"`
}

// entityCodec is the table's codec: an *Entity as JSON.
type entityCodec struct{}

func (entityCodec) Encode(v any) ([]byte, error) { return json.Marshal(v) }

func (entityCodec) Decode(b []byte) (any, error) {
	var e Entity
	if err := json.Unmarshal(b, &e); err != nil {
		return nil, fmt.Errorf("catalog: table value: %w", err)
	}
	return &e, nil
}

// DecodeEntity reads a table value.
func DecodeEntity(b []byte) (*Entity, error) {
	v, err := entityCodec{}.Decode(b)
	if err != nil {
		return nil, err
	}
	return v.(*Entity), nil
}

// Config configures the catalog's goka processor and view.
type Config struct {
	// Brokers are the seed brokers (required).
	Brokers []string
	// Dir holds the local copies of the table (required).
	Dir string
	// Logger receives goka's messages and the rejections at debug level
	// (default: discard).
	Logger *slog.Logger
	// MeterProvider receives kappa.catalog.records, the feed records read
	// by outcome (default: no-op).
	MeterProvider metric.MeterProvider
	// Sarama, when set, adjusts every sarama configuration the goka
	// clients are made with, e.g. for TLS and SASL
	// (kafkasec.Settings.Sarama).
	Sarama func(*sarama.Config)
}

// NewProcessor returns the goka processor group that runs Apply over the
// feed: accepted versions into the table, rejections to RejectsTopic. The
// topics must exist (kappa provisions them with kadm, so they get the
// cluster's replication factor).
func NewProcessor(cfg Config) (*goka.Processor, error) {
	if len(cfg.Brokers) == 0 || cfg.Dir == "" {
		return nil, errors.New("catalog: a processor needs brokers and a directory")
	}
	logger := cfg.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	mp := cfg.MeterProvider
	if mp == nil {
		mp = noop.NewMeterProvider()
	}
	records, err := mp.Meter("github.com/kappa-stream/kappa/catalog").Int64Counter("kappa.catalog.records",
		metric.WithDescription("catalog feed records read, by outcome: accepted, duplicate or rejected"))
	if err != nil {
		return nil, fmt.Errorf("catalog: metrics: %w", err)
	}
	g := goka.DefineGroup(Group,
		goka.Input(goka.Stream(FeedTopic), new(codec.Bytes), func(ctx goka.Context, msg any) {
			process(ctx, msg.([]byte), records, logger)
		}),
		goka.Output(goka.Stream(RejectsTopic), new(codec.Bytes)),
		goka.Persist(entityCodec{}),
	)
	return goka.NewProcessor(cfg.Brokers, g,
		goka.WithStorageBuilder(state.GokaBuilder(filepath.Join(cfg.Dir, "processor"))),
		goka.WithTopicManagerBuilder(goka.TopicManagerBuilderWithConfig(cfg.saramaConfig(), topicManagerConfig())),
		goka.WithConsumerGroupBuilder(goka.ConsumerGroupBuilderWithConfig(cfg.saramaConfig())),
		goka.WithConsumerSaramaBuilder(goka.SaramaConsumerBuilderWithConfig(cfg.saramaConfig())),
		goka.WithProducerBuilder(goka.ProducerBuilderWithConfig(cfg.saramaConfig())),
		goka.WithLogger(gokaLogger{logger}),
	)
}

// Outcome attributes of kappa.catalog.records.
var (
	outcomeAccepted  = metric.WithAttributes(attribute.String("outcome", "accepted"))
	outcomeDuplicate = metric.WithAttributes(attribute.String("outcome", "duplicate"))
	outcomeRejected  = metric.WithAttributes(attribute.String("outcome", "rejected"))
)

func process(ctx goka.Context, value []byte, records metric.Int64Counter, logger *slog.Logger) {
	reject := func(reason, batch string) {
		records.Add(context.Background(), 1, outcomeRejected)
		rej := Rejection{Reason: reason, Batch: batch,
			Source: fmt.Sprintf("%s/%d/%d", ctx.Topic(), ctx.Partition(), ctx.Offset())}
		if json.Valid(value) {
			rej.Record = value
		} else {
			rej.Raw = string(value)
		}
		// NB: a struct of strings and valid JSON always marshals.
		b, _ := json.Marshal(rej)
		ctx.Emit(goka.Stream(RejectsTopic), ctx.Key(), b)
		logger.Debug("catalog record rejected", "key", ctx.Key(), "reason", reason, "source", rej.Source)
	}
	r, err := Decode(value)
	if err != nil {
		reject(err.Error(), "")
		return
	}
	if r.Key() != ctx.Key() {
		reject(fmt.Sprintf("key %q is not the record's entity %s (records are keyed by entity)", ctx.Key(), r.Key()), r.Batch)
		return
	}
	cur, _ := ctx.Value().(*Entity)
	out, outcome, reason := Apply(cur, r, ctx.Timestamp())
	switch outcome {
	case Accepted:
		records.Add(context.Background(), 1, outcomeAccepted)
		ctx.SetValue(out)
	case Duplicate:
		records.Add(context.Background(), 1, outcomeDuplicate)
	case Rejected:
		reject(reason, r.Batch)
	}
}

// View is a read-only copy of the whole table on this instance (goka's
// View: a broadcast join of the catalog into the API's answers). Run
// keeps it up to date; its lookups are safe for concurrent use.
type View struct {
	cfg Config
	// v is the goka view of the current Run; nil before.
	v atomic.Pointer[goka.View]
	// search is the index of names Search uses.
	search viewSearch
}

// NewView returns a view of the table; nothing runs until Run.
func NewView(cfg Config) (*View, error) {
	if len(cfg.Brokers) == 0 || cfg.Dir == "" {
		return nil, errors.New("catalog: a view needs brokers and a directory")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	return &View{cfg: cfg}, nil
}

// Run follows the table with a new goka view until ctx ends (nil) or the
// view fails. Run may be called again after a failure.
func (v *View) Run(ctx context.Context) error {
	gv, err := goka.NewView(v.cfg.Brokers, goka.GroupTable(Group), entityCodec{},
		goka.WithViewStorageBuilder(state.GokaBuilder(filepath.Join(v.cfg.Dir, "view"))),
		goka.WithViewTopicManagerBuilder(goka.TopicManagerBuilderWithConfig(v.cfg.saramaConfig(), topicManagerConfig())),
		goka.WithViewConsumerSaramaBuilder(goka.SaramaConsumerBuilderWithConfig(v.cfg.saramaConfig())),
		goka.WithViewLogger(gokaLogger{v.cfg.Logger}),
	)
	if err != nil {
		return fmt.Errorf("catalog: view: %w", err)
	}
	v.v.Store(gv)
	defer v.v.CompareAndSwap(gv, nil)
	err = gv.Run(ctx)
	if errors.Is(err, context.Canceled) || ctx.Err() != nil {
		return nil
	}
	return err
}

// Current is the current version of the entity key, if the view has
// recovered and the entity has one.
func (v *View) Current(key string) (Version, bool) {
	gv := v.v.Load()
	if gv == nil || !gv.Recovered() {
		return Version{}, false
	}
	got, err := gv.Get(key)
	if err != nil || got == nil {
		return Version{}, false
	}
	return got.(*Entity).Current()
}

// Song is the title and artist name of a song, when the catalog has them
// (an empty artist name when it has the song but not its artist).
func (v *View) Song(id int64) (title, artist string, ok bool) {
	s, ok := v.Current(SongKey(id))
	if !ok {
		return "", "", false
	}
	a, _ := v.Current(ArtistKey(s.ArtistID))
	return s.Title, a.Name, true
}

// Artist is the name of an artist, when the catalog has it.
func (v *View) Artist(id int64) (string, bool) {
	a, ok := v.Current(ArtistKey(id))
	return a.Name, ok
}

// saramaConfig is the sarama configuration of the catalog's goka parts.
// Each goka builder gets its own copy, as the builders set fields of it.
func (cfg Config) saramaConfig() *sarama.Config {
	c := goka.DefaultConfig()
	// NB: goka's default starts a new group at the newest offset, which
	// would skip the feed written before the first instance started.
	c.Consumer.Offsets.Initial = sarama.OffsetOldest
	c.Consumer.Offsets.AutoCommit.Interval = time.Second
	c.Producer.Compression = sarama.CompressionNone
	if cfg.Sarama != nil {
		cfg.Sarama(c)
	}
	return c
}

// topicManagerConfig lets goka create topics with replication factor 1
// should one be missing (one broker); kappa creates them beforehand.
func topicManagerConfig() *goka.TopicManagerConfig {
	tmc := goka.NewTopicManagerConfig()
	tmc.Table.Replication = 1
	tmc.Stream.Replication = 1
	return tmc
}

// gokaLogger sends goka's log lines to slog at debug level.
type gokaLogger struct{ l *slog.Logger }

func (g gokaLogger) Print(args ...any)   { g.l.Debug(fmt.Sprint(args...), "component", "goka") }
func (g gokaLogger) Println(args ...any) { g.l.Debug(fmt.Sprint(args...), "component", "goka") }
func (g gokaLogger) Printf(format string, args ...any) {
	g.l.Debug(fmt.Sprintf(format, args...), "component", "goka")
}
