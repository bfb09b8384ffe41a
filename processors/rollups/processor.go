package rollups

import (
	"github.com/kappa-stream/kappa/processors"
	"github.com/kappa-stream/kappa/state"
)

// Spec is the rollups' entry in the registry. The rollups are always on.
var Spec = processors.Spec{
	Name:    "rollups",
	Formats: []byte{deltaFormat},
	Tables:  []byte{tableSong, tableArtist},
	Options: func() processors.Options { return &Options{} },
}

// Options are the rollups' settings: none, they are always on.
type Options struct{}

// Enabled implements processors.Options: always.
func (*Options) Enabled() bool { return true }

// Validate implements processors.Options.
func (*Options) Validate() error { return nil }

// New implements processors.Options.
func (*Options) New(env processors.Env) (processors.Processor, error) {
	return &processor{env: env}, nil
}

type processor struct{ env processors.Env }

func (p *processor) NewStage1(int32, *state.Store) (processors.Stage1, error) {
	return NewStage1(p.env.Repartition, p.env.Partitions), nil
}

// NewStage2 keeps the day rows the part wrote lately in a Recent of its
// own, the version's RecentMiB split among the partitions (a new one
// after an abort: it caches what the store has).
func (p *processor) NewStage2(_ int32, s *state.Store) (processors.Stage2, error) {
	return NewStage2(s, state.NewRecent((p.env.RecentMiB<<20)/int(p.env.Partitions))), nil
}
