package fans

import (
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/kappa-stream/kappa/processors"
	"github.com/kappa-stream/kappa/state"
)

// Spec is the fan zones' entry in the registry.
var Spec = processors.Spec{
	Name:        "fans",
	Formats:     []byte{Format},
	Tables:      []byte{tableUser, tableCount, tablePending, tableSummary},
	Stage1State: true,
	Options: func() processors.Options {
		return &Options{
			Resolutions: slices.Clone(defaultResolutions[:]),
			MinPlays:    DefaultMinPlays,
			Delay:       processors.Duration(DefaultDelay),
		}
	},
}

// Options are the fan zones' settings (flags of kappa up, process and
// replay; JSON fields of the version's configuration).
type Options struct {
	On          bool                `json:"fan_zones" flag:"fan-zones" help:"count fan zones (fans per artist per H3 cell of their homes); costly: see docs/benchmarks.md"`
	Resolutions Resolutions         `json:"h3_resolutions" flag:"h3-resolutions" help:"comma-separated H3 resolutions fan zones are counted at"`
	MinPlays    int                 `json:"fan_min_plays" flag:"fan-min-plays" help:"plays of an artist that make a user a fan of it"`
	Delay       processors.Duration `json:"fan_delay" flag:"fan-delay" help:"how long a user's moved home or new fandom waits before fan-zone answers count it (its changes of that time are counted once, as their net)"`
}

// Config is the stages' configuration of o.
func (o *Options) Config() Config {
	return Config{Resolutions: o.Resolutions, MinPlays: o.MinPlays, Delay: time.Duration(o.Delay)}
}

// Enabled implements processors.Options: with --fan-zones.
func (o *Options) Enabled() bool { return o.On }

// Validate implements processors.Options.
func (o *Options) Validate() error {
	c := o.Config()
	return c.Validate()
}

// New implements processors.Options.
func (o *Options) New(env processors.Env) (processors.Processor, error) {
	p, err := NewProcessor(o.Config())
	if err != nil {
		return nil, err
	}
	return &job{p: p, cfg: o.Config(), env: env}, nil
}

// Resolutions are H3 resolutions, written "5,6,7" in a flag and as a list
// of numbers in JSON.
type Resolutions []int

// MarshalText implements encoding.TextMarshaler.
func (rs Resolutions) MarshalText() ([]byte, error) {
	s := make([]string, len(rs))
	for i, r := range rs {
		s[i] = strconv.Itoa(r)
	}
	return []byte(strings.Join(s, ",")), nil
}

// UnmarshalText implements encoding.TextUnmarshaler.
func (rs *Resolutions) UnmarshalText(b []byte) error {
	var out Resolutions
	for _, f := range strings.Split(string(b), ",") {
		r, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil {
			return fmt.Errorf("resolution %q: want 0…15", f)
		}
		out = append(out, r)
	}
	*rs = out
	return nil
}

// MarshalJSON writes a list of numbers.
func (rs Resolutions) MarshalJSON() ([]byte, error) { return json.Marshal([]int(rs)) }

// UnmarshalJSON reads a list of numbers.
func (rs *Resolutions) UnmarshalJSON(b []byte) error {
	var out []int
	if err := json.Unmarshal(b, &out); err != nil {
		return err
	}
	*rs = out
	return nil
}

// job is the fan zones of one version.
type job struct {
	p   *Processor
	cfg Config
	env processors.Env
}

func (j *job) NewStage1(_ int32, s *state.Store) (processors.Stage1, error) {
	return NewStage1(j.p, s, j.env.Repartition, j.env.Partitions)
}

func (j *job) NewStage2(_ int32, s *state.Store) (processors.Stage2, error) {
	return NewStage2(s), nil
}

// Pending implements processors.Pending.
func (j *job) Pending(s *state.Store) (int64, time.Time, error) { return PendingUsers(s) }

// ConfigOf is the configuration of the fan zones p runs (a version's
// processor of Spec.Name), nil when p is not one (they are off).
func ConfigOf(p processors.Processor) *Config {
	if j, ok := p.(*job); ok {
		return &j.cfg
	}
	return nil
}
