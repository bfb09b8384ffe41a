package similar

import (
	"time"

	"github.com/kappa-stream/kappa/lsh"
	"github.com/kappa-stream/kappa/processors"
	"github.com/kappa-stream/kappa/state"
	"github.com/kappa-stream/kappa/topology"
)

// Spec is the similarity indexes' entry in the registry.
var Spec = processors.Spec{
	Name:        "similar",
	Formats:     []byte{Format},
	Tables:      []byte{tableMember, tableItem, tableArtists, tableVector, tablePublished, tablePending, tableSummary},
	Stage1State: true,
	Options: func() processors.Options {
		return &Options{
			MinHashBands: DefaultBands, MinHashRows: DefaultRows,
			HyperplaneTables: lsh.DefaultTables, HyperplaneBits: lsh.DefaultBits, FeatureDim: lsh.DefaultDim,
			BucketCap: lsh.DefaultPerBucket, Candidates: lsh.DefaultCandidates, Rerank: lsh.DefaultRerank,
			MinBands: DefaultMinBands, Delay: processors.Duration(DefaultDelay),
		}
	},
}

// Topics of the song features (CONTRACT.md), shared by every version.
const (
	// FeaturesTopic holds the songs' feature vectors, keyed by song id.
	FeaturesTopic = "song-features"
	// FeaturesDLQ receives the records of FeaturesTopic that are not
	// valid, with the reason.
	FeaturesDLQ = "song-features.dlq"
)

// Options are the similarity indexes' settings (flags of kappa up,
// process and replay; JSON fields of the version's configuration).
type Options struct {
	On               bool                `json:"similar" flag:"similar" help:"keep the LSH indexes of similar users (MinHash over the artists they play) and similar songs (hyperplanes over song-features); costs throughput: see docs/similarity.md"`
	MinHashBands     int                 `json:"minhash_bands" flag:"minhash-bands" help:"MinHash bands b of similar users (buckets per user)"`
	MinHashRows      int                 `json:"minhash_rows" flag:"minhash-rows" help:"MinHash rows r per band of similar users"`
	HyperplaneTables int                 `json:"hyperplane_tables" flag:"hyperplane-tables" help:"hyperplane tables L of similar songs (buckets per song)"`
	HyperplaneBits   int                 `json:"hyperplane_bits" flag:"hyperplane-bits" help:"hyperplanes k per table of similar songs"`
	FeatureDim       int                 `json:"feature_dim" flag:"feature-dim" help:"dimension of the song feature vectors"`
	BucketCap        int                 `json:"similar_bucket_cap" flag:"similar-bucket-cap" help:"most members a similarity query reads from one bucket (oversized buckets)"`
	Candidates       int                 `json:"similar_candidates" flag:"similar-candidates" help:"most candidates a similarity query collects from its buckets"`
	Rerank           int                 `json:"similar_rerank" flag:"similar-rerank" help:"most candidates a similarity query scores by their artist set or vector: those sharing the most buckets"`
	MinBands         int                 `json:"minhash_min_bands" flag:"minhash-min-bands" help:"fewest bands a candidate user shares with the query user to be scored, while k candidates share that many (1: every candidate)"`
	Delay            processors.Duration `json:"similar_delay" flag:"similar-delay" help:"how long a user's changed signature waits before similar-users answers see it (its changes of that time move the user's buckets once)"`
}

// Config is the indexes' configuration of o.
func (o *Options) Config() Config {
	return Config{
		MinHash:     lsh.MinHashConfig{Bands: o.MinHashBands, Rows: o.MinHashRows},
		Hyperplanes: lsh.HyperplaneConfig{Dim: o.FeatureDim, Tables: o.HyperplaneTables, Bits: o.HyperplaneBits},
		Limits:      lsh.Limits{PerBucket: o.BucketCap, Candidates: o.Candidates, Rerank: o.Rerank},
		MinBands:    o.MinBands,
		Delay:       time.Duration(o.Delay),
	}
}

// Enabled implements processors.Options: with --similar.
func (o *Options) Enabled() bool { return o.On }

// Validate implements processors.Options.
func (o *Options) Validate() error { return o.Config().Validate() }

// New implements processors.Options.
func (o *Options) New(env processors.Env) (processors.Processor, error) {
	ix, err := New(o.Config())
	if err != nil {
		return nil, err
	}
	return &job{ix: ix, env: env}, nil
}

// featuresMemTableSize is the memtable size of a features-stage store:
// a song's vector changes seldom, and small memtables keep these stores
// from holding memory the stages need.
const featuresMemTableSize = 4 << 20

// job is the similarity indexes of one version.
type job struct {
	ix  *Index
	env processors.Env
}

func (j *job) NewStage1(_ int32, s *state.Store) (processors.Stage1, error) {
	return j.ix.NewStage1(s, j.env.Repartition, j.env.Partitions)
}

func (j *job) NewStage2(_ int32, s *state.Store) (processors.Stage2, error) {
	return j.ix.NewStage2(s), nil
}

// Stage2StoreOpts implements processors.StoreOpts: a similarity query
// scores hundreds of items, each read by many queries, so they stay in
// memory, not a Pebble seek each.
func (j *job) Stage2StoreOpts() []state.Opt {
	return []state.Opt{state.WithReadCache((j.env.SimilarCacheMiB<<20)/int(j.env.Partitions), IsItemKey)}
}

// Stages implements processors.Stages: the features stage, on
// song-features.
func (j *job) Stages() []processors.Stage {
	return []processors.Stage{{
		Name: "features", Topic: FeaturesTopic, DLQ: FeaturesDLQ,
		StoreOpts: []state.Opt{state.WithMemTableSize(featuresMemTableSize)},
		NewTask: func(_ int32, s *state.Store) (topology.Task, error) {
			return j.ix.NewFeatureTask(s, j.env.Repartition, j.env.Partitions), nil
		},
	}}
}

// Pending implements processors.Pending.
func (j *job) Pending(s *state.Store) (int64, time.Time, error) { return PendingUsers(s) }

// IndexOf is the hashing of the similarity indexes p runs (a version's
// processor of Spec.Name), nil when p is not one (they are off).
func IndexOf(p processors.Processor) *Index {
	if j, ok := p.(*job); ok {
		return j.ix
	}
	return nil
}
