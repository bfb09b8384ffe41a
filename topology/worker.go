package topology

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
)

// Header keys of dead-letter records.
const (
	HeaderError  = "kappa-error"
	HeaderSource = "kappa-source"
)

// worker runs the task of one partition on its own goroutine.
type worker struct {
	r         *Runner
	partition int32
	task      Task
	attrs     metric.MeasurementOption

	recs chan kgo.FetchTopicPartition
	quit chan struct{}
	done chan struct{}

	// Owned by the worker goroutine.
	next    int64
	epoch   int32
	dirty   bool
	applied int64

	dlq    sync.WaitGroup
	dlqMu  sync.Mutex
	dlqErr error

	// Read by other goroutines.
	flushed  atomic.Int64 // next offset reflected by the store
	consumed atomic.Int64 // next offset processed in memory
	hwm      atomic.Int64 // last high watermark seen, or -1
	caughtUp atomic.Bool
}

func newWorker(r *Runner, partition int32) *worker {
	w := &worker{
		r:         r,
		partition: partition,
		task:      r.cfg.NewTask(partition),
		attrs: metric.WithAttributeSet(attribute.NewSet(
			attribute.String(attrTopic, r.cfg.Topic),
			attribute.Int(attrPartition, int(partition)))),
		recs: make(chan kgo.FetchTopicPartition, 4),
		quit: make(chan struct{}),
		done: make(chan struct{}),
	}
	w.hwm.Store(-1)
	w.next = -1
	w.flushed.Store(-1)
	w.consumed.Store(-1)
	return w
}

func (w *worker) run() {
	defer close(w.done)
	t := time.NewTicker(w.r.cfg.CommitInterval)
	defer t.Stop()
	for {
		select {
		case p := <-w.recs:
			w.process(p)
		case <-t.C:
			if err := w.flush(); err != nil {
				w.r.fail(err)
				return
			}
		case <-w.quit:
			if err := w.flush(); err != nil {
				w.r.fail(err)
			}
			return
		}
	}
}

func (w *worker) process(p kgo.FetchTopicPartition) {
	var rejected int64
	for _, rec := range p.Records {
		if err := w.task.Process(rec.Value); err != nil {
			w.reject(rec, err)
			rejected++
		}
		w.next = rec.Offset + 1
		w.epoch = rec.LeaderEpoch
	}
	w.dirty = true
	n := int64(len(p.Records))
	w.applied += n - rejected
	w.consumed.Store(w.next)
	w.hwm.Store(p.LastStableOffset)
	if p.LastStableOffset-w.next <= w.r.cfg.ReadyLag {
		w.caughtUp.Store(true)
	}
	ctx := context.Background()
	w.r.m.eventsIn.Add(ctx, n, w.attrs)
	if rejected > 0 {
		w.r.m.rejected.Add(ctx, rejected, w.attrs)
	}
}

// reject sends rec to the dead-letter topic; flush waits for the write
// before the store moves past rec's offset, so no rejected record is lost.
func (w *worker) reject(rec *kgo.Record, reason error) {
	source := rec.Topic + "/" + strconv.Itoa(int(rec.Partition)) + "/" + strconv.FormatInt(rec.Offset, 10)
	dead := &kgo.Record{
		Topic:     w.r.cfg.DLQTopic,
		Key:       rec.Key,
		Value:     rec.Value,
		Timestamp: rec.Timestamp,
		Headers: []kgo.RecordHeader{
			{Key: HeaderError, Value: []byte(reason.Error())},
			{Key: HeaderSource, Value: []byte(source)},
		},
	}
	w.dlq.Add(1)
	w.r.cl.Produce(context.Background(), dead, func(_ *kgo.Record, err error) {
		if err != nil {
			w.dlqMu.Lock()
			if w.dlqErr == nil {
				w.dlqErr = fmt.Errorf("topology: dead-letter %s: %w", source, err)
			}
			w.dlqMu.Unlock()
		}
		w.dlq.Done()
	})
}

// flush commits the task's pending state and the input offset in one batch.
func (w *worker) flush() error {
	if !w.dirty {
		return nil
	}
	w.dlq.Wait()
	w.dlqMu.Lock()
	err := w.dlqErr
	w.dlqMu.Unlock()
	if err != nil {
		return err
	}
	start := time.Now()
	b := w.r.cfg.Store.NewBatch()
	if err := w.task.Flush(b); err != nil {
		b.Close()
		return fmt.Errorf("topology: flush %s/%d: %w", w.r.cfg.Topic, w.partition, err)
	}
	if err := b.SetOffset(w.r.cfg.Topic, w.partition, w.next); err != nil {
		b.Close()
		return fmt.Errorf("topology: flush %s/%d: %w", w.r.cfg.Topic, w.partition, err)
	}
	if err := b.Commit(false); err != nil {
		return fmt.Errorf("topology: flush %s/%d: %w", w.r.cfg.Topic, w.partition, err)
	}
	w.dirty = false
	w.flushed.Store(w.next)
	ctx := context.Background()
	w.r.m.commitSeconds.Record(ctx, time.Since(start).Seconds(), w.attrs)
	w.r.m.eventsOut.Add(ctx, w.applied, w.attrs)
	w.applied = 0
	w.r.markFlushed(w.partition, w.next, w.epoch)
	return nil
}
