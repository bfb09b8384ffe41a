package replay

import (
	"fmt"
	"runtime/debug"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kappa-stream/kappa/events"
	"github.com/kappa-stream/kappa/processors"
	"github.com/kappa-stream/kappa/topology"
)

// part is one processor's part of a stage task, with its name for errors.
type part[T any] struct {
	name string
	p    T
}

// stage1Task is stage 1 of every processor of a version on a partition of
// listens: it decodes and validates each listen once and hands it to each
// processor's part.
type stage1Task struct {
	dec   events.Decoder
	l     events.Listen
	parts []part[processors.Stage1]
	// err is the first failure of a part (a store error, a panic): not
	// the record's fault, so it fails Prepare (and the version) instead of
	// sending the record to the dead letters.
	err error
	// listened: a valid listen came since the last Prepare; busy: one
	// came in the interval before it.
	listened, busy bool
	now            func() time.Time
	// maxFuture: a listen whose ts lies further after its record's
	// timestamp is rejected (events.CheckFuture).
	maxFuture time.Duration
}

func (t *stage1Task) Process(rec *kgo.Record) error {
	if err := t.dec.Decode(rec.Value, &t.l); err != nil {
		return err
	}
	if err := events.CheckFuture(&t.l, rec.Timestamp, t.maxFuture); err != nil {
		return err
	}
	t.listened = true
	for _, p := range t.parts {
		if t.err != nil {
			return nil
		}
		t.err = guard(p.name, func() error { return p.p.Add(&t.l) })
	}
	return nil
}

// NextDue is when a part has work due without a listen (topology.Timer):
// the earliest part's, or, after an interval with listens, the next
// interval, which prepares the parts idle if no listen comes in it (the
// partition is idle: nothing is left to net pending changes with, so
// waiting would only delay the answers).
func (t *stage1Task) NextDue() time.Time {
	var due time.Time
	for _, p := range t.parts {
		if d := p.p.NextDue(); !d.IsZero() && (due.IsZero() || d.Before(due)) {
			due = d
		}
	}
	if !due.IsZero() && t.busy {
		return t.now()
	}
	return due
}

func (t *stage1Task) Prepare(out *topology.Output) error {
	if t.err != nil {
		return t.err
	}
	idle := !t.listened
	t.busy, t.listened = t.listened, false
	for _, p := range t.parts {
		if err := guard(p.name, func() error { return p.p.Prepare(out, idle) }); err != nil {
			return err
		}
	}
	return nil
}

// stage2Task is stage 2 of every processor of a version on a partition of
// the repartition topic: each record goes to the processor whose format
// it has; all keep their tables in the partition's one store.
type stage2Task struct {
	byFormat [256]*part[processors.Stage2]
	parts    []part[processors.Stage2]
	// unknown names the processor of a format that this version does
	// not run (a record of another configuration): a fatal error.
	unknown map[byte]string
	err     error
}

func (t *stage2Task) Process(rec *kgo.Record) error {
	if t.err != nil {
		return nil
	}
	if len(rec.Value) == 0 {
		return fmt.Errorf("an empty repartition record")
	}
	p := t.byFormat[rec.Value[0]]
	if p == nil {
		if name, ok := t.unknown[rec.Value[0]]; ok {
			t.err = fmt.Errorf("a record of the %s processor, which this version does not run (every instance of a version must run the configuration it was declared with)", name)
			return nil
		}
		return fmt.Errorf("a repartition record of unknown format %#x", rec.Value[0])
	}
	var rejected error
	t.err = guard(p.name, func() error {
		rejected = p.p.Process(rec)
		return nil
	})
	return rejected
}

func (t *stage2Task) Prepare(out *topology.Output) error {
	if t.err != nil {
		return t.err
	}
	for _, p := range t.parts {
		if err := guard(p.name, func() error { return p.p.Prepare(out) }); err != nil {
			return err
		}
	}
	return nil
}

// guard runs f, turning a panic into an error that names the processor:
// a processor's bug fails its version, never the instance.
func guard(name string, f func() error) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("processor %s panicked: %v\n%s", name, r, debug.Stack())
		}
	}()
	if err := f(); err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	return nil
}
