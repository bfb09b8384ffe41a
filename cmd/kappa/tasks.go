package main

import (
	"errors"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kappa-stream/kappa/events"
	"github.com/kappa-stream/kappa/processors/fans"
	"github.com/kappa-stream/kappa/processors/live"
	"github.com/kappa-stream/kappa/processors/rollups"
	"github.com/kappa-stream/kappa/processors/similar"
	"github.com/kappa-stream/kappa/processors/topk"
	"github.com/kappa-stream/kappa/topology"
)

// listensTask is stage 1 of every processor, on a partition of listens:
// it decodes and validates each listen once and hands it to each
// processor's stage 1, which all send to the repartition topic. live,
// fans and similar are nil when off.
type listensTask struct {
	dec     events.Decoder
	l       events.Listen
	rollups *rollups.UserTask
	live    *live.Collector
	fans    *fans.Collector
	similar *similar.UserCollector
	// topkSongs counts the artists' songs for top-K; nil when off.
	topkSongs *topk.SongCollector
	// err is the first store error of the fan zones or similar users:
	// not the record's fault, so it fails Prepare (and the instance)
	// instead of sending the record to the dead letters.
	err error
	// listened: a valid listen came since the last Prepare; busy: one
	// came in the interval before it.
	listened, busy bool
	now            func() time.Time
}

func (t *listensTask) Process(rec *kgo.Record) error {
	if err := t.dec.Decode(rec.Value, &t.l); err != nil {
		return err
	}
	t.listened = true
	t.rollups.Add(&t.l)
	if t.topkSongs != nil && t.err == nil {
		t.err = t.topkSongs.Add(&t.l)
	}
	if t.live != nil {
		t.live.Add(&t.l)
	}
	if t.fans != nil && t.err == nil {
		t.err = t.fans.Add(&t.l)
	}
	if t.similar != nil && t.err == nil {
		t.err = t.similar.Add(&t.l)
	}
	return nil
}

// NextDue is when the fan zones or similar users have users to publish
// without a listen (topology.Timer): when the first is due, or, after an
// interval with listens, the next interval, which publishes them all if
// no listen comes in it (the partition is idle: nothing is left to net
// their changes with, so waiting would only delay the answers).
func (t *listensTask) NextDue() time.Time {
	var due time.Time
	if t.fans != nil {
		due = t.fans.NextDue()
	}
	if t.similar != nil {
		if d := t.similar.NextDue(); !d.IsZero() && (due.IsZero() || d.Before(due)) {
			due = d
		}
	}
	if !due.IsZero() && t.busy {
		return t.now()
	}
	return due
}

func (t *listensTask) Prepare(out *topology.Output) error {
	if t.err != nil {
		return t.err
	}
	idle := !t.listened
	t.busy, t.listened = t.listened, false
	if err := t.rollups.Prepare(out); err != nil {
		return err
	}
	if t.topkSongs != nil {
		if err := t.topkSongs.Prepare(out, idle); err != nil {
			return err
		}
	}
	if t.live != nil {
		t.live.Prepare(out)
	}
	if t.fans != nil {
		if err := t.fans.Prepare(out, idle); err != nil {
			return err
		}
	}
	if t.similar != nil {
		return t.similar.Prepare(out, idle)
	}
	return nil
}

// aggregatesTask is stage 2 of every processor, on a partition of the
// repartition topic: each record goes to the processor whose format it
// has, and all keep their tables in the partition's one store. live,
// fans and similar are nil when off.
type aggregatesTask struct {
	rollups *rollups.AggregateTask
	live    *live.Task
	fans    *fans.CountTask
	similar *similar.IndexTask
	// topk is told of the rollups' rows (it observes t.rollups); nil
	// when top-K is off.
	topk      *topk.Indexer
	topkSongs *topk.SongTask
}

func (t *aggregatesTask) Process(rec *kgo.Record) error {
	if live.IsDelta(rec.Value) {
		if t.live == nil {
			return errors.New("a live delta, but the live windows are off (--live-windows must be the same on every instance of a version)")
		}
		return t.live.Process(rec)
	}
	if fans.IsDelta(rec.Value) {
		if t.fans == nil {
			return errors.New("a fan-delta record, but the fan zones are off (--fan-zones and --h3-resolutions must be the same on every instance of a version)")
		}
		return t.fans.Process(rec)
	}
	if topk.IsSongDelta(rec.Value) {
		if t.topkSongs == nil {
			return errors.New("an artist-songs record, but they are off (--top-k-artist-songs must be the same on every instance of a version)")
		}
		return t.topkSongs.Process(rec)
	}
	if similar.IsDelta(rec.Value) {
		if t.similar == nil {
			return errors.New("a similar-index record, but the similarity indexes are off (--similar must be the same on every instance of a version)")
		}
		return t.similar.Process(rec)
	}
	return t.rollups.Process(rec)
}

func (t *aggregatesTask) Prepare(out *topology.Output) error {
	if err := t.rollups.Prepare(out); err != nil {
		return err
	}
	if t.topk != nil {
		// NB: after the rollups, whose Prepare told it of their rows.
		if err := t.topk.Prepare(out); err != nil {
			return err
		}
	}
	if t.topkSongs != nil {
		if err := t.topkSongs.Prepare(out); err != nil {
			return err
		}
	}
	if t.fans != nil {
		if err := t.fans.Prepare(out); err != nil {
			return err
		}
	}
	if t.similar != nil {
		if err := t.similar.Prepare(out); err != nil {
			return err
		}
	}
	if t.live == nil {
		return nil
	}
	return t.live.Prepare(out)
}
