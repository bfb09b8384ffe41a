package main

import (
	"cmp"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/kappa-stream/kappa/lsh"
	"github.com/kappa-stream/kappa/processors/fans"
	"github.com/kappa-stream/kappa/processors/live"
	"github.com/kappa-stream/kappa/processors/similar"
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
	similar  similar.Config
	simOn    bool // --similar
	topK     bool // --top-k
	topSongs bool // --top-k-artist-songs
}

// processorFlagNames are the flags processorFlags declares.
var processorFlagNames = []string{"live-windows", "live-grace", "live-retention", "fan-zones", "h3-resolutions", "fan-min-plays", "fan-delay",
	"similar", "minhash-bands", "minhash-rows", "hyperplane-tables", "hyperplane-bits", "feature-dim", "similar-bucket-cap", "similar-candidates", "similar-rerank", "minhash-min-bands", "similar-delay", "top-k", "top-k-artist-songs"}

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
	fs.DurationVar(&p.fans.Delay, "fan-delay", fans.DefaultDelay, "how long a user's moved home or new fandom waits before fan-zone answers count it (its changes of that time are counted once, as their net)")
	fs.DurationVar(&p.live.Grace, "live-grace", live.DefaultGrace, "how long after its end a live window still takes late listens before it closes and is emitted")
	fs.DurationVar(&p.live.Retention, "live-retention", windows.DefaultRetention, "how long after its end a live window is kept")
	fs.BoolVar(&p.simOn, "similar", false, "keep the LSH indexes of similar users (MinHash over the artists they play) and similar songs (hyperplanes over "+topicFeatures+"); costs throughput: see docs/similarity.md")
	fs.IntVar(&p.similar.MinHash.Bands, "minhash-bands", lsh.DefaultBands, "MinHash bands b of similar users (buckets per user)")
	fs.IntVar(&p.similar.MinHash.Rows, "minhash-rows", lsh.DefaultRows, "MinHash rows r per band of similar users")
	fs.IntVar(&p.similar.Hyperplanes.Tables, "hyperplane-tables", lsh.DefaultTables, "hyperplane tables L of similar songs (buckets per song)")
	fs.IntVar(&p.similar.Hyperplanes.Bits, "hyperplane-bits", lsh.DefaultBits, "hyperplanes k per table of similar songs")
	fs.IntVar(&p.similar.Hyperplanes.Dim, "feature-dim", lsh.DefaultDim, "dimension of the song feature vectors")
	fs.IntVar(&p.similar.Limits.PerBucket, "similar-bucket-cap", lsh.DefaultPerBucket, "most members a similarity query reads from one bucket (oversized buckets)")
	fs.IntVar(&p.similar.Limits.Candidates, "similar-candidates", lsh.DefaultCandidates, "most candidates a similarity query collects from its buckets")
	fs.IntVar(&p.similar.Limits.Rerank, "similar-rerank", lsh.DefaultRerank, "most candidates a similarity query scores by their signature or vector: those sharing the most buckets")
	fs.IntVar(&p.similar.MinBands, "minhash-min-bands", similar.DefaultMinBands, "fewest bands a candidate user shares with the query user to be scored, while k candidates share that many (1: every candidate)")
	fs.BoolVar(&p.topK, "top-k", false, "keep the top-K indexes of artists and songs per week and country (GET /v1/top/…); costs throughput: see docs/benchmarks.md")
	fs.BoolVar(&p.topSongs, "top-k-artist-songs", false, "with --top-k, also count each artist's songs (GET /v1/top/songs?artist_id=); costs throughput: see docs/benchmarks.md")
	fs.DurationVar(&p.similar.Delay, "similar-delay", similar.DefaultDelay, "how long a user's changed signature waits before similar-users answers see it (its changes of that time move the user's buckets once)")
}

// validate checks the configuration; its errors name the flags.
func (p *processors) validate() error {
	if err := p.fans.Validate(); err != nil {
		return fmt.Errorf("--h3-resolutions, --fan-min-plays, --fan-delay: %s", strings.TrimPrefix(err.Error(), "fans: "))
	}
	if err := p.live.Validate(); err != nil {
		return fmt.Errorf("--live-windows, --live-grace, --live-retention: %s", strings.TrimPrefix(err.Error(), "live: config: "))
	}
	if p.topSongs && !p.topK {
		return errors.New("--top-k-artist-songs needs --top-k")
	}
	if err := p.similar.Validate(); err != nil {
		return fmt.Errorf("--minhash-*, --hyperplane-*, --feature-dim, --similar-*: %s", strings.ReplaceAll(err.Error(), "\n", "; "))
	}
	return nil
}

// similarIndex is the similarity indexes' hashing, nil when off.
func (p *processors) similarIndex() (*similar.Index, error) {
	if !p.simOn {
		return nil, nil
	}
	return similar.New(p.similar)
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
	// FanDelay is empty in a version declared before it existed: the
	// default.
	FanDelay string `json:"fan_delay"`
	Similar  bool   `json:"similar"`
	// The hashing and limits of the similarity indexes; 0 (a version
	// declared before they existed): the defaults.
	MinHashBands      int `json:"minhash_bands"`
	MinHashRows       int `json:"minhash_rows"`
	HyperplaneTables  int `json:"hyperplane_tables"`
	HyperplaneBits    int `json:"hyperplane_bits"`
	FeatureDim        int `json:"feature_dim"`
	SimilarBucketCap  int `json:"similar_bucket_cap"`
	SimilarCandidates int `json:"similar_candidates"`
	SimilarRerank     int `json:"similar_rerank"`
	MinHashMinBands   int `json:"minhash_min_bands"`
	// SimilarDelay is empty in a version declared before it existed:
	// the default.
	SimilarDelay string `json:"similar_delay"`
	// TopK and TopKArtistSongs are false in a version declared before
	// they existed: off.
	TopK            bool `json:"top_k"`
	TopKArtistSongs bool `json:"top_k_artist_songs"`
}

func (p processors) MarshalJSON() ([]byte, error) {
	j := processorsJSON{
		LiveWindows:   []string{},
		LiveGrace:     orDefault(p.live.Grace, live.DefaultGrace).String(),
		LiveRetention: orDefault(p.live.Retention, windows.DefaultRetention).String(),
		FanZones:      p.fanZones,
		H3Resolutions: p.fans.ResolutionsKept(),
		FanMinPlays:   p.fans.MinPlays,
		FanDelay:      p.fans.Delay.String(),
		Similar:       p.simOn,
		// NB: the zero values of an lsh configuration are its defaults.
		MinHashBands:      cmp.Or(p.similar.MinHash.Bands, lsh.DefaultBands),
		MinHashRows:       cmp.Or(p.similar.MinHash.Rows, lsh.DefaultRows),
		HyperplaneTables:  cmp.Or(p.similar.Hyperplanes.Tables, lsh.DefaultTables),
		HyperplaneBits:    cmp.Or(p.similar.Hyperplanes.Bits, lsh.DefaultBits),
		FeatureDim:        cmp.Or(p.similar.Hyperplanes.Dim, lsh.DefaultDim),
		SimilarBucketCap:  cmp.Or(p.similar.Limits.PerBucket, lsh.DefaultPerBucket),
		SimilarCandidates: cmp.Or(p.similar.Limits.Candidates, lsh.DefaultCandidates),
		SimilarRerank:     cmp.Or(p.similar.Limits.Rerank, lsh.DefaultRerank),
		MinHashMinBands:   cmp.Or(p.similar.MinBands, similar.DefaultMinBands),
		SimilarDelay:      p.similar.Delay.String(),
		TopK:              p.topK,
		TopKArtistSongs:   p.topSongs,
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
	out.fans = fans.Config{Resolutions: j.H3Resolutions, MinPlays: j.FanMinPlays, Delay: fans.DefaultDelay}
	if j.FanDelay != "" {
		if out.fans.Delay, err = time.ParseDuration(j.FanDelay); err != nil {
			return fmt.Errorf("fan_delay: %w", err)
		}
	}
	out.simOn = j.Similar
	out.topK, out.topSongs = j.TopK, j.TopKArtistSongs
	out.similar = similar.Config{
		MinHash:     lsh.MinHashConfig{Bands: j.MinHashBands, Rows: j.MinHashRows},
		Hyperplanes: lsh.HyperplaneConfig{Dim: j.FeatureDim, Tables: j.HyperplaneTables, Bits: j.HyperplaneBits},
		Limits:      lsh.Limits{PerBucket: j.SimilarBucketCap, Candidates: j.SimilarCandidates, Rerank: j.SimilarRerank},
		MinBands:    j.MinHashMinBands,
		Delay:       similar.DefaultDelay,
	}
	if j.SimilarDelay != "" {
		if out.similar.Delay, err = time.ParseDuration(j.SimilarDelay); err != nil {
			return fmt.Errorf("similar_delay: %w", err)
		}
	}
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
