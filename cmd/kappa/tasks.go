package main

import (
	"errors"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kappa-stream/kappa/events"
	"github.com/kappa-stream/kappa/processors/live"
	"github.com/kappa-stream/kappa/processors/rollups"
	"github.com/kappa-stream/kappa/topology"
)

// listensTask is stage 1 of every processor, on a partition of listens:
// it decodes and validates each listen once and hands it to each
// processor's stage 1, which all send to the repartition topic. live is
// nil when the live windows are off.
type listensTask struct {
	dec     events.Decoder
	l       events.Listen
	rollups *rollups.UserTask
	live    *live.Collector
}

func (t *listensTask) Process(rec *kgo.Record) error {
	if err := t.dec.Decode(rec.Value, &t.l); err != nil {
		return err
	}
	t.rollups.Add(&t.l)
	if t.live != nil {
		t.live.Add(&t.l)
	}
	return nil
}

func (t *listensTask) Prepare(out *topology.Output) error {
	if err := t.rollups.Prepare(out); err != nil {
		return err
	}
	if t.live != nil {
		t.live.Prepare(out)
	}
	return nil
}

// aggregatesTask is stage 2 of every processor, on a partition of the
// repartition topic: each record goes to the processor whose format it
// has, and all keep their tables in the partition's one store. live is
// nil when the live windows are off.
type aggregatesTask struct {
	rollups *rollups.AggregateTask
	live    *live.Task
}

func (t *aggregatesTask) Process(rec *kgo.Record) error {
	if live.IsDelta(rec.Value) {
		if t.live == nil {
			return errors.New("a live delta, but the live windows are off (--live-windows must be the same on every instance of a version)")
		}
		return t.live.Process(rec)
	}
	return t.rollups.Process(rec)
}

func (t *aggregatesTask) Prepare(out *topology.Output) error {
	if err := t.rollups.Prepare(out); err != nil || t.live == nil {
		return err
	}
	return t.live.Prepare(out)
}
