package live

import (
	"encoding/json"
	"strconv"
	"strings"
	"time"

	"github.com/kappa-stream/kappa/processors"
	"github.com/kappa-stream/kappa/state"
	"github.com/kappa-stream/kappa/topology"
	"github.com/kappa-stream/kappa/windows"
)

// Spec is the live windows' entry in the registry.
var Spec = processors.Spec{
	Name:    "live",
	Formats: []byte{Format},
	Tables:  []byte{tableRow, tableStream, tableMeta},
	// NB: the stage-1 parts keep their partition's stream time.
	Stage1State: true,
	Options: func() processors.Options {
		return &Options{
			Windows:   Windows{DefaultWindow},
			Grace:     processors.Duration(DefaultGrace),
			Retention: processors.Duration(windows.DefaultRetention),
		}
	},
}

// FinalTopic is the suffix of the per-version topic the closed windows
// are written to (kappa.<version>.live-final).
const FinalTopic = "live-final"

// finalRetention is how long the final windows stay on their topic for
// downstream readers.
const finalRetention = 7 * 24 * time.Hour

// Options are the live windows' settings (flags of kappa up, process and
// replay; JSON fields of the version's configuration).
type Options struct {
	Windows   Windows             `json:"live_windows" flag:"live-windows" help:"comma-separated sizes of the live windows kept per song, e.g. 10s,1m,1h, or off"`
	Grace     processors.Duration `json:"live_grace" flag:"live-grace" help:"how long after its end a live window still takes late listens before it closes and is emitted"`
	Retention processors.Duration `json:"live_retention" flag:"live-retention" help:"how long after its end a live window is kept"`
}

// Config is the stages' configuration of o.
func (o *Options) Config() Config {
	return Config{Windows: o.Windows, Grace: time.Duration(o.Grace), Retention: time.Duration(o.Retention)}
}

// Enabled implements processors.Options: unless --live-windows off.
func (o *Options) Enabled() bool { return len(o.Windows) > 0 }

// Validate implements processors.Options.
func (o *Options) Validate() error {
	if !o.Enabled() {
		return nil
	}
	return o.Config().Validate()
}

// New implements processors.Options.
func (o *Options) New(env processors.Env) (processors.Processor, error) {
	m, err := NewMetrics(env.MeterProvider)
	if err != nil {
		return nil, err
	}
	return &processor{cfg: o.Config(), env: env, metrics: m}, nil
}

// Windows are window sizes, written "10s,1m,1h" in a flag ("off": none)
// and as a list of such strings in JSON.
type Windows []time.Duration

// MarshalText implements encoding.TextMarshaler.
func (ws Windows) MarshalText() ([]byte, error) {
	if len(ws) == 0 {
		return []byte("off"), nil
	}
	s := make([]string, len(ws))
	for i, w := range ws {
		s[i] = FormatWindow(w)
	}
	return []byte(strings.Join(s, ",")), nil
}

// UnmarshalText implements encoding.TextUnmarshaler.
func (ws *Windows) UnmarshalText(b []byte) error {
	out := Windows{}
	if string(b) != "off" {
		for _, f := range strings.Split(string(b), ",") {
			d, err := ParseWindow(strings.TrimSpace(f))
			if err != nil {
				return err
			}
			out = append(out, d)
		}
	}
	*ws = out
	return nil
}

// MarshalJSON writes the sizes as strings; none (off) is [].
func (ws Windows) MarshalJSON() ([]byte, error) {
	s := make([]string, len(ws))
	for i, w := range ws {
		s[i] = FormatWindow(w)
	}
	return json.Marshal(s)
}

// UnmarshalJSON reads a list of sizes; [] is off.
func (ws *Windows) UnmarshalJSON(b []byte) error {
	var s []string
	if err := json.Unmarshal(b, &s); err != nil {
		return err
	}
	out := Windows{}
	for _, f := range s {
		d, err := ParseWindow(f)
		if err != nil {
			return err
		}
		out = append(out, d)
	}
	*ws = out
	return nil
}

type processor struct {
	cfg     Config
	env     processors.Env
	metrics *Metrics
}

func (p *processor) NewStage1(part int32, s *state.Store) (processors.Stage1, error) {
	return NewStage1(p.cfg, part, s, p.env.Repartition, p.env.Partitions, p.metrics)
}

func (p *processor) NewStage2(_ int32, s *state.Store) (processors.Stage2, error) {
	return NewStage2(p.cfg, s, p.env.Partitions, p.env.Topic(FinalTopic), p.metrics)
}

// Topics implements processors.Topics: the final windows' topic.
func (p *processor) Topics() []topology.TopicSpec {
	return []topology.TopicSpec{{Name: FinalTopic, Partitions: p.env.Partitions,
		Configs: map[string]string{"retention.ms": strconv.FormatInt(finalRetention.Milliseconds(), 10)}}}
}

// ConfigOf is the configuration of the live windows p runs (a version's
// processor of Spec.Name), nil when p is not one (they are off).
func ConfigOf(p processors.Processor) *Config {
	if j, ok := p.(*processor); ok {
		return &j.cfg
	}
	return nil
}
