// Package dp keeps the contribution-bounded tables the partner API
// releases differentially private aggregates from (serve's /partner/v1).
// The privacy unit is a user's day: the tables here are exact counts of
// bounded contributions, and the noise is added when a day is released,
// never here.
//
// Bounding, in stage 1 (keyed by user, so one part sees all of a user's
// listens, in log order): per user and UTC day at most MaxItems songs and
// MaxItems artists count, the first ones the log brings (first come,
// first kept, so a replay keeps the same ones), and per kept song at most
// MaxPlays plays. A kept song or artist counts in the country of the
// listen that made it kept. So one user changes, per day,
//
//   - the listeners of at most MaxItems (song, country) cells by 1,
//   - the plays of at most MaxItems (song, country) cells by at most
//     MaxPlays each,
//   - the listeners of at most MaxItems (artist, country) cells by 1,
//   - the fans of at most MaxItems (artist, H3 cell) cells by 1 at each
//     of Resolutions: a kept artist counts in the cell of the user's home
//     as of the listen that made it kept (the location of their listen
//     with the latest time so far, a tie to the later one in the log); a
//     user with no home yet counts in no cell,
//
// and a day's total per song or artist is the sum over countries, with
// the same bounds (Bounds). The per-user, per-day state is kept in the
// stage-1 store (with its changelog, in the transaction of its outputs)
// and deleted Keep after the day closes.
//
// A day closes for a stage-1 partition when its largest event time
// passes the day's end plus Grace: later listens of that day are late and
// not counted. Stage 2 keeps, per stage-1 partition, the largest event
// time it has sent (after every cell it covers), so a stage-2 store knows
// when every partition has closed a day: from then on, the day's cells in
// the store never change (Closed).
//
// Stage-1 store tables (first key byte):
//
//	0x60 day | user  →  the user's kept songs (country, plays) and artists (country)
//	0x63             →  largest event time | oldest day kept
//	0x64 user        →  home: time | lat | lng (float64 bits)
//
// Stage-2 store tables:
//
//	0x61 kind | id | day | country  →  uvarint count
//	0x61 4 | artist | day | cell    →  uvarint count (fans, 8-byte H3 cell)
//	0x62 source partition           →  its largest event time
//
// with ids as 8-byte, days and partitions as 4-byte big-endian integers.
// A song's and an artist's cells are in the stage-2 partition of their
// rollups.PartitionKey, next to their exact day rows.
package dp

import (
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/kappa-stream/kappa/processors"
	"github.com/kappa-stream/kappa/processors/fans"
	"github.com/kappa-stream/kappa/processors/rollups"
	"github.com/kappa-stream/kappa/state"
)

const (
	tableUserDay byte = 0x60
	tableCell    byte = 0x61
	tableSource  byte = 0x62
	tableMeta    byte = 0x63
	tableHome    byte = 0x64

	// Format is the first byte of the records stage 1 sends to stage 2.
	Format byte = 0x44

	msPerDay = 86_400_000
)

// Kind is one of the bounded tables.
type Kind uint8

const (
	// SongListeners counts the users who kept a song on a day.
	SongListeners Kind = 1
	// SongPlays counts the plays of kept songs, at most MaxPlays per user.
	SongPlays Kind = 2
	// ArtistListeners counts the users who kept an artist on a day.
	ArtistListeners Kind = 3
	// ArtistFans counts, per H3 cell of their homes, the users who kept an
	// artist on a day.
	ArtistFans Kind = 4
)

// Entity is whose cells a table keeps (and so the stage-2 partition of
// a cell: that of rollups.PartitionKey(Entity, id)).
func (k Kind) Entity() rollups.Entity {
	if k == ArtistListeners || k == ArtistFans {
		return rollups.Artist
	}
	return rollups.Song
}

func (k Kind) valid() bool { return k >= SongListeners && k <= ArtistFans }

// String names the table ("song-listeners").
func (k Kind) String() string {
	switch k {
	case SongListeners:
		return "song-listeners"
	case SongPlays:
		return "song-plays"
	case ArtistListeners:
		return "artist-listeners"
	case ArtistFans:
		return "artist-fans"
	}
	return fmt.Sprintf("kind-%d", uint8(k))
}

// Defaults of Options.
const (
	DefaultMaxItems = 8
	DefaultMaxPlays = 5
	DefaultGrace    = 10 * time.Minute
	DefaultKeep     = 48 * time.Hour
)

// Spec is the processor's registry entry.
var Spec = processors.Spec{
	Name:        "dp",
	Formats:     []byte{Format},
	Tables:      []byte{tableUserDay, tableCell, tableSource, tableMeta, tableHome},
	Stage1State: true,
	Options: func() processors.Options {
		return &Options{MaxItems: DefaultMaxItems, MaxPlays: DefaultMaxPlays, Resolutions: fans.Resolutions{5, 6, 7, 8, 9},
			Grace: processors.Duration(DefaultGrace), Keep: processors.Duration(DefaultKeep)}
	},
}

// Options are the bounding's settings (flags of kappa up, process and
// replay). A replay with other bounds builds new tables; releases already
// drawn keep the bounds they were drawn with.
type Options struct {
	// On keeps the tables (--dp); the partner API needs them.
	On bool `json:"dp" flag:"dp" help:"keep the contribution-bounded tables of the partner API (/partner/v1)"`
	// MaxItems is K: the songs and the artists a user counts in per day.
	MaxItems int `json:"dp_max_items" flag:"dp-max-items" help:"partner API: songs and artists a user counts in per day (first come, first kept)"`
	// MaxPlays is C: the plays a user counts for per kept song per day.
	MaxPlays int `json:"dp_max_plays" flag:"dp-max-plays" help:"partner API: plays a user counts for per song per day"`
	// Grace is how long after its end a day still takes listens.
	Grace processors.Duration `json:"dp_grace" flag:"dp-grace" help:"partner API: how long after its end (event time) a day still takes listens before it closes"`
	// Keep is how long after a day closes its per-user state is kept.
	Keep processors.Duration `json:"dp_keep" flag:"dp-keep" help:"partner API: how long the per-user bounding state of a closed day is kept"`
	// Resolutions are the H3 resolutions fan cells are counted at.
	Resolutions fans.Resolutions `json:"dp_h3_resolutions" flag:"dp-h3-resolutions" help:"partner API: comma-separated H3 resolutions fan cells are counted at"`
}

// Enabled implements processors.Options.
func (o *Options) Enabled() bool { return o.On }

// Validate implements processors.Options.
func (o *Options) Validate() error {
	var errs []error
	if o.MaxItems < 1 || o.MaxItems > 1000 {
		errs = append(errs, fmt.Errorf("dp: max items %d: want 1 … 1000", o.MaxItems))
	}
	if o.MaxPlays < 1 || o.MaxPlays > 1000 {
		errs = append(errs, fmt.Errorf("dp: max plays %d: want 1 … 1000", o.MaxPlays))
	}
	if o.Grace < 0 || o.Keep < 0 {
		errs = append(errs, errors.New("dp: negative grace or keep"))
	}
	for i, r := range o.Resolutions {
		if r < 0 || r > 15 || (i > 0 && r <= o.Resolutions[i-1]) {
			errs = append(errs, fmt.Errorf("dp: H3 resolutions %v: want increasing, 0 … 15", []int(o.Resolutions)))
			break
		}
	}
	return errors.Join(errs...)
}

// New implements processors.Options.
func (o *Options) New(env processors.Env) (processors.Processor, error) {
	if err := o.Validate(); err != nil {
		return nil, err
	}
	return &job{cfg: Config{MaxItems: o.MaxItems, MaxPlays: o.MaxPlays, Grace: time.Duration(o.Grace),
		Keep: time.Duration(o.Keep), Resolutions: slices.Clone(o.Resolutions), Sources: env.Partitions}, env: env}, nil
}

// Config is the bounding of a version, as its read side needs it.
type Config struct {
	// MaxItems (K) and MaxPlays (C) are the bounds; Grace and Keep as
	// in Options.
	MaxItems, MaxPlays int
	Grace, Keep        time.Duration
	// Resolutions are the H3 resolutions of the fan cells.
	Resolutions []int
	// Sources is the number of stage-1 partitions: a day is closed once
	// every one of them has passed it.
	Sources int32
}

// Bounds are the sensitivities of one day of a table: one user changes
// at most L0 of its cells, each by at most LInf.
func (c Config) Bounds(k Kind) (l0, lInf int64) {
	if k == SongPlays {
		return int64(c.MaxItems), int64(c.MaxPlays)
	}
	return int64(c.MaxItems), 1
}

// Closed reports whether day is closed at watermark wm (Watermark): its
// end plus the grace is at or before wm.
func (c Config) Closed(wm int64, day int32) bool {
	return (int64(day)+1)*msPerDay+c.Grace.Milliseconds() <= wm
}

// ConfigOf is the configuration of a dp processor, nil when p is not one
// (or nil: the processor is off).
func ConfigOf(p processors.Processor) *Config {
	if j, ok := p.(*job); ok {
		return &j.cfg
	}
	return nil
}

type job struct {
	cfg Config
	env processors.Env
}

func (j *job) NewStage1(p int32, s *state.Store) (processors.Stage1, error) {
	return NewStage1(j.cfg, p, s, j.env.Repartition, j.env.Partitions)
}

func (j *job) NewStage2(_ int32, s *state.Store) (processors.Stage2, error) {
	return NewStage2(s), nil
}
