package topology

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Log attribute keys.
const (
	attrTopic     = "topic"
	attrPartition = "partition"
	attrOffset    = "offset"
	attrGroup     = "group"
)

// Runner consumes the input topic as a member of the consumer group and
// runs one task per assigned partition. Create it with New and start it
// with Run; other methods are safe for concurrent use with Run.
type Runner struct {
	cfg Config
	cl  *kgo.Client
	adm *kadm.Client
	m   *instruments

	// workers is written only by the poll loop and the rebalance
	// callbacks, which BlockRebalanceOnPoll serializes; mu guards it for
	// readers on other goroutines.
	mu      sync.Mutex
	workers map[int32]*worker
	joined  atomic.Bool

	commitMu sync.Mutex
	toCommit map[int32]kgo.EpochOffset

	fatalOnce sync.Once
	fatal     chan error
}

// New validates cfg and creates a Runner. It does not contact the brokers.
func New(cfg Config) (*Runner, error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	r := &Runner{
		cfg:      cfg,
		workers:  make(map[int32]*worker),
		toCommit: make(map[int32]kgo.EpochOffset),
		fatal:    make(chan error, 1),
	}
	m, err := newInstruments(cfg.MeterProvider, r)
	if err != nil {
		return nil, err
	}
	r.m = m
	opts := []kgo.Opt{
		kgo.SeedBrokers(cfg.Brokers...),
		kgo.ConsumerGroup(cfg.Group),
		kgo.ConsumeTopics(cfg.Topic),
		kgo.DisableAutoCommit(),
		kgo.BlockRebalanceOnPoll(),
		kgo.Balancers(kgo.CooperativeStickyBalancer()),
		kgo.OnPartitionsAssigned(r.assigned),
		kgo.OnPartitionsRevoked(r.revoked),
		kgo.OnPartitionsLost(r.lost),
		kgo.AdjustFetchOffsetsFn(r.adjustOffsets),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchMaxBytes(16 << 20),
		kgo.FetchMaxPartitionBytes(2 << 20),
		kgo.WithLogger(kgoLogger{cfg.Logger}),
	}
	if cfg.InstanceID != "" {
		opts = append(opts, kgo.InstanceID(cfg.InstanceID))
	}
	cl, err := kgo.NewClient(append(opts, cfg.ClientOpts...)...)
	if err != nil {
		return nil, fmt.Errorf("topology: client: %w", err)
	}
	r.cl = cl
	r.adm = kadm.NewClient(cl)
	return r, nil
}

// Run consumes until ctx ends or a task fails. On the way out every task
// flushes, the offsets are committed and the member leaves the group. It
// returns nil when ctx ended, else the first fatal error.
func (r *Runner) Run(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		wg       sync.WaitGroup
		fatalErr error
	)
	wg.Add(2)
	go func() {
		defer wg.Done()
		r.commitLoop(ctx)
	}()
	go func() {
		defer wg.Done()
		select {
		case <-ctx.Done():
		case fatalErr = <-r.fatal:
			cancel()
		}
	}()
	r.poll(ctx)
	cancel()
	wg.Wait()
	r.stopWorkers(nil)
	closeCtx, closeCancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer closeCancel()
	r.commitPending(closeCtx)
	r.cl.Close()
	if fatalErr == nil {
		select {
		case fatalErr = <-r.fatal:
		default:
		}
	}
	return fatalErr
}

func (r *Runner) poll(ctx context.Context) {
	for {
		fetches := r.cl.PollRecords(ctx, 10_000)
		if fetches.IsClientClosed() || ctx.Err() != nil {
			r.cl.AllowRebalance()
			return
		}
		fetches.EachError(func(topic string, partition int32, err error) {
			r.cfg.Logger.Warn("fetch error", attrTopic, topic, attrPartition, partition, "err", err)
		})
		fetches.EachPartition(func(p kgo.FetchTopicPartition) {
			if len(p.Records) == 0 {
				return
			}
			w := r.workers[p.Partition]
			if w == nil {
				return
			}
			select {
			case w.recs <- p:
			case <-w.done:
			case <-ctx.Done():
			}
		})
		r.cl.AllowRebalance()
	}
}

// fail records the first fatal task error and stops Run.
func (r *Runner) fail(err error) {
	r.fatalOnce.Do(func() {
		r.cfg.Logger.Error("task failed", "err", err)
		r.fatal <- err
	})
}

func (r *Runner) assigned(_ context.Context, _ *kgo.Client, assigned map[string][]int32) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, p := range assigned[r.cfg.Topic] {
		if r.workers[p] != nil {
			continue
		}
		w := newWorker(r, p)
		r.workers[p] = w
		go w.run()
		r.cfg.Logger.Info("partition assigned", attrGroup, r.cfg.Group, attrTopic, r.cfg.Topic, attrPartition, p)
	}
	r.joined.Store(true)
}

func (r *Runner) revoked(ctx context.Context, _ *kgo.Client, revoked map[string][]int32) {
	r.stopWorkers(revoked[r.cfg.Topic])
	r.commitPending(ctx)
}

func (r *Runner) lost(_ context.Context, _ *kgo.Client, lost map[string][]int32) {
	r.stopWorkers(lost[r.cfg.Topic])
}

// stopWorkers stops the workers of partitions (all when nil) and waits for
// their last flush.
func (r *Runner) stopWorkers(partitions []int32) {
	r.mu.Lock()
	var stopping []*worker
	if partitions == nil {
		for p := range r.workers {
			partitions = append(partitions, p)
		}
	}
	for _, p := range partitions {
		if w := r.workers[p]; w != nil {
			close(w.quit)
			stopping = append(stopping, w)
			delete(r.workers, p)
		}
	}
	r.mu.Unlock()
	for _, w := range stopping {
		<-w.done
		r.cfg.Logger.Info("partition released", attrTopic, r.cfg.Topic, attrPartition, w.partition, attrOffset, w.flushed.Load())
	}
}

// adjustOffsets starts every assigned partition at the offset its store
// reflects, or at the start of the log when the store has none: Kafka's
// committed offsets never decide what the store has counted.
func (r *Runner) adjustOffsets(_ context.Context, offsets map[string]map[int32]kgo.Offset) (map[string]map[int32]kgo.Offset, error) {
	for topic, ps := range offsets {
		for p := range ps {
			next, ok, err := r.cfg.Store.Offset(topic, p)
			if err != nil {
				r.fail(err)
				return nil, err
			}
			if ok {
				ps[p] = kgo.NewOffset().At(next).WithEpoch(-1)
			} else {
				ps[p] = kgo.NewOffset().AtStart()
			}
			if w := r.worker(p); w != nil && topic == r.cfg.Topic {
				if ok {
					w.flushed.Store(next)
					w.consumed.Store(next)
				}
				// NB: the group's offset can be behind the store (a kill
				// between the store commit and the group commit) or ahead
				// of it (a lost store): publish where the store really is.
				r.markFlushed(p, next, -1)
			}
			r.cfg.Logger.Info("partition resumes", attrTopic, topic, attrPartition, p, attrOffset, next, "from_store", ok)
		}
	}
	return offsets, nil
}

func (r *Runner) worker(partition int32) *worker {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.workers[partition]
}

func (r *Runner) markFlushed(partition int32, next int64, epoch int32) {
	r.commitMu.Lock()
	r.toCommit[partition] = kgo.EpochOffset{Epoch: epoch, Offset: next}
	r.commitMu.Unlock()
}

func (r *Runner) commitLoop(ctx context.Context) {
	t := time.NewTicker(r.cfg.CommitInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			r.commitPending(ctx)
		}
	}
}

// commitPending commits the flushed offsets to the group, so that Kafka
// lag tools see the progress. The store's offsets stay authoritative.
func (r *Runner) commitPending(ctx context.Context) {
	r.commitMu.Lock()
	if len(r.toCommit) == 0 {
		r.commitMu.Unlock()
		return
	}
	offsets := map[string]map[int32]kgo.EpochOffset{r.cfg.Topic: r.toCommit}
	r.toCommit = make(map[int32]kgo.EpochOffset)
	r.commitMu.Unlock()
	r.cl.CommitOffsetsSync(ctx, offsets, func(_ *kgo.Client, _ *kmsg.OffsetCommitRequest, _ *kmsg.OffsetCommitResponse, err error) {
		if err != nil && !errors.Is(err, context.Canceled) {
			r.cfg.Logger.Warn("group offset commit failed", attrGroup, r.cfg.Group, "err", err)
		}
	})
}
