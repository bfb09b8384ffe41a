// Package live counts, per song, plays and distinct listeners in
// event-time tumbling windows (one minute by default): the counter a
// label watches when tens of thousands of users start a new song within
// the same minute.
//
// Processing is in two stages, like the rollups, and shares their
// partitioning, so a song's windows live in the same stage-2 store as its
// day rows:
//
//   - Stage1 (on a partition of listens) gathers, for one
//     commit interval, the plays and the distinct user ids of each (song,
//     window), and the largest event time its partition has seen. It sends
//     one record per stage-2 partition; a song started by 50,000 users in a
//     minute costs stage 2 one cell per interval and stage-1 partition.
//   - Stage2 (on a partition of the repartition topic) adds the
//     plays to the window's row and the users to its HyperLogLog sketch,
//     which merges partial counts from every stage-1 partition exactly.
//     It keeps a windows.Tracker over the stage-1 partitions' event times:
//     the watermark is the smallest of theirs, a window closes when the
//     watermark passes its end plus the grace period, and a closed window's
//     final counts go to the final topic once (in the transaction that
//     closes it). A listen for a closed window is late: it is counted in
//     the day rollups but not in the window, and in the late metric.
//     Windows are deleted when the watermark passes their end plus the
//     retention (48 h by default).
//
// The stage-2 store tables (first key byte):
//
//	0x20 size | start | song  →  uvarint plays | HyperLogLog sketch
//	0x22 size                 →  watermark | largest event time | tracker snapshot
//
// with song ids, starts and times as 8-byte and window sizes (ms) as
// 4-byte big-endian integers. A window's rows are one range, which closing
// and expiring it read in one scan; a song's newest windows are point
// reads back from the partition's largest event time.
package live

import (
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/kappa-stream/kappa/windows"
)

const (
	tableRow  byte = 0x20
	tableMeta byte = 0x22
)

// Defaults of Config.
const (
	DefaultWindow      = time.Minute
	DefaultGrace       = time.Minute
	DefaultIdleTimeout = 30 * time.Second
)

// Config configures both stages. Both must be given the same Windows.
type Config struct {
	// Windows are the tumbling window sizes kept per song, each a whole
	// number of seconds from 1 s to 24 h (default [DefaultWindow]).
	Windows []time.Duration
	// Grace is how long after its end a window still takes listens: it
	// closes when the watermark (the largest event time every stage-1
	// partition has reached) passes End + Grace (default DefaultGrace).
	Grace time.Duration
	// Retention is how long after its end a window is kept
	// (default windows.DefaultRetention, 48 h).
	Retention time.Duration
	// IdleTimeout is how long a stage-1 partition may send nothing before
	// it stops holding the watermark back (default DefaultIdleTimeout).
	IdleTimeout time.Duration
}

func (c Config) withDefaults() Config {
	if len(c.Windows) == 0 {
		c.Windows = []time.Duration{DefaultWindow}
	}
	if c.Grace == 0 {
		c.Grace = DefaultGrace
	}
	if c.Retention == 0 {
		c.Retention = windows.DefaultRetention
	}
	if c.IdleTimeout == 0 {
		c.IdleTimeout = DefaultIdleTimeout
	}
	return c
}

// WindowSizes are the window sizes kept: Windows, or its default.
func (c Config) WindowSizes() []time.Duration { return c.withDefaults().Windows }

// Validate reports every invalid setting.
func (c Config) Validate() error {
	c = c.withDefaults()
	var errs []error
	for i, w := range c.Windows {
		if w < time.Second || w > 24*time.Hour || w%time.Second != 0 {
			errs = append(errs, fmt.Errorf("window %s: want whole seconds from 1s to 24h", w))
		}
		if slices.Contains(c.Windows[:i], w) {
			errs = append(errs, fmt.Errorf("window %s given twice", w))
		}
	}
	if c.Grace < 0 || c.Retention < 0 || c.IdleTimeout < 0 {
		errs = append(errs, errors.New("negative grace, retention or idle timeout"))
	}
	if c.Retention > 0 && c.Retention < c.Grace {
		errs = append(errs, fmt.Errorf("retention %s below the grace %s", c.Retention, c.Grace))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("live: config: %w", err)
	}
	return nil
}

// FormatWindow writes a window size as the window= query parameter
// spells it: "10s", "1m", "1h", "90s".
func FormatWindow(d time.Duration) string {
	switch {
	case d%time.Hour == 0:
		return fmt.Sprintf("%dh", d/time.Hour)
	case d%time.Minute == 0:
		return fmt.Sprintf("%dm", d/time.Minute)
	}
	return fmt.Sprintf("%ds", d/time.Second)
}

// ParseWindow reads a window size written as a Go duration ("1m", "10s",
// "1h30m").
func ParseWindow(s string) (time.Duration, error) {
	d, err := time.ParseDuration(s)
	if err != nil || d <= 0 {
		return 0, fmt.Errorf("window %q: want a duration such as 10s, 1m or 1h", s)
	}
	return d, nil
}

// userHash spreads a user id over 64 bits for the sketch (SplitMix64's
// finalizer: a bijection, so distinct users never collide).
func userHash(u int64) uint64 {
	z := uint64(u) + 0x9e3779b97f4a7c15
	z = (z ^ z>>30) * 0xbf58476d1ce4e5b9
	z = (z ^ z>>27) * 0x94d049bb133111eb
	return z ^ z>>31
}
