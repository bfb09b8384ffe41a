package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/kappa-stream/kappa/processors/fans"
	"github.com/kappa-stream/kappa/processors/live"
	"github.com/kappa-stream/kappa/windows"
)

// processors is the processor configuration of a topology version. Every
// instance runs a version with the same one: the configuration a version
// was declared with in the control topic.
type processors struct {
	live     live.Config
	liveOff  bool // --live-windows off: no live windows
	fans     fans.Config
	fanZones bool // --fan-zones
}

// processorFlagNames are the flags processorFlags declares.
var processorFlagNames = []string{"live-windows", "live-grace", "live-retention", "fan-zones", "h3-resolutions", "fan-min-plays"}

// processorFlags declares the flags of the processor configuration.
func processorFlags(fs *flag.FlagSet, p *processors) {
	fs.Func("live-windows", "comma-separated sizes of the live windows kept per song (default 1m), e.g. 10s,1m,1h, or off", func(s string) error {
		p.live.Windows, p.liveOff = nil, s == "off"
		if p.liveOff {
			return nil
		}
		for _, f := range strings.Split(s, ",") {
			d, err := live.ParseWindow(strings.TrimSpace(f))
			if err != nil {
				return err
			}
			p.live.Windows = append(p.live.Windows, d)
		}
		return nil
	})
	fs.BoolVar(&p.fanZones, "fan-zones", false, "count fan zones (fans per artist per H3 cell of their homes); costly: see docs/benchmarks.md")
	fs.Func("h3-resolutions", "comma-separated H3 resolutions fan zones are counted at (default 5,6,7,8,9)", func(s string) error {
		p.fans.Resolutions = nil
		for _, f := range strings.Split(s, ",") {
			r, err := strconv.Atoi(strings.TrimSpace(f))
			if err != nil {
				return fmt.Errorf("resolution %q: want 0…15", f)
			}
			p.fans.Resolutions = append(p.fans.Resolutions, r)
		}
		return nil
	})
	fs.IntVar(&p.fans.MinPlays, "fan-min-plays", fans.DefaultMinPlays, "plays of an artist that make a user a fan of it")
	fs.DurationVar(&p.live.Grace, "live-grace", live.DefaultGrace, "how long after its end a live window still takes late listens before it closes and is emitted")
	fs.DurationVar(&p.live.Retention, "live-retention", windows.DefaultRetention, "how long after its end a live window is kept")
}

// validate checks the configuration; its errors name the flags.
func (p *processors) validate() error {
	if err := p.fans.Validate(); err != nil {
		return fmt.Errorf("--h3-resolutions, --fan-min-plays: %s", strings.TrimPrefix(err.Error(), "fans: "))
	}
	if err := p.live.Validate(); err != nil {
		return fmt.Errorf("--live-windows, --live-grace, --live-retention: %s", strings.TrimPrefix(err.Error(), "live: config: "))
	}
	return nil
}

// liveServed is the live configuration the API serves, nil when off.
func (p *processors) liveServed() *live.Config {
	if p.liveOff {
		return nil
	}
	return &p.live
}

// fansServed is the fan-zones configuration the API serves, nil when off.
func (p *processors) fansServed() *fans.Config {
	if !p.fanZones {
		return nil
	}
	return &p.fans
}

// processorsJSON is the configuration as the control topic keeps it, with
// every default spelled out.
type processorsJSON struct {
	// LiveWindows is empty when live windows are off.
	LiveWindows   []string `json:"live_windows"`
	LiveGrace     string   `json:"live_grace"`
	LiveRetention string   `json:"live_retention"`
	FanZones      bool     `json:"fan_zones"`
	H3Resolutions []int    `json:"h3_resolutions"`
	FanMinPlays   int      `json:"fan_min_plays"`
}

func (p processors) MarshalJSON() ([]byte, error) {
	j := processorsJSON{
		LiveWindows:   []string{},
		LiveGrace:     orDefault(p.live.Grace, live.DefaultGrace).String(),
		LiveRetention: orDefault(p.live.Retention, windows.DefaultRetention).String(),
		FanZones:      p.fanZones,
		H3Resolutions: p.fans.ResolutionsKept(),
		FanMinPlays:   p.fans.MinPlays,
	}
	if j.FanMinPlays == 0 {
		j.FanMinPlays = fans.DefaultMinPlays
	}
	if !p.liveOff {
		for _, d := range p.live.WindowSizes() {
			j.LiveWindows = append(j.LiveWindows, live.FormatWindow(d))
		}
	}
	return json.Marshal(j)
}

func (p *processors) UnmarshalJSON(b []byte) error {
	var j processorsJSON
	if err := json.Unmarshal(b, &j); err != nil {
		return err
	}
	var out processors
	out.liveOff = len(j.LiveWindows) == 0
	for _, w := range j.LiveWindows {
		d, err := live.ParseWindow(w)
		if err != nil {
			return err
		}
		out.live.Windows = append(out.live.Windows, d)
	}
	var err error
	if out.live.Grace, err = time.ParseDuration(j.LiveGrace); err != nil {
		return fmt.Errorf("live_grace: %w", err)
	}
	if out.live.Retention, err = time.ParseDuration(j.LiveRetention); err != nil {
		return fmt.Errorf("live_retention: %w", err)
	}
	out.fanZones = j.FanZones
	out.fans = fans.Config{Resolutions: j.H3Resolutions, MinPlays: j.FanMinPlays}
	if err := out.validate(); err != nil {
		return err
	}
	*p = out
	return nil
}

func orDefault(d, def time.Duration) time.Duration {
	if d == 0 {
		return def
	}
	return d
}

// describe is the configuration in one line, for logs and status.
func (p processors) describe() string {
	b, _ := p.MarshalJSON()
	return string(b)
}
