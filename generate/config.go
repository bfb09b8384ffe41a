package generate

import (
	"fmt"
	"math"
	"time"
)

// Defaults applied by New (and assumed by Validate) to zero fields of a
// Config.
const (
	DefaultSeed              = 1
	DefaultUsers             = 100_000
	DefaultArtists           = 5_000
	DefaultSongs             = 200_000
	DefaultSpan              = 7 * 24 * time.Hour
	DefaultEvents            = 1_000_000
	DefaultLiveDropListeners = 50_000
)

// Limits on Config values, so that ids stay small, the catalogue fits in
// memory and every timestamp is a four-digit year after the Unix epoch.
const (
	MaxUsers   = 1 << 31
	MaxSongs   = 1<<31 - 1
	MaxArtists = 1_000_000
	MaxEvents  = 1 << 40
	// MinLiveDropSpan is the smallest Span that leaves room for the
	// one-minute live-drop window in the middle of the stream.
	MinLiveDropSpan = 3 * time.Minute
)

// DefaultStart is the event time of the first event when Config.Start is
// zero: 2026-03-01T00:00:00Z.
var DefaultStart = time.Date(2026, time.March, 1, 0, 0, 0, 0, time.UTC)

// maxEnd bounds Start+Span so that local times with any offset stay within
// four-digit years.
var maxEnd = time.Date(9000, time.January, 1, 0, 0, 0, 0, time.UTC)

// Config configures a Generator. The zero value of each field means its
// documented default; Validate reports bad values. A Config is a plain
// value: New copies it.
type Config struct {
	// Seed seeds every random choice; the same Config gives the same byte
	// stream. Default 1 (so 0 and 1 give the same stream).
	Seed int64
	// Users is the number of distinct users, with ids 1…Users. Default
	// 100_000, at most MaxUsers.
	Users int
	// Artists is the number of artists, with ids 1…Artists. Default 5_000,
	// at most MaxArtists and at most Songs.
	Artists int
	// Songs is the size of the catalogue, with ids 1…Songs; each song is
	// owned by exactly one artist and artists own a Zipf-ish number of
	// songs (each at least one). Default 200_000, at most MaxSongs.
	Songs int
	// Start is the event time of the first event (truncated to the
	// millisecond; timestamps written without a fraction are truncated to
	// the second). Default DefaultStart. It must not be before the Unix
	// epoch, and Start+Span must be before the year 9000.
	Start time.Time
	// Span is the event-time range [Start, Start+Span) the first Events
	// events spread over, roughly increasing with light disorder (events
	// arrive up to a few minutes late, never before Start). Default 7
	// days, at least one millisecond.
	Span time.Duration
	// Events is the number of events the stream intends to produce; it
	// sets the pace of event time and places the live drop. Next keeps
	// producing after that (for continuous load), with event time moving
	// on at the same pace and no further drop. Default 1_000_000, at most
	// MaxEvents.
	Events int
	// MalformedRate is the fraction of lines that are malformed on
	// purpose, 0…1. Default 0 (kappa generate passes 0.005 when asked).
	MalformedRate float64
	// LiveDrop adds a live-drop burst: one new song (id Songs+1) by one of
	// the most popular artists, started once each by LiveDropListeners
	// distinct users within one minute of event time (a UTC minute, the
	// one holding Start+Span/2), interleaved with normal traffic. Those
	// starts are never malformed. After the minute some of the listeners
	// replay the song. Generator.Drop describes the burst. Requires
	// Span ≥ MinLiveDropSpan. Default false.
	LiveDrop bool
	// LiveDropListeners is the number of distinct users who start the
	// live-drop song in its minute. Default 50_000; capped at Users and at
	// Events/2 (the burst takes at most about 5/8 of the stream).
	LiveDropListeners int
}

// withDefaults returns c with every zero field set to its default.
func (c Config) withDefaults() Config {
	if c.Seed == 0 {
		c.Seed = DefaultSeed
	}
	if c.Users == 0 {
		c.Users = DefaultUsers
	}
	if c.Artists == 0 {
		c.Artists = DefaultArtists
	}
	if c.Songs == 0 {
		c.Songs = DefaultSongs
	}
	if c.Start.IsZero() {
		c.Start = DefaultStart
	}
	if c.Span == 0 {
		c.Span = DefaultSpan
	}
	if c.Events == 0 {
		c.Events = DefaultEvents
	}
	if c.LiveDropListeners == 0 {
		c.LiveDropListeners = DefaultLiveDropListeners
	}
	return c
}

// Validate reports the first bad value of c, after applying defaults to
// its zero fields. Errors are prefixed "generate: ".
func (c Config) Validate() error {
	c = c.withDefaults()
	switch {
	case c.Users < 0 || c.Users > MaxUsers:
		return fmt.Errorf("generate: Users %d out of range 1…%d", c.Users, MaxUsers)
	case c.Songs < 0 || c.Songs > MaxSongs:
		return fmt.Errorf("generate: Songs %d out of range 1…%d", c.Songs, MaxSongs)
	case c.Artists < 0 || c.Artists > MaxArtists:
		return fmt.Errorf("generate: Artists %d out of range 1…%d", c.Artists, MaxArtists)
	case c.Artists > c.Songs:
		return fmt.Errorf("generate: Artists %d exceeds Songs %d (every artist owns a song)", c.Artists, c.Songs)
	case c.Events < 0 || c.Events > MaxEvents:
		return fmt.Errorf("generate: Events %d out of range 1…%d", c.Events, MaxEvents)
	case c.Start.Before(time.Unix(0, 0)):
		return fmt.Errorf("generate: Start %s before the Unix epoch", c.Start.Format(time.RFC3339))
	case c.Span < time.Millisecond:
		return fmt.Errorf("generate: Span %s shorter than 1ms", c.Span)
	case !c.Start.Add(c.Span).Before(maxEnd):
		return fmt.Errorf("generate: Start+Span %s beyond year 8999", c.Start.Add(c.Span).Format(time.RFC3339))
	case math.IsNaN(c.MalformedRate) || c.MalformedRate < 0 || c.MalformedRate > 1:
		return fmt.Errorf("generate: MalformedRate %g out of range 0…1", c.MalformedRate)
	case c.LiveDropListeners < 0:
		return fmt.Errorf("generate: LiveDropListeners %d negative", c.LiveDropListeners)
	case c.LiveDrop && c.Span < MinLiveDropSpan:
		return fmt.Errorf("generate: Span %s too short for a live drop (at least %s)", c.Span, MinLiveDropSpan)
	}
	return nil
}
