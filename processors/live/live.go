// Package live counts, per song, plays and distinct listeners in
// event-time tumbling windows (one minute by default): the counter a
// label watches when tens of thousands of users start a new song within
// the same minute.
//
// Processing is in two stages, like the rollups, and shares their
// partitioning, so a song's windows live in the same stage-2 store as its
// day rows:
//
//   - Stage1 (on a partition of listens) decides lateness, in log
//     order: a listen counts in its window w when the partition's stream
//     time as it is read (the largest event time read before it in that
//     partition) is below w's end plus the grace; otherwise it is late:
//     counted in the day rollups and in the late metric, not in the
//     window. It gathers, for one commit interval, the plays and the
//     distinct user ids of each (song, window) that are on time, and sends
//     them with the stream time, one record per stage-2 partition; a song
//     started by 50,000 users in a minute costs stage 2 one cell per
//     interval and stage-1 partition. The stream time is kept in the
//     stage-1 store, so a restart judges the next listen as an unbroken
//     run would have.
//   - Stage2 (on a partition of the repartition topic) adds the
//     plays to the window's row and the users to its HyperLogLog sketch,
//     which merges partial counts from every stage-1 partition exactly.
//     It keeps a windows.Tracker over the stage-1 partitions' stream
//     times: the watermark is the smallest of theirs, and a window closes
//     when the watermark reaches its end plus the grace period, since no
//     partition can then send an on-time listen for it. A closed window's
//     final counts go to the final topic once (in the transaction that
//     closes it). Windows are deleted when the watermark passes their end
//     plus the retention (48 h by default).
//
// So the windows are a pure function of the log: replaying it, however
// it is batched and wherever it is restarted, gives the same windows. A
// listens partition that has no listens holds the watermark back (its
// stream time is unknown): windows stay open, exact, until it has one.
//
// The store tables (first key byte):
//
//	0x20 size | start | song  →  uvarint plays | HyperLogLog sketch        (stage 2)
//	0x21                      →  the partition's stream time               (stage 1)
//	0x22 size                 →  watermark | largest event time | tracker snapshot (stage 2)
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
	tableRow    byte = 0x20
	tableStream byte = 0x21
	tableMeta   byte = 0x22
)

// Defaults of Config.
const (
	DefaultWindow = time.Minute
	DefaultGrace  = time.Minute
)

// Config configures both stages. Both must be given the same Windows.
type Config struct {
	// Windows are the tumbling window sizes kept per song, each a whole
	// number of seconds from 1 s to 24 h (default [DefaultWindow]).
	Windows []time.Duration
	// Grace is how long after its end a window still takes listens: a
	// listen is on time for it while its partition's stream time is below
	// End + Grace, and it closes when every partition's stream time has
	// reached End + Grace (default DefaultGrace).
	Grace time.Duration
	// Retention is how long after its end a window is kept
	// (default windows.DefaultRetention, 48 h).
	Retention time.Duration
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
	return c
}

// MaxLast is the most windows of size a song's answer can hold: those
// the retention keeps (the retention divided by the size) and the one
// holding the largest event time.
func (c Config) MaxLast(size time.Duration) int {
	return int(c.withDefaults().Retention/size) + 1
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
	if c.Grace < 0 || c.Retention < 0 {
		errs = append(errs, errors.New("negative grace or retention"))
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
