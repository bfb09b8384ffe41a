// Package processors is the contract between kappa's runtime and its
// processors, the jobs that turn listens into stores: day rollups, live
// windows, fan zones, similar users and songs, … Each processor is a
// package under processors/ and one entry in the registry
// (processors/registry); the runtime (package replay's Runtime) owns the
// loop, the transactions and the stores, and a processor only says what
// to do with a listen and with a repartitioned record.
//
// Every topology version runs two consumer groups over all of its
// processors:
//
//   - stage 1, on a partition of listens (keyed by user): the runtime
//     decodes and validates each listen once and hands it to every
//     processor's [Stage1] part (Add). Every commit interval each part's
//     Prepare sends what it gathered, pre-aggregated, to the repartition
//     topic through its [topology.Packer], and puts its per-user state in
//     the partition's stage-1 store (only processors that declare
//     Spec.Stage1State keep one);
//   - stage 2, on a partition of the repartition topic (keyed by song,
//     artist, cell, bucket, …): each record goes to the processor whose
//     format byte (Spec.Formats) it starts with, whose [Stage2] part
//     keeps its tables (Spec.Tables) in the partition's store.
//
// Both stages commit their outputs, store changes (as changelog records)
// and input offsets in one Kafka transaction per interval, so every part
// sees each input exactly once, in log order; after an aborted
// transaction the runtime makes the parts anew from the store. A part may
// cache its store in memory between Prepares, never hold state the store
// lacks.
//
// A processor's settings are one Options struct: its fields' json tags
// name them in the version's configuration (the control topic), their
// flag and help tags declare the flags of kappa up, process and replay
// (see [Config]).
package processors

import (
	"log/slog"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"go.opentelemetry.io/otel/metric"

	"github.com/kappa-stream/kappa/events"
	"github.com/kappa-stream/kappa/state"
	"github.com/kappa-stream/kappa/topology"
)

// Stage1 is a processor's part of stage 1 on one partition of listens.
// The runtime calls its methods from one goroutine.
type Stage1 interface {
	// Add takes one valid listen. An error is a store failure (never the
	// listen's fault): it fails the interval's transaction.
	Add(l *events.Listen) error
	// Prepare moves what was added since the last Prepare into out:
	// records for the repartition topic and changes to the stage-1
	// store. idle is set when no listen came in the interval before
	// (nothing is left to net pending changes with).
	Prepare(out *topology.Output, idle bool) error
	// NextDue is when the part has work due without a listen (zero:
	// none); the runtime prepares it then (topology.Timer).
	NextDue() time.Time
}

// Stage2 is a processor's part of stage 2 on one partition of the
// repartition topic. The runtime calls its methods from one goroutine.
type Stage2 interface {
	// Process takes one record whose first byte is one of the
	// processor's formats. An error rejects it: the record goes to the
	// dead letters and the part must be left as if it never came.
	Process(rec *kgo.Record) error
	// Prepare moves the changes since the last Prepare into out.
	Prepare(out *topology.Output) error
}

// Env is what a topology version gives its processors.
type Env struct {
	// Version is the version's name, e.g. "v2".
	Version string
	// Repartition is the topic stage 1 sends to and stage 2 reads.
	Repartition string
	// Partitions is the partition count of listens, of the repartition
	// topic and of every per-version topic.
	Partitions int32
	// Topic names a per-version topic of the processor's (Topics).
	Topic func(suffix string) string
	// RecentMiB is the memory stage 2 may keep of rows it wrote lately,
	// for the whole version (split among its partitions).
	RecentMiB int
	// SimilarCacheMiB is the memory of the similarity indexes' read
	// cache, for the whole version.
	SimilarCacheMiB int
	// Logger and MeterProvider are the instance's.
	Logger        *slog.Logger
	MeterProvider metric.MeterProvider
}

// Processor is a processor configured for one topology version.
type Processor interface {
	// NewStage1 makes the part of stage-1 partition p, over its store
	// (nil unless Spec.Stage1State). nil, nil: the processor has no
	// stage-1 part.
	NewStage1(p int32, s *state.Store) (Stage1, error)
	// NewStage2 makes the part of stage-2 partition p over its store.
	NewStage2(p int32, s *state.Store) (Stage2, error)
}

// Options are a processor's settings: a pointer to a struct whose
// exported fields carry json tags (and flag and help tags for the ones
// with a flag; a field's type is bool, int, time.Duration or implements
// encoding.TextMarshaler and TextUnmarshaler).
type Options interface {
	// Enabled reports whether a version with these options runs the
	// processor.
	Enabled() bool
	// Validate reports the first bad setting.
	Validate() error
	// New makes the processor of a version.
	New(env Env) (Processor, error)
}

// Spec describes a processor to the registry.
type Spec struct {
	// Name names the processor in logs, status and errors.
	Name string
	// Formats are the first bytes of the repartition records its stage
	// 1 sends (and its stage 2 reads); no two processors share one. A
	// processor without records of its own (one that only follows
	// another's stage 2) has none.
	Formats []byte
	// Tables are the first bytes of the keys it keeps in stores; no two
	// processors share one (0x00 and 0x01 are the store's own).
	Tables []byte
	// Stage1State says that its stage-1 part keeps per-user state: the
	// stage-1 partitions then get stores with a changelog.
	Stage1State bool
	// Follows names a processor earlier in the registry whose stage-2
	// part this one's follows (Follower), such as an index over its
	// rows; empty: none.
	Follows string
	// Options returns new options holding the defaults.
	Options func() Options
}

// Follower is implemented by the Stage2 part of a processor whose
// Spec.Follows names another: before the part's first record the runtime
// hands it the followed processor's part of the same partition, made for
// the same transaction, whose Prepare runs before its own. So a part can
// keep data derived from another's writes (an index over its rows) in
// the same transaction, store batch and changelog.
type Follower interface {
	Follow(Stage2) error
}

// Topics is implemented by a Processor that writes per-version topics
// of its own besides the repartition topic.
type Topics interface {
	// Topics are the topics to provision (Name is a suffix, made
	// per-version by Env.Topic) and send to from stage 2.
	Topics() []topology.TopicSpec
}

// Stages is implemented by a Processor that has consumer groups of its
// own, on other input topics, that send to the repartition topic (such
// as the song features of the similarity indexes).
type Stages interface {
	Stages() []Stage
}

// Stage is a processor's own consumer group on an input topic.
type Stage struct {
	// Name names the group and the store directory of the version
	// ("features": kappa.v1.features, <data>/v1/features).
	Name string
	// Topic is the input topic; DLQ receives its invalid records.
	Topic, DLQ string
	// StoreOpts are extra options of its stores.
	StoreOpts []state.Opt
	// NewTask makes the task of an input partition over its store.
	NewTask func(p int32, s *state.Store) (topology.Task, error)
}

// StoreOpts is implemented by a Processor that needs options on the
// stage-2 stores (a read cache).
type StoreOpts interface {
	Stage2StoreOpts() []state.Opt
}

// Pending is implemented by a Processor whose stage-1 part holds users
// back for a while before publishing them; status reports them.
type Pending interface {
	// Pending reads from a stage-1 store how many users wait and since
	// when the oldest does (zero: none), as of its last commit.
	Pending(s *state.Store) (n int64, oldest time.Time, err error)
}
