package topology

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
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
	m   *instruments

	// mu guards workers and sess for readers on other goroutines; they are
	// written only by Run's goroutine and the rebalance callbacks, which
	// BlockRebalanceOnPoll keeps apart from record processing.
	mu      sync.Mutex
	workers map[int32]*worker
	sess    *kgo.GroupTransactSession
	adm     *kadm.Client
	joined  atomic.Bool

	fatalOnce sync.Once
	fatal     chan error

	// restored, when set (by tests), is called when a partition's store
	// has replayed its changelog, before the task knows its offsets.
	restored func(partition int32)
}

// New validates cfg and creates a Runner. It does not contact the brokers.
func New(cfg Config) (*Runner, error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	r := &Runner{
		cfg:     cfg,
		workers: make(map[int32]*worker),
		fatal:   make(chan error, 1),
	}
	m, err := newInstruments(cfg.MeterProvider, r)
	if err != nil {
		return nil, err
	}
	r.m = m
	return r, nil
}

// TransactionalID is the id of the runner's transactional producer.
func (r *Runner) TransactionalID() string { return r.cfg.Group + "." + r.cfg.InstanceID }

func (r *Runner) newSession() (*kgo.GroupTransactSession, error) {
	opts := []kgo.Opt{
		kgo.SeedBrokers(r.cfg.Brokers...),
		kgo.ConsumerGroup(r.cfg.Group),
		kgo.InstanceID(r.cfg.InstanceID),
		kgo.ConsumeTopics(r.cfg.Topic),
		kgo.TransactionalID(r.TransactionalID()),
		kgo.TransactionTimeout(r.cfg.TransactionTimeout),
		kgo.SessionTimeout(r.cfg.SessionTimeout),
		kgo.HeartbeatInterval(min(r.cfg.SessionTimeout/10, 3*time.Second)),
		kgo.RequireStableFetchOffsets(),
		kgo.BlockRebalanceOnPoll(),
		kgo.Balancers(kgo.CooperativeStickyBalancer()),
		kgo.OnPartitionsAssigned(r.assigned),
		kgo.OnPartitionsRevoked(r.revoked),
		kgo.OnPartitionsLost(r.lost),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		// NB: with control records kept, the consumed position moves
		// past a transaction's commit marker, so the committed offset
		// reaches the log end instead of stopping one short of it.
		kgo.KeepControlRecords(),
		// NB: a partition without a committed offset starts at the log's
		// start; a committed offset outside the log (the broker lost
		// data past it, or retention deleted records not yet consumed)
		// is a fatal error (outOfRange), never a silent reset that would
		// count the partition again from its start.
		kgo.ConsumeStartOffset(kgo.NewOffset().AtStart()),
		kgo.ConsumeResetOffset(kgo.NoResetOffset().AtStart()),
		kgo.FetchMaxBytes(16 << 20),
		kgo.FetchMaxPartitionBytes(2 << 20),
		kgo.RecordPartitioner(partitioner{
			manual: append([]string{r.cfg.Changelog}, r.cfg.ManualTopics...),
			keyed:  kgo.StickyKeyPartitioner(nil),
		}),
		kgo.ProducerBatchCompression(kgo.NoCompression()),
		kgo.ProducerBatchMaxBytes(1 << 20),
		kgo.MaxBufferedRecords(1 << 20),
		kgo.WithLogger(kgoLogger{r.cfg.Logger}),
	}
	sess, err := kgo.NewGroupTransactSession(append(opts, r.cfg.ClientOpts...)...)
	if err != nil {
		return nil, fmt.Errorf("topology: client: %w", err)
	}
	return sess, nil
}

// partitioner sends records of the changelog topic and of the manual
// topics to the partition they name, and every other keyed record to
// murmur2(key), as the Java client does.
type partitioner struct {
	manual []string
	keyed  kgo.Partitioner
}

func (p partitioner) ForTopic(topic string) kgo.TopicPartitioner {
	if slices.Contains(p.manual, topic) {
		return kgo.ManualPartitioner().ForTopic(topic)
	}
	return p.keyed.ForTopic(topic)
}

// errSession marks errors of the Kafka session (the broker, the group,
// the transaction), after which Run starts a new session; other errors
// (a task or a store failing) end Run.
type errSession struct{ err error }

func (e errSession) Error() string { return e.err.Error() }
func (e errSession) Unwrap() error { return e.err }

// Run consumes until ctx ends or a task fails. When the Kafka session
// fails (a broker gone for longer than the client retries, a fenced
// transaction) it drops the uncommitted work and starts a new session,
// which rejoins the group and resumes from the committed offsets. On the
// way out the open transaction is committed. It returns nil when ctx
// ended, else the first fatal error.
func (r *Runner) Run(ctx context.Context) error {
	backoff := 250 * time.Millisecond
	for {
		err := r.runSession(ctx)
		if ctx.Err() != nil {
			return nil
		}
		var se errSession
		if !errors.As(err, &se) {
			return err
		}
		r.cfg.Logger.Error("kafka session failed; starting a new one", attrGroup, r.cfg.Group, "err", err, "backoff", backoff)
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 10*time.Second)
	}
}

func (r *Runner) runSession(ctx context.Context) error {
	sess, err := r.newSession()
	if err != nil {
		return err
	}
	r.mu.Lock()
	r.sess = sess
	r.adm = kadm.NewClient(sess.Client())
	r.mu.Unlock()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	errc := make(chan error, 1)
	go func() { errc <- r.loop(ctx, sess) }()
	var loopErr error
	select {
	case loopErr = <-errc:
	case loopErr = <-r.fatal:
		cancel()
		<-errc
	}
	r.stopAllWorkers()
	sess.Close()
	r.joined.Store(false)
	return loopErr
}

// loop runs transactions until ctx ends or one fails: poll and dispatch
// for a commit interval, then prepare every task that got records, write
// their outputs, commit, and let the tasks apply their changes.
func (r *Runner) loop(ctx context.Context, sess *kgo.GroupTransactSession) error {
	dirty := make(map[int32]*worker)
	lastPurge := time.Now()
	for {
		orphaned := false
		if err := sess.Begin(); err != nil {
			return errSession{fmt.Errorf("topology: begin transaction: %w", err)}
		}
		deadline := time.Now().Add(r.cfg.CommitInterval)
		for ctx.Err() == nil && time.Now().Before(deadline) {
			pollCtx, cancel := context.WithDeadline(ctx, deadline)
			fetches := sess.PollRecords(pollCtx, 10_000)
			cancel()
			if fetches.IsClientClosed() {
				return errSession{errors.New("topology: client closed")}
			}
			fetches.EachError(func(topic string, partition int32, err error) {
				if errors.Is(err, kerr.OffsetOutOfRange) {
					r.fail(outOfRange(r.cfg.Group, topic, partition, err))
					return
				}
				if !errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, context.Canceled) {
					r.cfg.Logger.Warn("fetch error", attrTopic, topic, attrPartition, partition, "err", err)
				}
			})
			fetches.EachPartition(func(p kgo.FetchTopicPartition) {
				if len(p.Records) == 0 {
					return
				}
				w := r.worker(p.Partition)
				if w == nil {
					// NB: the session would commit these records'
					// offsets though no task counted them.
					r.cfg.Logger.Error("records of a partition without a task; aborting the transaction",
						attrTopic, p.Topic, attrPartition, p.Partition)
					orphaned = true
					return
				}
				dirty[p.Partition] = w
				w.in <- p
			})
		}
		r.addDue(dirty)
		endCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), r.cfg.TransactionTimeout)
		err := r.commit(endCtx, sess, dirty, orphaned)
		cancel()
		clear(dirty)
		if err == nil && r.cfg.PurgeInterval > 0 && time.Since(lastPurge) >= r.cfg.PurgeInterval {
			lastPurge = time.Now()
			r.purge(ctx)
		}
		sess.AllowRebalance()
		if err != nil || ctx.Err() != nil {
			return err
		}
	}
}

// addDue adds to dirty the workers whose task's Timer is due.
func (r *Runner) addDue(dirty map[int32]*worker) {
	now := time.Now().UnixNano()
	r.mu.Lock()
	defer r.mu.Unlock()
	for p, w := range r.workers {
		if due := w.due.Load(); due != 0 && due <= now && w.ready.Load() {
			dirty[p] = w
		}
	}
}

// purge deletes the input records below the offsets this member has
// committed. It runs between transactions, before a rebalance can move
// a partition, and a failure only waits for the next purge.
func (r *Runner) purge(ctx context.Context) {
	offsets := kadm.Offsets{}
	r.mu.Lock()
	adm := r.adm
	for p, w := range r.workers {
		if next := w.committed.Load(); next > 0 {
			offsets.Add(kadm.Offset{Topic: r.cfg.Topic, Partition: p, At: next})
		}
	}
	r.mu.Unlock()
	if len(offsets) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, r.cfg.CommitInterval+time.Second)
	defer cancel()
	resp, err := adm.DeleteRecords(ctx, offsets)
	if err == nil {
		err = resp.Error()
	}
	if err != nil && ctx.Err() == nil {
		r.cfg.Logger.Warn("deleting committed input records failed; retrying at the next purge", attrTopic, r.cfg.Topic, "err", err)
	}
}

// commit ends the transaction of one commit interval: the dirty workers
// prepare their outputs, the outputs are produced, and the transaction
// commits (with the consumed offsets) or, when a record failed or abort
// is set, aborts. Either way the workers hear the outcome before they get
// more records.
func (r *Runner) commit(ctx context.Context, sess *kgo.GroupTransactSession, dirty map[int32]*worker, abort bool) error {
	start := time.Now()
	replies := make(chan error, len(dirty))
	for _, w := range dirty {
		w.in <- prepareMsg{reply: replies}
	}
	var taskErr error
	for range dirty {
		if err := <-replies; err != nil && taskErr == nil {
			taskErr = err
		}
	}
	if taskErr != nil {
		_, _ = sess.End(ctx, kgo.TryAbort)
		return taskErr
	}
	var (
		produceMu  sync.Mutex
		produceErr error
	)
	produced := false
	for _, w := range dirty {
		produced = produced || len(w.out.records) > 0
		for _, rec := range w.out.records {
			// NB: after a failed flush a promise can run once commit
			// has returned; it touches only its own worker.
			sess.Produce(ctx, rec, func(rec *kgo.Record, err error) {
				if err != nil {
					produceMu.Lock()
					if produceErr == nil {
						produceErr = fmt.Errorf("topology: produce to %s: %w", rec.Topic, err)
					}
					produceMu.Unlock()
					return
				}
				if rec.Topic == r.cfg.Changelog {
					w.changelogNext.Store(rec.Offset + 1)
				}
			})
		}
	}
	if err := sess.Client().Flush(ctx); err != nil {
		produceMu.Lock()
		produceErr = fmt.Errorf("topology: flush: %w", err)
		produceMu.Unlock()
	}
	produceMu.Lock()
	failed := produceErr
	produceMu.Unlock()
	try := kgo.TryCommit
	if failed != nil {
		r.cfg.Logger.Warn("aborting transaction: a record could not be produced", attrGroup, r.cfg.Group, "err", failed)
		try = kgo.TryAbort
	}
	if abort {
		try = kgo.TryAbort
	}
	var fenceErr error
	if try == kgo.TryCommit && produced && len(sess.Client().UncommittedOffsets()) == 0 {
		if fenceErr = fence(ctx, sess.Client(), r.cfg.Group, r.cfg.InstanceID, r.cfg.Topic, dirty); fenceErr != nil {
			r.cfg.Logger.Warn("aborting a transaction without input: its offsets could not be fenced", attrGroup, r.cfg.Group, "err", fenceErr)
			try = kgo.TryAbort
		}
	}
	// NB: a fenced transaction only aborts: the member learns from its
	// heartbeat that it must rejoin (or a rebalance in progress ends),
	// and a later transaction publishes what this one would have.
	committed, err := sess.End(ctx, try)
	outcome := commitMsg{committed: committed && err == nil}
	for _, w := range dirty {
		w.in <- outcome
	}
	if outcome.committed {
		r.m.commitSeconds.Record(ctx, time.Since(start).Seconds())
	} else {
		r.m.aborts.Add(ctx, 1)
	}
	if err != nil {
		return errSession{fmt.Errorf("topology: end transaction: %w", err)}
	}
	return nil
}

// ErrOffsetOutOfRange is the error Run returns when the group's
// committed offset of a partition lies outside the partition's log.
var ErrOffsetOutOfRange = errors.New("committed offset outside the log")

// outOfRange is the fatal error of a partition whose committed offset
// lies outside its log, with the way out.
func outOfRange(group, topic string, partition int32, err error) error {
	return fmt.Errorf("topology: %w: group %s, %s/%d: the broker lost records past the offset this group committed, "+
		"or deleted records it had not consumed; kappa does not count the partition again from its start on its own. "+
		"Rebuild the stores from what the log holds with `kappa replay --from earliest --cutover`, "+
		"or reset the group's offsets of the partition with a Kafka admin tool while the instances are stopped "+
		"(README, \"Lost data in the log\"): %w", ErrOffsetOutOfRange, group, topic, partition, err)
}

// fail records the first fatal task error and stops Run.
func (r *Runner) fail(err error) {
	r.fatalOnce.Do(func() {
		r.cfg.Logger.Error("task failed", "err", err)
		r.fatal <- err
	})
}

func (r *Runner) assigned(_ context.Context, cl *kgo.Client, assigned map[string][]int32) {
	r.mu.Lock()
	defer r.mu.Unlock()
	var fresh []*worker
	var restoring []int32
	for _, p := range assigned[r.cfg.Topic] {
		if r.workers[p] != nil {
			continue
		}
		w := newWorker(r, cl, p)
		r.workers[p] = w
		fresh = append(fresh, w)
		if w.stateful() {
			restoring = append(restoring, p)
		}
		r.cfg.Logger.Info("partition assigned", attrGroup, r.cfg.Group, attrTopic, r.cfg.Topic, attrPartition, p)
	}
	if len(restoring) > 0 {
		// NB: paused before the first fetch, so no record of a partition
		// is polled (and its offset committed) before its store is restored.
		cl.PauseFetchPartitions(map[string][]int32{r.cfg.Topic: restoring})
	}
	for _, w := range fresh {
		go w.run()
	}
	r.joined.Store(true)
}

func (r *Runner) revoked(_ context.Context, _ *kgo.Client, revoked map[string][]int32) {
	r.stopWorkers(revoked[r.cfg.Topic])
}

func (r *Runner) lost(_ context.Context, _ *kgo.Client, lost map[string][]int32) {
	r.stopWorkers(lost[r.cfg.Topic])
}

// stopAllWorkers stops every worker.
func (r *Runner) stopAllWorkers() {
	r.mu.Lock()
	var all []int32
	for p := range r.workers {
		all = append(all, p)
	}
	r.mu.Unlock()
	r.stopWorkers(all)
}

// stopWorkers stops the workers of partitions, waits for them and closes
// their stores.
//
// NB: a cooperative rebalance calls the revoke callback with no
// partitions at all; that stops nothing.
func (r *Runner) stopWorkers(partitions []int32) {
	r.mu.Lock()
	var stopping []*worker
	for _, p := range partitions {
		if w := r.workers[p]; w != nil {
			stopping = append(stopping, w)
			delete(r.workers, p)
		}
	}
	r.mu.Unlock()
	for _, w := range stopping {
		w.stop()
		r.cfg.Logger.Info("partition released", attrGroup, r.cfg.Group, attrTopic, r.cfg.Topic, attrPartition, w.partition,
			attrOffset, w.committed.Load())
	}
}

func (r *Runner) worker(partition int32) *worker {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.workers[partition]
}
