package windows

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// Event-time bounds. Timestamps are Unix milliseconds; an event outside
// [MinTime, MaxTime] is refused with reason OutOfRange. The bounds (about
// ±146 million years) leave room to add any window size, lateness, grace
// and retention without overflowing an int64.
const (
	MinTime int64 = -1 << 62
	MaxTime int64 = 1<<62 - 1
)

// NoWatermark is the watermark before any input: every window is still open.
const NoWatermark int64 = math.MinInt64

// MaxWindowsPerEvent bounds the number of hopping windows one event belongs
// to (Size/Advance rounded up). A larger ratio is almost always a unit
// mistake (1h windows advancing by 1ms put each event in 3.6 million
// windows), and each window is state the caller writes.
const MaxWindowsPerEvent = 4096

// Window is the half-open event-time interval [Start, End), in Unix
// milliseconds. An event at exactly End belongs to the next window.
type Window struct {
	Start int64
	End   int64
}

// Contains reports whether ts falls in [w.Start, w.End).
func (w Window) Contains(ts int64) bool { return w.Start <= ts && ts < w.End }

// overlaps reports whether w and o share at least one millisecond.
// Windows that only touch ([0,10) and [10,20)) do not overlap.
func (w Window) overlaps(o Window) bool { return w.Start < o.End && o.Start < w.End }

// String returns "[start,end)" in milliseconds.
func (w Window) String() string {
	return "[" + strconv.FormatInt(w.Start, 10) + "," + strconv.FormatInt(w.End, 10) + ")"
}

// Kind is the kind of window a Spec describes.
type Kind uint8

const (
	// KindTumbling windows have a fixed size and do not overlap.
	KindTumbling Kind = iota + 1
	// KindHopping windows have a fixed size and start every Advance; they
	// overlap when Advance < Size.
	KindHopping
	// KindSession windows are per key and end after Gap without events.
	KindSession
)

// String returns "tumbling", "hopping" or "session".
func (k Kind) String() string {
	switch k {
	case KindTumbling:
		return "tumbling"
	case KindHopping:
		return "hopping"
	case KindSession:
		return "session"
	}
	return "kind(" + strconv.Itoa(int(k)) + ")"
}

// Spec describes how events are assigned to windows. Build one with
// Tumbling, Hopping, Session or ParseSpec; the zero Spec is invalid.
//
// Tumbling and hopping windows are aligned to the Unix epoch: a window
// starts at a multiple of Advance (Size for tumbling), so every instance,
// and every replay, assigns an event to the same windows. Durations must be
// whole milliseconds.
type Spec struct {
	// Kind is the kind of window (required).
	Kind Kind
	// Size is the length of tumbling and hopping windows (at least 1ms).
	Size time.Duration
	// Advance is the distance between the starts of consecutive hopping
	// windows: 1ms ≤ Advance ≤ Size, and Size/Advance rounded up at most
	// MaxWindowsPerEvent. Zero for other kinds.
	Advance time.Duration
	// Gap is the inactivity that ends a session (at least 1ms). Zero for
	// other kinds.
	Gap time.Duration
}

// Tumbling returns the spec of back-to-back windows of the given size:
// [0, size), [size, 2·size), …
func Tumbling(size time.Duration) Spec { return Spec{Kind: KindTumbling, Size: size} }

// Hopping returns the spec of windows of the given size starting every
// advance; an event belongs to about size/advance of them.
func Hopping(size, advance time.Duration) Spec {
	return Spec{Kind: KindHopping, Size: size, Advance: advance}
}

// Session returns the spec of per-key session windows: a key's events less
// than gap apart share a session [first event, last event + gap).
func Session(gap time.Duration) Spec { return Spec{Kind: KindSession, Gap: gap} }

// Validate reports why s cannot be used, or nil.
func (s Spec) Validate() error {
	var errs []error
	msDuration := func(name string, d time.Duration) {
		switch {
		case d < time.Millisecond:
			errs = append(errs, fmt.Errorf("%s %s: below 1ms", name, d))
		case d%time.Millisecond != 0:
			errs = append(errs, fmt.Errorf("%s %s: not a whole number of milliseconds", name, d))
		}
	}
	zero := func(name string, d time.Duration) {
		if d != 0 {
			errs = append(errs, fmt.Errorf("%s %s: not used by %s windows", name, d, s.Kind))
		}
	}
	switch s.Kind {
	case KindTumbling:
		msDuration("size", s.Size)
		zero("advance", s.Advance)
		zero("gap", s.Gap)
	case KindHopping:
		msDuration("size", s.Size)
		msDuration("advance", s.Advance)
		zero("gap", s.Gap)
		if len(errs) == 0 {
			if s.Advance > s.Size {
				errs = append(errs, fmt.Errorf("advance %s: above size %s", s.Advance, s.Size))
			} else if n := windowsPerEvent(s.Size, s.Advance); n > MaxWindowsPerEvent {
				errs = append(errs, fmt.Errorf("size %s / advance %s: %d windows per event, above %d",
					s.Size, s.Advance, n, MaxWindowsPerEvent))
			}
		}
	case KindSession:
		msDuration("gap", s.Gap)
		zero("size", s.Size)
		zero("advance", s.Advance)
	default:
		errs = append(errs, fmt.Errorf("unknown kind %d", s.Kind))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("windows: invalid window %s: %w", s, err)
	}
	return nil
}

// windowsPerEvent returns the most hopping windows an event belongs to:
// size/advance rounded up (without overflowing for huge sizes).
func windowsPerEvent(size, advance time.Duration) int64 {
	n := int64(size / advance)
	if size%advance != 0 {
		n++
	}
	return n
}

// ms returns a duration in milliseconds.
func ms(d time.Duration) int64 { return int64(d / time.Millisecond) }

// Assign returns the windows that contain ts, in ascending order of Start:
// one tumbling window, about Size/Advance hopping windows, or the session
// [ts, ts+Gap) that the event opens before any merge (merging needs the
// key's other sessions: see Tracker).
//
// s must be valid and ts within [MinTime, MaxTime]; Assign panics otherwise.
func (s Spec) Assign(ts int64) []Window { return s.AppendWindows(nil, ts) }

// AppendWindows appends the windows Assign returns to dst and returns the
// extended slice, so that a caller can reuse one buffer.
func (s Spec) AppendWindows(dst []Window, ts int64) []Window {
	if ts < MinTime || ts > MaxTime {
		panic(fmt.Sprintf("windows: time %d out of range", ts))
	}
	switch s.Kind {
	case KindTumbling:
		if size := ms(s.Size); size > 0 && s.Advance == 0 {
			start := floorDiv(ts, size) * size
			return append(dst, Window{start, start + size})
		}
	case KindHopping:
		if size, adv := ms(s.Size), ms(s.Advance); adv > 0 && adv <= size {
			// Starts are the multiples of adv in (ts-size, ts].
			last := floorDiv(ts, adv) * adv
			for start := floorDiv(ts-size, adv)*adv + adv; start <= last; start += adv {
				dst = append(dst, Window{start, start + size})
			}
			return dst
		}
	case KindSession:
		if gap := ms(s.Gap); gap > 0 {
			return append(dst, Window{ts, ts + gap})
		}
	}
	panic(fmt.Sprintf("windows: Assign with invalid window %s", s))
}

// floorDiv divides rounding towards negative infinity, so that windows of
// negative times are aligned like those of positive ones. REQUIRES: d > 0.
func floorDiv(n, d int64) int64 {
	q := n / d
	if n%d < 0 {
		q--
	}
	return q
}

// String returns the spec in the form ParseSpec reads: "tumbling:1m",
// "hopping:1h/10s" or "session:30m".
func (s Spec) String() string {
	switch s.Kind {
	case KindTumbling:
		return "tumbling:" + formatDuration(s.Size)
	case KindHopping:
		return "hopping:" + formatDuration(s.Size) + "/" + formatDuration(s.Advance)
	case KindSession:
		return "session:" + formatDuration(s.Gap)
	}
	return s.Kind.String()
}

// ParseSpec reads a spec written as "tumbling:SIZE", "hopping:SIZE/ADVANCE",
// "session:GAP", or a bare "SIZE" for tumbling windows (the form of the
// live endpoint's window parameter, e.g. "1m"). Durations are Go durations
// ("10s", "1h30m"). The spec returned is valid.
func ParseSpec(text string) (Spec, error) {
	kind, arg, found := strings.Cut(text, ":")
	if !found {
		kind, arg = "tumbling", text
	}
	var s Spec
	var err error
	switch kind {
	case "tumbling":
		s.Kind = KindTumbling
		s.Size, err = time.ParseDuration(arg)
	case "hopping":
		s.Kind = KindHopping
		size, advance, ok := strings.Cut(arg, "/")
		if !ok {
			return Spec{}, fmt.Errorf("windows: parse window %q: hopping needs SIZE/ADVANCE", text)
		}
		if s.Size, err = time.ParseDuration(size); err == nil {
			s.Advance, err = time.ParseDuration(advance)
		}
	case "session":
		s.Kind = KindSession
		s.Gap, err = time.ParseDuration(arg)
	default:
		return Spec{}, fmt.Errorf("windows: parse window %q: unknown kind %q", text, kind)
	}
	if err != nil {
		return Spec{}, fmt.Errorf("windows: parse window %q: %w", text, err)
	}
	if err := s.Validate(); err != nil {
		return Spec{}, err
	}
	return s, nil
}

// formatDuration writes d like time.Duration.String without zero units:
// "1m" rather than "1m0s", "1h30m" rather than "1h30m0s".
func formatDuration(d time.Duration) string {
	if d <= 0 || d%time.Second != 0 {
		return d.String()
	}
	var b strings.Builder
	if h := d / time.Hour; h > 0 {
		b.WriteString(strconv.FormatInt(int64(h), 10) + "h")
		d -= h * time.Hour
	}
	if m := d / time.Minute; m > 0 {
		b.WriteString(strconv.FormatInt(int64(m), 10) + "m")
		d -= m * time.Minute
	}
	if d > 0 {
		b.WriteString(strconv.FormatInt(int64(d/time.Second), 10) + "s")
	}
	return b.String()
}
