package windows

import (
	"cmp"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"time"
)

// DefaultRetention is how long after its end a window's state is kept
// when Config.Retention is zero.
const DefaultRetention = 48 * time.Hour

// Config configures a Tracker. Zero fields take the documented defaults.
type Config struct {
	// Window says how events are assigned to windows (required).
	Window Spec
	// AllowedLateness is subtracted from the largest event time of a
	// partition to give its watermark: how far out of order a partition's
	// events may come (default 0: the watermark is the largest event time).
	AllowedLateness time.Duration
	// Grace is how long a window stays open after the watermark passes its
	// end: it closes when the watermark reaches End + Grace (default 0).
	Grace time.Duration
	// Retention is how long after its end a window's state is kept: a
	// window expires when the watermark reaches End + Retention, and the
	// caller deletes its state then (default DefaultRetention, 48 h). It is
	// at least Grace, plus Gap for session windows, so that an expired
	// window can get no more events.
	Retention time.Duration
	// IdleTimeout is the processing time (see Tracker.Tick) without input
	// after which a partition is idle: it stops holding the task watermark
	// back until it delivers input again (default 0: partitions are never
	// idle). Off by default because it makes the closing of windows depend
	// on processing speed: replaying the log with a timeout set can close
	// windows at other points, and so judge other events late, than the
	// first run did.
	IdleTimeout time.Duration
}

func (c *Config) retention() time.Duration {
	if c.Retention == 0 {
		return DefaultRetention
	}
	return c.Retention
}

// Validate reports every invalid setting, or nil.
func (c *Config) Validate() error {
	var errs []error
	if err := c.Window.Validate(); err != nil {
		errs = append(errs, err)
	}
	for _, d := range []struct {
		name string
		d    time.Duration
	}{
		{"allowed lateness", c.AllowedLateness},
		{"grace", c.Grace},
		{"retention", c.Retention},
		{"idle timeout", c.IdleTimeout},
	} {
		switch {
		case d.d < 0:
			errs = append(errs, fmt.Errorf("negative %s %s", d.name, d.d))
		case d.d%time.Millisecond != 0:
			errs = append(errs, fmt.Errorf("%s %s: not a whole number of milliseconds", d.name, d.d))
		}
	}
	if c.Retention >= 0 && c.Grace >= 0 {
		need, what := c.Grace, "grace"
		if c.Window.Kind == KindSession && c.Window.Gap > 0 {
			need, what = c.Grace+c.Window.Gap, "grace + gap"
		}
		if r := c.retention(); r < need {
			errs = append(errs, fmt.Errorf("retention %s: below %s %s", r, what, need))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("windows: config: %w", err)
	}
	return nil
}

// Reason says why an event was not accepted into every window it belongs to.
type Reason uint8

const (
	// OnTime: the event was accepted into all its windows.
	OnTime Reason = iota
	// Late: at least one of the event's windows had closed (the watermark
	// had reached its End + Grace, or, for a session, the event falls in or
	// would extend a closed session). Decision.Missed lists them.
	Late
	// OutOfRange: the event time is outside [MinTime, MaxTime]; the event
	// is in no window and does not move the watermark.
	OutOfRange
)

// String returns "on time", "late" or "out of range".
func (r Reason) String() string {
	switch r {
	case OnTime:
		return "on time"
	case Late:
		return "late"
	case OutOfRange:
		return "out of range"
	}
	return "reason(" + strconv.Itoa(int(r)) + ")"
}

// Decision is what the Tracker decided for one event. Its slices belong to
// the Tracker and are valid until its next call.
type Decision struct {
	// Accepted are the windows to add the event to, ascending. For
	// session windows it is the one session the event belongs to after
	// merging.
	Accepted []Window
	// Missed are the windows the event belongs to but that had closed
	// (Reason is Late), ascending: a prefix of the hopping windows, or for
	// session windows the one closed session the event falls in or would
	// have extended (else its own [ts, ts+Gap), if that had closed).
	Missed []Window
	// Merged (session windows) are the key's earlier sessions that the
	// event joined into Accepted[0]: the caller combines their state into
	// Accepted[0] and deletes it. None of them equals Accepted[0].
	Merged []Window
	// Reason is OnTime, Late or OutOfRange.
	Reason Reason
	// Watermark is the task watermark the event was judged against.
	Watermark int64
}

// Pane is one window of state that closes or expires. For session windows
// it is one key's session. For tumbling and hopping windows Key is the zero
// K and the Pane stands for every key's state in Window: the Tracker does
// not track keys of time windows, the caller's store does (a store keyed by
// window, then key, finds them with one prefix scan).
type Pane[K cmp.Ordered] struct {
	Key    K
	Window Window
}

// Step is what Drain returns: the panes that closed and expired since the
// previous Drain.
type Step[K cmp.Ordered] struct {
	// Watermark is the task watermark of this step.
	Watermark int64
	// Closed are the panes whose End + Grace the watermark reached, each
	// returned once, ordered by End, then Start, then Key. Their content is
	// final: every event accepted into them came before.
	Closed []Pane[K]
	// Expired are the closed panes whose End + Retention the watermark
	// reached, in the same order; the caller deletes their state. A pane
	// can close and expire in the same Step.
	Expired []Pane[K]
}

// Stats are the Tracker's counters since it was made, for metrics. Late and
// OutOfRange events are also reported one by one in their Decision.
type Stats struct {
	Events     uint64 // events observed
	Late       uint64 // events that missed at least one window (Reason Late)
	OutOfRange uint64 // events refused for their time (Reason OutOfRange)
	Closed     uint64 // panes returned as closed
	Expired    uint64 // panes returned as expired
}

// keyState holds the sessions of one key.
type keyState struct {
	// open sessions, ascending and disjoint; a session still here may be
	// due (its End + Grace reached) but not yet drained.
	open []Window
	// closed sessions not yet expired, ascending.
	closed []Window
}

// Tracker assigns events to windows and decides, from per-partition
// watermarks, when windows close and expire. It holds no window contents:
// the caller keeps per-window state (counters, sketches) in its store,
// adds each event to the windows of its Decision, emits a pane's state
// when Drain reports it closed and deletes it when Drain reports it
// expired.
//
// Every decision is a function of the sequence of calls alone (of Tick's
// processing times only when Config.IdleTimeout is set): replaying the
// same calls from the same state, for example from a snapshot saved with
// MarshalBinary together with the input offsets, gives the same decisions
// and the same closes. An event is judged against the watermark when it
// is observed, not when panes are drained, so draining more or less often
// changes when panes are reported, never what they contain.
//
// Keys (K) matter to session windows only; a float NaN key is not
// supported. Memory: the open windows that have had events and the closed
// ones not yet expired; for session windows, per key. A Tracker is not safe
// for concurrent use.
type Tracker[K cmp.Ordered] struct {
	spec      Spec
	size, adv int64 // ms, time windows
	gap       int64 // ms, sessions
	grace     int64
	retention int64
	wms       watermarks

	// Time windows: the starts of the windows that have accepted an event
	// and have not been drained as closed, ascending.
	open []int64
	// Session windows.
	keys map[K]*keyState
	due  dueHeap[K] // when open sessions come due; see observeSession

	// retained are the closed panes not yet expired, ascending by End.
	retained []Pane[K]
	stats    Stats

	buf, merged []Window // scratch behind Decision
}

// New returns a Tracker for cfg, or the error of cfg.Validate.
func New[K cmp.Ordered](cfg Config) (*Tracker[K], error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	t := &Tracker[K]{
		spec:      cfg.Window,
		size:      ms(cfg.Window.Size),
		adv:       ms(cfg.Window.Advance),
		gap:       ms(cfg.Window.Gap),
		grace:     ms(cfg.Grace),
		retention: ms(cfg.retention()),
		wms:       newWatermarks(ms(cfg.AllowedLateness), ms(cfg.IdleTimeout)),
	}
	if t.spec.Kind == KindTumbling {
		t.adv = t.size
	}
	if t.spec.Kind == KindSession {
		t.keys = make(map[K]*keyState)
	}
	return t, nil
}

// Watermark returns the task watermark: NoWatermark before any input, then
// the minimum of the partitions' watermarks (see AddPartition and
// IdleTimeout). It never decreases.
func (t *Tracker[K]) Watermark() int64 { return t.wms.task }

// PartitionWatermark returns the watermark of partition p and whether p
// is idle; ok is false if p is unknown.
func (t *Tracker[K]) PartitionWatermark(p int32) (wm int64, idle, ok bool) {
	i, ok := t.wms.find(p)
	if !ok {
		return NoWatermark, false, false
	}
	return t.wms.parts[i].wm, t.wms.isIdle(&t.wms.parts[i]), true
}

// AddPartition declares input partition p (on assignment), so that it
// holds the task watermark back until it delivers input or goes idle.
// Without it, a partition counts from its first event or watermark, and a
// partition that never delivers never holds the others back; declaring
// every assigned partition first keeps a slow partition's early events
// from being judged late against a faster one.
func (t *Tracker[K]) AddPartition(p int32) { t.wms.add(p) }

// RemovePartition forgets input partition p (on revocation). The task
// watermark does not move back.
func (t *Tracker[K]) RemovePartition(p int32) { t.wms.remove(p) }

// ObserveWatermark raises the watermark of partition p to wm, for inputs
// that carry watermarks (an upstream task's progress, a heartbeat). A wm
// below the partition's watermark is ignored. The task watermark moves
// only as far as the other partitions allow. math.MaxInt64 marks the end
// of a partition's input.
func (t *Tracker[K]) ObserveWatermark(p int32, wm int64) { t.wms.observe(p, wm) }

// Tick sets the processing time, in Unix milliseconds, that the idle
// timeout is measured in (the Tracker never reads the clock). Call it
// before each batch of input, e.g. with time.Now().UnixMilli(). A time
// before the previous one is ignored. Without IdleTimeout it has no
// effect on any decision.
func (t *Tracker[K]) Tick(now int64) { t.wms.tick(now) }

// Stats returns the counters.
func (t *Tracker[K]) Stats() Stats { return t.stats }

// Observe decides the windows of an event of the given key and event time
// (Unix ms) from input partition p, then advances p's watermark to
// ts − AllowedLateness. An event is never late for the watermark it moves
// itself. Tumbling and hopping windows ignore key.
func (t *Tracker[K]) Observe(p int32, key K, ts int64) Decision {
	t.stats.Events++
	d := Decision{Watermark: t.wms.task}
	if ts < MinTime || ts > MaxTime {
		t.stats.OutOfRange++
		d.Reason = OutOfRange
		return d
	}
	if t.spec.Kind == KindSession {
		t.observeSession(&d, key, ts)
	} else {
		t.observeTime(&d, ts)
	}
	if d.Reason == Late {
		t.stats.Late++
	}
	t.wms.event(p, ts)
	return d
}

// closed reports whether window w is closed at watermark wm.
func (t *Tracker[K]) closed(w Window, wm int64) bool { return w.End+t.grace <= wm }

func (t *Tracker[K]) observeTime(d *Decision, ts int64) {
	t.buf = t.spec.AppendWindows(t.buf[:0], ts)
	// Windows end in ascending order, so the closed ones are a prefix.
	cut := 0
	for cut < len(t.buf) && t.closed(t.buf[cut], d.Watermark) {
		cut++
	}
	d.Missed, d.Accepted = t.buf[:cut], t.buf[cut:]
	if cut > 0 {
		d.Reason = Late
	}
	if len(d.Accepted) > 0 {
		t.openTime(d.Accepted)
	}
}

// openTime records that the consecutive windows ws have data.
func (t *Tracker[K]) openTime(ws []Window) {
	first, last := ws[0].Start, ws[len(ws)-1].Start
	i, found := slices.BinarySearch(t.open, first)
	// Fast path: t.open holds only multiples of adv, so if it has first
	// and last len(ws)-1 places apart, it has every start between.
	if found && i+len(ws)-1 < len(t.open) && t.open[i+len(ws)-1] == last {
		return
	}
	for _, w := range ws {
		j, found := slices.BinarySearch(t.open[i:], w.Start)
		i += j
		if !found {
			t.open = slices.Insert(t.open, i, w.Start)
		}
	}
}

func (t *Tracker[K]) observeSession(d *Decision, key K, ts int64) {
	cand := Window{ts, ts + t.gap}
	t.buf = append(t.buf[:0], cand)
	t.merged = t.merged[:0]
	late := func(w Window) {
		t.buf[0] = w
		d.Missed, d.Reason = t.buf[:1], Late
	}
	if t.closed(cand, d.Watermark) {
		late(cand)
		return
	}
	ks := t.keys[key]
	if ks == nil {
		ks = &keyState{}
		t.keys[key] = ks
	}
	for _, c := range ks.closed {
		if c.overlaps(cand) {
			late(c)
			return
		}
	}
	// The open sessions that overlap cand are open[i:j].
	i, _ := slices.BinarySearchFunc(ks.open, cand.Start, func(w Window, start int64) int {
		return cmp.Compare(w.End, start+1) // first w with w.End > cand.Start
	})
	j := i
	for j < len(ks.open) && ks.open[j].Start < cand.End {
		j++
	}
	merged := cand
	for _, s := range ks.open[i:j] {
		if t.closed(s, d.Watermark) {
			late(s)
			return
		}
		merged.Start, merged.End = min(merged.Start, s.Start), max(merged.End, s.End)
	}
	t.buf[0] = merged
	d.Accepted = t.buf[:1]
	if j-i == 1 && ks.open[i] == merged {
		return // inside an existing session
	}
	for _, s := range ks.open[i:j] {
		t.merged = append(t.merged, s)
	}
	if len(t.merged) > 0 {
		d.Merged = t.merged
	}
	extended := j > i && merged.End > ks.open[j-1].End
	ks.open = slices.Replace(ks.open, i, j, merged)
	// INVARIANT: every open session L has an entry e in t.due with
	// e ≤ L (comparePanes) and e.Window.Start in L, so that e comes due no
	// later than L and leads Drain to L. A session extended to a later End
	// keeps the entry of the session it grew from (e ≤ old < merged); a
	// new session, or one that only grew to an earlier Start, gets its own.
	if !extended {
		t.due.push(Pane[K]{Key: key, Window: merged})
	}
}

// Drain returns the panes that closed and expired since the previous
// Drain, at the current task watermark. Each pane closes once and expires
// once: calling Drain again without a watermark advance returns nothing.
// The slices are the caller's.
func (t *Tracker[K]) Drain() Step[K] {
	st := Step[K]{Watermark: t.wms.task}
	wm := st.Watermark
	if t.spec.Kind == KindSession {
		for len(t.due) > 0 && t.closed(t.due[0].Window, wm) {
			p := t.due.pop()
			ks := t.keys[p.Key]
			if ks == nil {
				continue // a duplicate entry of a session closed already
			}
			// The open session holding the entry's start: the entry's own
			// session, or the one it was merged into.
			i, _ := slices.BinarySearchFunc(ks.open, p.Window.Start, func(w Window, start int64) int {
				return cmp.Compare(w.End, start+1) // first w with w.End > start
			})
			if i == len(ks.open) || ks.open[i].Start > p.Window.Start {
				continue // a duplicate entry of a session closed already
			}
			if w := ks.open[i]; w != p.Window {
				// The session grew since the entry was made: it comes
				// due at its own End, and no earlier than the entry.
				t.due.push(Pane[K]{Key: p.Key, Window: w})
				continue
			}
			ks.open = slices.Delete(ks.open, i, i+1)
			ks.closed = append(ks.closed, p.Window)
			st.Closed = append(st.Closed, p)
		}
	} else {
		n := 0
		for n < len(t.open) && t.open[n]+t.size+t.grace <= wm {
			st.Closed = append(st.Closed, Pane[K]{Window: Window{t.open[n], t.open[n] + t.size}})
			n++
		}
		t.open = slices.Delete(t.open, 0, n)
	}
	t.retained = append(t.retained, st.Closed...)
	n := 0
	for n < len(t.retained) && t.retained[n].Window.End+t.retention <= wm {
		p := t.retained[n]
		if ks := t.keys[p.Key]; ks != nil {
			if i, found := slices.BinarySearchFunc(ks.closed, p.Window, cmpWindow); found {
				ks.closed = slices.Delete(ks.closed, i, i+1)
			}
			if len(ks.open) == 0 && len(ks.closed) == 0 {
				delete(t.keys, p.Key)
			}
		}
		n++
	}
	if n > 0 {
		st.Expired = slices.Clone(t.retained[:n])
		t.retained = slices.Delete(t.retained, 0, n)
	}
	t.stats.Closed += uint64(len(st.Closed))
	t.stats.Expired += uint64(len(st.Expired))
	return st
}

func cmpWindow(a, b Window) int {
	if c := cmp.Compare(a.Start, b.Start); c != 0 {
		return c
	}
	return cmp.Compare(a.End, b.End)
}

// comparePanes orders panes by End, then Start, then Key: the order they
// close and expire in.
func comparePanes[K cmp.Ordered](a, b Pane[K]) int {
	if c := cmp.Compare(a.Window.End, b.Window.End); c != 0 {
		return c
	}
	if c := cmp.Compare(a.Window.Start, b.Window.Start); c != 0 {
		return c
	}
	return cmp.Compare(a.Key, b.Key)
}

// dueHeap is a min-heap of session panes by comparePanes.
type dueHeap[K cmp.Ordered] []Pane[K]

func (h *dueHeap[K]) push(p Pane[K]) {
	*h = append(*h, p)
	s := *h
	for i := len(s) - 1; i > 0; {
		parent := (i - 1) / 2
		if comparePanes(s[i], s[parent]) >= 0 {
			break
		}
		s[i], s[parent] = s[parent], s[i]
		i = parent
	}
}

func (h *dueHeap[K]) pop() Pane[K] {
	s := *h
	top := s[0]
	last := len(s) - 1
	s[0] = s[last]
	s = s[:last]
	for i := 0; ; {
		c := 2*i + 1
		if c >= len(s) {
			break
		}
		if c+1 < len(s) && comparePanes(s[c+1], s[c]) < 0 {
			c++
		}
		if comparePanes(s[c], s[i]) >= 0 {
			break
		}
		s[i], s[c] = s[c], s[i]
		i = c
	}
	*h = s
	return top
}
