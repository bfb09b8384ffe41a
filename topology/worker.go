package topology

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"

	"github.com/twmb/franz-go/pkg/kgo"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"

	"github.com/kappa-stream/kappa/state"
)

// Header keys of dead-letter records.
const (
	HeaderError  = "kappa-error"
	HeaderSource = "kappa-source"
)

// Messages from the poll loop to a worker, in the order of the loop: any
// number of record batches, then one prepareMsg, then one commitMsg.
type (
	prepareMsg struct{ reply chan<- error }
	commitMsg  struct{ committed bool }
)

// worker runs the task of one partition on its own goroutine: it restores
// the partition's store, then processes what the poll loop sends it.
type worker struct {
	r         *Runner
	cl        *kgo.Client
	partition int32
	attrs     metric.MeasurementOption

	in       chan any
	ctx      context.Context // ends when the worker is stopped
	cancel   context.CancelFunc
	done     chan struct{}
	stopOnce sync.Once

	// Owned by the worker goroutine (out also by the poll loop between a
	// prepare reply and the commit message).
	task      Task
	out       Output
	next      int64 // next input offset after the records processed
	processed int64 // valid records since the last commit
	rejected  int64

	// storeMu guards store against closing while a reader uses it.
	storeMu sync.RWMutex
	store   *state.Store

	// Read by other goroutines.
	changelogNext atomic.Int64 // next changelog offset after this transaction's changes
	consumed      atomic.Int64 // next input offset processed in memory, or -1
	committed     atomic.Int64 // next input offset committed, or -1
	end           atomic.Int64 // last stable offset last seen, or -1
	caughtUp      atomic.Bool
	ready         atomic.Bool  // restored: the task runs and the store may be read
	due           atomic.Int64 // Unix ns the task's Timer wants a Prepare at; 0: none
	restoreDone   atomic.Int64
	restoreTotal  atomic.Int64
}

func newWorker(r *Runner, cl *kgo.Client, partition int32) *worker {
	w := &worker{
		r:         r,
		cl:        cl,
		partition: partition,
		attrs: metric.WithAttributeSet(attribute.NewSet(
			attribute.String(attrTopic, r.cfg.Topic),
			attribute.Int(attrPartition, int(partition)))),
		in:   make(chan any, 4),
		done: make(chan struct{}),
		next: -1,
	}
	w.ctx, w.cancel = context.WithCancel(context.Background())
	w.consumed.Store(-1)
	w.committed.Store(-1)
	w.end.Store(-1)
	w.changelogNext.Store(-1)
	return w
}

func (w *worker) stateful() bool { return w.r.cfg.Changelog != "" }

func (w *worker) storeDir() string {
	return filepath.Join(w.r.cfg.StoreDir, fmt.Sprintf("p-%04d", w.partition))
}

// stop ends the worker and closes its store. Only the poll loop's own
// goroutine or a rebalance callback calls it, never during a transaction.
func (w *worker) stop() {
	w.stopOnce.Do(func() {
		w.cancel()
		close(w.in)
		<-w.done
		w.ready.Store(false)
		w.storeMu.Lock()
		defer w.storeMu.Unlock()
		if w.store != nil {
			if err := w.store.Close(); err != nil {
				w.r.cfg.Logger.Error("closing store", attrPartition, w.partition, "err", err)
			}
			w.store = nil
		}
	})
}

func (w *worker) run() {
	defer close(w.done)
	if err := w.start(); err != nil {
		if w.ctx.Err() == nil {
			w.r.fail(err)
		}
		for range w.in {
		}
		return
	}
	for m := range w.in {
		switch m := m.(type) {
		case kgo.FetchTopicPartition:
			w.process(m)
		case prepareMsg:
			m.reply <- w.prepare()
		case commitMsg:
			if err := w.finish(m.committed); err != nil {
				w.r.fail(err)
			}
		}
	}
}

// start opens and restores the store, makes the task and resumes fetching.
func (w *worker) start() error {
	if w.stateful() {
		if err := os.MkdirAll(w.r.cfg.StoreDir, 0o755); err != nil {
			return fmt.Errorf("topology: store directory: %w", err)
		}
		s, err := w.restore()
		if err != nil {
			return err
		}
		if w.r.restored != nil {
			w.r.restored(w.partition)
		}
		// NB: the offsets the task resumes from may belong to a
		// transaction that was open during the restore (a previous
		// owner's); they are stable only once it ended, and its
		// changelog records must then be in the store too.
		next, ok, err := w.stableGroupOffset()
		if err == nil {
			err = w.catchUp(s)
		}
		if err != nil {
			s.Close()
			return err
		}
		w.storeMu.Lock()
		w.store = s
		w.storeMu.Unlock()
		if ok {
			w.committed.Store(next)
			w.next = next
		}
	} else if next, ok := w.groupOffset(); ok {
		w.committed.Store(next)
		w.next = next
	}
	if err := w.newTask(); err != nil {
		return err
	}
	w.ready.Store(true)
	if w.stateful() {
		w.cl.ResumeFetchPartitions(map[string][]int32{w.r.cfg.Topic: {w.partition}})
	}
	return nil
}

// newTask makes the partition's task over its store (nil when stateless).
func (w *worker) newTask() error {
	task, err := w.r.cfg.NewTask(w.partition, w.store)
	if err != nil {
		return fmt.Errorf("topology: task %s/%d: %w", w.r.cfg.Topic, w.partition, err)
	}
	w.task = task
	w.updateDue()
	return nil
}

// updateDue records when the task's Timer wants a Prepare without input:
// never before an input offset is known, which its commit records.
func (w *worker) updateDue() {
	t, ok := w.task.(Timer)
	if !ok || w.next < 0 {
		w.due.Store(0)
		return
	}
	if due := t.NextDue(); due.IsZero() {
		w.due.Store(0)
	} else {
		w.due.Store(due.UnixNano())
	}
}

// committedOffset is the partition's committed offset, as its store
// reflects it: its own last commit or, before it processed any record,
// the group's. A partition whose group offset the client did not know
// when it started (the offsets arrive after the assignment) still has
// one: a version with no input would otherwise never show it. Once the
// worker has processed records, the group's offset can be ahead of the
// store (a commit whose changes the store does not have yet), so only
// its own commits count. −1 when none is known.
func (w *worker) committedOffset() int64 {
	if c := w.committed.Load(); c >= 0 {
		return c
	}
	if w.consumed.Load() >= 0 {
		return -1
	}
	if next, ok := w.groupOffset(); ok {
		return next
	}
	return -1
}

// groupOffset is the group's committed offset of the partition, as the
// client knows it.
func (w *worker) groupOffset() (int64, bool) {
	eo, ok := w.cl.CommittedOffsets()[w.r.cfg.Topic][w.partition]
	return eo.Offset, ok && eo.Offset >= 0
}

func (w *worker) process(p kgo.FetchTopicPartition) {
	var n, rejected int64
	for _, rec := range p.Records {
		w.next = rec.Offset + 1
		if rec.Attrs.IsControl() {
			continue
		}
		n++
		if err := w.task.Process(rec); err != nil {
			w.reject(rec, err)
			rejected++
		}
	}
	w.processed += n - rejected
	w.rejected += rejected
	w.consumed.Store(w.next)
	w.end.Store(p.LastStableOffset)
	if p.LastStableOffset-w.next <= w.r.cfg.ReadyLag {
		w.caughtUp.Store(true)
	}
	w.r.m.eventsIn.Add(context.Background(), n, w.attrs)
}

// reject adds a dead letter for rec to the transaction.
func (w *worker) reject(rec *kgo.Record, reason error) {
	if w.r.cfg.DLQTopic == "" {
		w.r.fail(fmt.Errorf("topology: record %s/%d/%d rejected and no dead-letter topic: %w", rec.Topic, rec.Partition, rec.Offset, reason))
		return
	}
	w.out.records = append(w.out.records, deadLetter(w.r.cfg.DLQTopic, rec, reason))
}

// prepare asks the task for its outputs and turns its store changes into
// changelog records.
func (w *worker) prepare() error {
	if err := w.task.Prepare(&w.out); err != nil {
		return fmt.Errorf("topology: prepare %s/%d: %w", w.r.cfg.Topic, w.partition, err)
	}
	w.updateDue()
	if len(w.out.changes) > 0 && !w.stateful() {
		return fmt.Errorf("topology: task of %s/%d changed its store, but it has no changelog", w.r.cfg.Topic, w.partition)
	}
	for _, c := range w.out.changes {
		w.out.records = append(w.out.records,
			&kgo.Record{Topic: w.r.cfg.Changelog, Partition: w.partition, Key: c.key, Value: c.value})
	}
	return nil
}

// finish applies a committed transaction's changes to the store, with the
// changelog and input offsets they reflect, or forgets an aborted one's.
func (w *worker) finish(committed bool) error {
	defer w.out.reset()
	ctx := context.Background()
	if !committed {
		// The session rewinds to the committed offsets: what was
		// processed comes again.
		w.next = w.committed.Load()
		w.consumed.Store(w.next)
		w.processed, w.rejected = 0, 0
		// A new task forgets whatever the old one kept in memory since
		// the last commit.
		return w.newTask()
	}
	if w.stateful() && len(w.out.changes) > 0 {
		size := 0
		for _, c := range w.out.changes {
			size += len(c.key) + len(c.value)
		}
		b := w.store.NewBatchSize(size)
		for _, c := range w.out.changes {
			var err error
			if c.value == nil {
				err = b.Delete(c.key)
			} else {
				err = b.Set(c.key, c.value)
			}
			if err != nil {
				b.Close()
				return fmt.Errorf("topology: apply %s/%d: %w", w.r.cfg.Topic, w.partition, err)
			}
		}
		if err := b.SetOffset(w.r.cfg.Changelog, w.partition, w.changelogNext.Load()); err != nil {
			b.Close()
			return err
		}
		if err := b.SetOffset(w.r.cfg.Topic, w.partition, w.next); err != nil {
			b.Close()
			return err
		}
		if err := b.Commit(false); err != nil {
			return fmt.Errorf("topology: apply %s/%d: %w", w.r.cfg.Topic, w.partition, err)
		}
	}
	w.committed.Store(w.next)
	w.r.m.eventsOut.Add(ctx, w.processed, w.attrs)
	if w.rejected > 0 {
		w.r.m.rejected.Add(ctx, w.rejected, w.attrs)
	}
	w.processed, w.rejected = 0, 0
	return nil
}

// readStore gives the partition's store and its release when the worker
// is ready; the store stays open until release.
func (w *worker) readStore() (*state.Store, func(), bool) {
	w.storeMu.RLock()
	if !w.ready.Load() || w.store == nil {
		w.storeMu.RUnlock()
		return nil, nil, false
	}
	return w.store, w.storeMu.RUnlock, true
}
