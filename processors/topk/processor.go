package topk

import (
	"errors"
	"fmt"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kappa-stream/kappa/processors"
	"github.com/kappa-stream/kappa/processors/rollups"
	"github.com/kappa-stream/kappa/state"
	"github.com/kappa-stream/kappa/topology"
)

// Spec is top-K's entry in the registry. Its rank index follows the
// rollups' stage 2 (Spec.Follows): it has no records of its own; the
// artists' songs (--top-k-artist-songs) have.
var Spec = processors.Spec{
	Name:    "topk",
	Formats: []byte{SongFormat},
	Tables:  []byte{tableRank, tableArtistSongs},
	Follows: rollups.Spec.Name,
	Options: func() processors.Options { return &Options{} },
}

// Options are top-K's settings (flags of kappa up, process and replay;
// JSON fields of the version's configuration).
type Options struct {
	On          bool `json:"top_k" flag:"top-k" help:"keep the top-K indexes of artists and songs by plays and streams per week and country (GET /v1/top/…); costs throughput: see docs/benchmarks.md"`
	ArtistSongs bool `json:"top_k_artist_songs" flag:"top-k-artist-songs" help:"with --top-k, also count each artist's songs, for GET /v1/top/songs?artist_id= (another rollups-sized aggregation)"`
}

// Enabled implements processors.Options: with --top-k.
func (o *Options) Enabled() bool { return o.On }

// Validate implements processors.Options.
func (o *Options) Validate() error {
	if o.ArtistSongs && !o.On {
		return errors.New("--top-k-artist-songs needs --top-k")
	}
	return nil
}

// New implements processors.Options.
func (o *Options) New(env processors.Env) (processors.Processor, error) {
	return &job{opts: *o, env: env}, nil
}

// job is top-K of one version.
type job struct {
	opts Options
	env  processors.Env
}

func (j *job) NewStage1(int32, *state.Store) (processors.Stage1, error) {
	if !j.opts.ArtistSongs {
		return nil, nil
	}
	return NewSongCollector(j.env.Repartition, j.env.Partitions), nil
}

func (j *job) NewStage2(_ int32, s *state.Store) (processors.Stage2, error) {
	st := &stage2{index: NewIndexer(s)}
	if j.opts.ArtistSongs {
		st.songs = NewSongTask(s)
	}
	return st, nil
}

// stage2 is top-K's part of a stage-2 partition: the rank index over the
// rollups' rows it follows, and the artists' songs.
type stage2 struct {
	index *Indexer
	songs *SongTask // nil without --top-k-artist-songs
}

// Follow implements processors.Follower: the index is told of every day
// row the rollups' part writes, whose Prepare runs before this one's.
func (s *stage2) Follow(p processors.Stage2) error {
	r, ok := p.(*rollups.Stage2)
	if !ok {
		return fmt.Errorf("topk: follows a %T, not the rollups' stage 2", p)
	}
	r.Observe(s.index)
	return nil
}

func (s *stage2) Process(rec *kgo.Record) error {
	if s.songs == nil {
		return errors.New("topk: an artist-songs record, but --top-k-artist-songs is off in this version")
	}
	return s.songs.Process(rec)
}

func (s *stage2) Prepare(out *topology.Output) error {
	if err := s.index.Prepare(out); err != nil {
		return err
	}
	if s.songs != nil {
		return s.songs.Prepare(out)
	}
	return nil
}

// Served says what the top endpoints of a version can answer: on, when p
// is a version's top-K processor (of Spec.Name; nil: off), with the
// stage-2 partition count (a query reads them all) and whether the
// artists' songs are counted.
func Served(p processors.Processor) (on bool, partitions int, artistSongs bool) {
	j, ok := p.(*job)
	if !ok {
		return false, 0, false
	}
	return true, int(j.env.Partitions), j.opts.ArtistSongs
}
