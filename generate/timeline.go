package generate

import (
	"math/bits"
	"time"
)

// Drop describes the live-drop burst of a Generator (see Config.LiveDrop).
type Drop struct {
	// SongID is the new song, Songs+1: no other song id is that large.
	SongID int64
	// ArtistID owns the song; it is one of the most popular artists.
	ArtistID int64
	// Window is the start (UTC, minute-aligned) of the one minute of event
	// time that holds every start of the song: all Listeners plays have
	// ts in [Window, Window+1m), and the song is not played at any other
	// event time before Window+1m.
	Window time.Time
	// Listeners is the number of distinct users who start the song in
	// Window, each exactly once.
	Listeners int
	// FirstEvent and EndEvent bound the burst's event indices (0-based,
	// in Next order): [FirstEvent, EndEvent) holds the Listeners starts,
	// interleaved with normal traffic (about one event in five).
	FirstEvent, EndEvent int
}

// piece maps event indices [i0, …) linearly onto event time: index i
// gets t0 + (i-i0)·dur/n milliseconds.
type piece struct {
	i0     int
	t0     int64
	dur, n uint64
}

func (p piece) at(i int) int64 {
	hi, lo := bits.Mul64(uint64(i-p.i0), p.dur)
	if hi >= p.n { // only far beyond Events; keep going without overflow
		return p.t0 + int64(float64(i-p.i0)*float64(p.dur)/float64(p.n))
	}
	q, _ := bits.Div64(hi, lo, p.n)
	return p.t0 + int64(q)
}

// timeline maps event indices to nominal event times (Unix ms): the
// stream's first Events events cover [Start, Start+Span). With a live
// drop, the events [drop.FirstEvent, drop.EndEvent) cover exactly the
// drop's minute, and the rest split the remaining span at the same pace
// on both sides.
type timeline struct {
	startMs int64
	maxMs   int64 // event time stops here, far beyond Events, to keep four-digit years
	before  piece // indices [0, mid.i0)
	mid     piece // the drop minute, indices [mid.i0, after.i0)
	after   piece // indices [after.i0, …)
}

// newTimeline returns the timeline and, if listeners > 0, the drop's
// index range and minute.
func newTimeline(cfg Config, listeners int) (timeline, int, int, int64) {
	startMs := cfg.Start.UnixMilli()
	maxMs := maxEnd.UnixMilli() - 1
	spanMs := uint64(cfg.Span.Milliseconds())
	endMs := startMs + int64(spanMs)
	events := uint64(cfg.Events)
	if listeners == 0 {
		p := piece{t0: startMs, dur: spanMs, n: events}
		return timeline{startMs: startMs, maxMs: maxMs, after: p}, 0, 0, 0
	}
	burst := listeners + listeners/4
	pre := (cfg.Events - burst) / 2
	post := cfg.Events - burst - pre
	dropMs := (startMs + int64(spanMs/2)) / 60_000 * 60_000
	t := timeline{
		startMs: startMs,
		maxMs:   maxMs,
		before:  piece{t0: startMs, dur: uint64(dropMs - startMs), n: uint64(max(pre, 1))},
		mid:     piece{i0: pre, t0: dropMs, dur: 60_000, n: uint64(burst)},
		after:   piece{i0: pre + burst, t0: dropMs + 60_000, dur: uint64(endMs - dropMs - 60_000), n: uint64(post)},
	}
	if post == 0 {
		t.after.dur, t.after.n = spanMs, events
	}
	return t, pre, pre + burst, dropMs
}

// at returns the nominal event time of event i.
func (t *timeline) at(i int) int64 {
	switch {
	case i >= t.after.i0:
		return min(t.after.at(i), t.maxMs)
	case i >= t.mid.i0:
		return t.mid.at(i)
	default:
		return t.before.at(i)
	}
}
