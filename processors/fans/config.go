// Package fans keeps, per user, what the fan-zone counts need: the user's
// home location, how often the user played each artist, and what stage 2
// counts of the user (the published home, its H3 cell at each configured
// resolution, the artists counted). [Processor.Publish] turns the
// difference into deltas to the number of fans per (artist, resolution,
// cell).
//
// This is stage 1 of the fan-zones job (DESIGN.md): pure per-user logic and
// its codecs, no I/O. Definitions (CONTRACT.md):
//   - a user's home is the location of their listen with the latest ts
//     that has one; a tie on ts goes to the later listen in the log;
//   - a fan of an artist is a user with at least MinPlays plays of it;
//   - the home cell at resolution r is h3.LatLngToCell(home, r), computed
//     at each resolution (not as a parent of the finest cell).
//
// INVARIANT: after any sequence of listens ([Processor.Apply]) and
// publications, once every user is published, summing the deltas
// [Processor.Publish] returned gives, for each (artist, res, cell), the
// number of users who are fans of artist and whose home cell at res is
// cell; a user Apply did not report pending since their last publication
// publishes nothing. Stage 2 keeps these sums (stages.go: [Stage2]), so
// that its counts are exact.
//
// Privacy: a user's location is personal data. Only per-cell counts leave
// this package: [User] keeps the location in unexported fields, prints
// without it, and no error message carries it. The binary form of a User
// does hold it; it belongs in the stage-1 store and its changelog only.
package fans

import (
	"errors"
	"fmt"
	"math"
	"time"
)

// defaultResolutions are the H3 resolutions of Config.Resolutions when it
// is empty.
var defaultResolutions = [...]int{5, 6, 7, 8, 9}

const (
	// DefaultMinPlays is Config.MinPlays when it is 0.
	DefaultMinPlays = 1
	// MaxResolution is the finest H3 resolution.
	MaxResolution = 15
	// MaxMinPlays is the largest valid Config.MinPlays.
	MaxMinPlays = math.MaxInt32
	// DefaultDelay is the default of Config.Delay (the flag's).
	DefaultDelay = 5 * time.Second
)

// Config is the operator configuration of the fan-zones job (flags
// --h3-resolutions, --fan-min-plays and --fan-delay). It is fixed for a topology
// version: the per-user state records play counts only up to MinPlays and
// the cells at the configured resolutions, so a change takes a replay into
// a new version.
type Config struct {
	// Resolutions are the H3 resolutions fans are counted at, each
	// 0 … 15, strictly increasing. Empty means 5, 6, 7, 8, 9.
	Resolutions []int
	// MinPlays is the number of plays of an artist that make a user a fan,
	// 1 … MaxMinPlays. 0 means DefaultMinPlays.
	MinPlays int
	// Delay is how long a user's changed home or new fandom waits before
	// stage 2 counts it (the fan-zone answers lag by at most this); its
	// changes of that time are counted once, as their net. 0 publishes at
	// the end of each commit interval; negative is invalid. Unlike the
	// fields above, it does not change the counts, only their lag.
	Delay time.Duration
}

// Validate reports whether c is a valid configuration, with zero values
// standing for their defaults. Its errors start with "fans: ".
func (c *Config) Validate() error {
	for i, r := range c.Resolutions {
		if r < 0 || r > MaxResolution {
			return fmt.Errorf("fans: resolution %d out of range 0 … %d", r, MaxResolution)
		}
		if i > 0 && r <= c.Resolutions[i-1] {
			return errors.New("fans: resolutions not sorted and distinct")
		}
	}
	if c.MinPlays < 0 || c.MinPlays > MaxMinPlays {
		return fmt.Errorf("fans: min plays %d out of range 1 … %d", c.MinPlays, MaxMinPlays)
	}
	if c.Delay < 0 {
		return fmt.Errorf("fans: negative delay %s", c.Delay)
	}
	return nil
}

// ResolutionsKept are the resolutions fans are counted at: Resolutions,
// or the default.
func (c Config) ResolutionsKept() []int { return c.withDefaults().Resolutions }

// withDefaults returns c with its zero values replaced by the defaults.
func (c Config) withDefaults() Config {
	if len(c.Resolutions) == 0 {
		c.Resolutions = defaultResolutions[:]
	}
	c.Resolutions = append([]int(nil), c.Resolutions...) // NB: the caller keeps its slice
	if c.MinPlays == 0 {
		c.MinPlays = DefaultMinPlays
	}
	return c
}
