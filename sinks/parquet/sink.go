// Package parquet writes the valid listens of the listens topic, exactly
// once, as Hive-partitioned Parquet files that DuckDB, Spark and Trino
// read, with the catalog's current songs and artists as dimension
// tables:
//
//	<dir>/listens/day=YYYY-MM-DD/<partition>-<first>-<last>.parquet
//	<dir>/catalog/songs.parquet, <dir>/catalog/artists.parquet
//
// The sink is its own consumer group (read_committed) with its own
// transactional session. It reads in epochs, bounded in rows and time;
// per epoch it
//
//  1. writes the epoch's files into a staging folder outside the tables
//     (<dir>/_sink/staging/<instance>/<epoch>/), fsyncs them and reopens
//     each to check it reads back as written, then writes and fsyncs the
//     epoch's manifest.json;
//  2. commits the epoch's input offsets and its manifest record (topic
//     kappa.sink.manifest, compacted, keyed by instance id) in one Kafka
//     transaction;
//  3. renames the files into the tables and removes the staging folder.
//
// On start (and after any Kafka session failure) the instance first
// fences its previous incarnation's transaction, then finishes every
// staged epoch whose manifest record committed and deletes every other
// one. A file is named by the offsets its epoch read, and its bytes
// depend on its rows alone, so whatever re-runs writes the same file: no
// listen is in two files, none is missing once the offsets commit.
package parquet

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"golang.org/x/sync/errgroup"

	"github.com/kappa-stream/kappa/events"
	"github.com/kappa-stream/kappa/topology"
)

// Log attribute keys.
const (
	attrEpoch     = "epoch"
	attrPartition = "partition"
)

// Sink writes listens to Parquet files exactly once. Create it with New
// and start it with Run; Status is safe for concurrent use with Run.
type Sink struct {
	cfg Config
	m   *instruments

	mu    sync.Mutex
	parts map[int32]*PartitionStatus
	total Totals
}

// PartitionStatus is the progress of one partition the instance owns:
// Committed is the next offset whose listens are in files (or -1 while
// unknown), End the last stable offset last seen (-1 while unknown).
type PartitionStatus struct {
	Partition int32 `json:"partition"`
	Committed int64 `json:"committed"`
	End       int64 `json:"end"`
}

// Lag is End − Committed, or 0 when either is unknown.
func (s PartitionStatus) Lag() int64 {
	if s.End < 0 || s.Committed < 0 {
		return 0
	}
	return max(s.End-s.Committed, 0)
}

// Totals count what the instance has published since it started.
type Totals struct {
	Epochs   int64     `json:"epochs"`
	Rows     int64     `json:"rows"`
	Rejected int64     `json:"rejected"`
	Files    int64     `json:"files"`
	Bytes    int64     `json:"bytes"`
	Last     time.Time `json:"last_epoch,omitzero"`
}

// Status is what Sink.Status reports.
type Status struct {
	Group      string            `json:"group"`
	Dir        string            `json:"dir"`
	Partitions []PartitionStatus `json:"partitions"`
	Totals     Totals            `json:"totals"`
}

// New validates cfg and creates a Sink. It does not contact the brokers.
func New(cfg Config) (*Sink, error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	s := &Sink{cfg: cfg, parts: map[int32]*PartitionStatus{}}
	m, err := newInstruments(cfg.MeterProvider, s)
	if err != nil {
		return nil, err
	}
	s.m = m
	return s, nil
}

// Status reports the partitions the instance owns, in partition order,
// and its totals.
func (s *Sink) Status() Status {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := Status{Group: s.cfg.Group, Dir: s.cfg.Dir, Totals: s.total}
	for _, p := range s.parts {
		st.Partitions = append(st.Partitions, *p)
	}
	slices.SortFunc(st.Partitions, func(a, b PartitionStatus) int { return cmp.Compare(a.Partition, b.Partition) })
	return st
}

// at runs the test hook at a point of the epoch protocol.
func (s *Sink) at(point string) error {
	if s.cfg.hook == nil {
		return nil
	}
	return s.cfg.hook(point)
}

// errSession marks errors of the Kafka session, after which Run starts a
// new one; others (a disk failing) end Run.
type errSession struct{ err error }

func (e errSession) Error() string { return e.err.Error() }
func (e errSession) Unwrap() error { return e.err }

// Run provisions the manifest topic, then writes epochs until ctx ends
// (nil) or a file cannot be written (the error). A failed Kafka session
// is replaced by a new one, which first settles the staged epochs. On the
// way out the epoch being read is committed and published. With a
// CatalogTopic, Run also keeps the catalog tables current.
func (s *Sink) Run(ctx context.Context) error {
	if err := s.provision(ctx); err != nil {
		return err
	}
	g, gctx := errgroup.WithContext(ctx)
	if s.cfg.CatalogTopic != "" {
		g.Go(func() error { return s.runCatalog(gctx) })
	}
	g.Go(func() error { return s.runListens(gctx) })
	return g.Wait()
}

func (s *Sink) provision(ctx context.Context) error {
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(s.cfg.Brokers...)}, s.cfg.ClientOpts...)...)
	if err != nil {
		return fmt.Errorf("parquet: client: %w", err)
	}
	defer cl.Close()
	pctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := topology.Provision(pctx, kadm.NewClient(cl), s.cfg.Logger, topology.TopicSpec{
		Name: s.cfg.ManifestTopic, Partitions: 1, Configs: map[string]string{"cleanup.policy": "compact"},
	}); err != nil {
		return fmt.Errorf("parquet: %w", err)
	}
	return nil
}

func (s *Sink) runListens(ctx context.Context) error {
	backoff := 250 * time.Millisecond
	for {
		err := s.runSession(ctx)
		if ctx.Err() != nil && err == nil {
			return nil
		}
		var se errSession
		if !errors.As(err, &se) {
			return err
		}
		if ctx.Err() != nil {
			return nil
		}
		s.cfg.Logger.Error("parquet sink: kafka session failed; starting a new one", "err", err, "backoff", backoff)
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 10*time.Second)
	}
}

func (s *Sink) newSession() (*kgo.GroupTransactSession, error) {
	opts := []kgo.Opt{
		kgo.SeedBrokers(s.cfg.Brokers...),
		kgo.ConsumerGroup(s.cfg.Group),
		kgo.InstanceID(s.cfg.InstanceID),
		kgo.ClientID(s.cfg.Group + "." + s.cfg.InstanceID),
		kgo.ConsumeTopics(s.cfg.Topic),
		kgo.TransactionalID(s.cfg.Group + "." + s.cfg.InstanceID),
		kgo.TransactionTimeout(s.cfg.TransactionTimeout),
		kgo.SessionTimeout(s.cfg.SessionTimeout),
		kgo.HeartbeatInterval(min(s.cfg.SessionTimeout/10, 3*time.Second)),
		kgo.RequireStableFetchOffsets(),
		kgo.Balancers(kgo.CooperativeStickyBalancer()),
		kgo.OnPartitionsAssigned(s.assigned),
		kgo.OnPartitionsRevoked(s.released),
		kgo.OnPartitionsLost(s.released),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		// NB: with control records kept, the committed offset moves past
		// a transaction's commit marker and reaches the log end.
		kgo.KeepControlRecords(),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchMaxBytes(16 << 20),
		kgo.FetchMaxPartitionBytes(2 << 20),
		kgo.DefaultProduceTopic(s.cfg.ManifestTopic),
		kgo.RecordPartitioner(kgo.ManualPartitioner()),
	}
	sess, err := kgo.NewGroupTransactSession(append(opts, s.cfg.ClientOpts...)...)
	if err != nil {
		return nil, fmt.Errorf("parquet: client: %w", err)
	}
	return sess, nil
}

func (s *Sink) runSession(ctx context.Context) error {
	sess, err := s.newSession()
	if err != nil {
		return err
	}
	defer sess.Close()
	if err := s.settle(ctx, sess.Client()); err != nil {
		return err
	}
	for {
		done, err := s.runEpoch(ctx, sess)
		if err != nil || done {
			return err
		}
	}
}

// runEpoch reads one epoch, then stages, commits and publishes it. done
// is true when ctx ended.
func (s *Sink) runEpoch(ctx context.Context, sess *kgo.GroupTransactSession) (done bool, err error) {
	if err := sess.Begin(); err != nil {
		return false, errSession{fmt.Errorf("parquet: begin transaction: %w", err)}
	}
	start := time.Now()
	s.syncCommitted(sess.Client().CommittedOffsets())
	e := newEpoch()
	var (
		dec events.Decoder
		l   events.Listen
	)
	deadline := start.Add(s.cfg.EpochInterval)
	for ctx.Err() == nil && e.rows < s.cfg.EpochRows && time.Now().Before(deadline) {
		pctx, cancel := context.WithDeadline(ctx, deadline)
		fetches := sess.PollRecords(pctx, min(10_000, s.cfg.EpochRows-e.rows))
		cancel()
		if fetches.IsClientClosed() {
			return false, errSession{errors.New("parquet: client closed")}
		}
		fetches.EachError(func(topic string, p int32, err error) {
			if !errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, context.Canceled) {
				s.cfg.Logger.Warn("parquet sink: fetch error", "topic", topic, attrPartition, p, "err", err)
			}
		})
		fetches.EachPartition(func(fp kgo.FetchTopicPartition) {
			s.seen(fp.Partition, fp.LastStableOffset)
			for _, r := range fp.Records {
				if r.Attrs.IsControl() {
					e.skip(r.Partition, r.Offset)
					continue
				}
				err := dec.Decode(r.Value, &l)
				e.add(r.Partition, r.Offset, &l, err == nil)
			}
		})
	}
	endCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.cfg.TransactionTimeout+time.Minute)
	defer cancel()
	if len(e.parts) == 0 {
		if _, err := sess.End(endCtx, kgo.TryCommit); err != nil {
			return false, errSession{fmt.Errorf("parquet: end transaction: %w", err)}
		}
		return ctx.Err() != nil, nil
	}
	id := newEpochID(start)
	m, err := s.stage(e, id)
	if err != nil {
		_, _ = sess.End(endCtx, kgo.TryAbort)
		return false, err
	}
	rec, err := manifestRecord(m, s.cfg.InstanceID)
	if err != nil {
		return false, err
	}
	produceErr := sess.ProduceSync(endCtx, rec).FirstErr()
	if err := s.at("staged"); err != nil {
		return false, err
	}
	try := kgo.TryCommit
	if produceErr != nil {
		s.cfg.Logger.Warn("parquet sink: aborting epoch: manifest record not produced", attrEpoch, id, "err", produceErr)
		try = kgo.TryAbort
	}
	committed, err := sess.End(endCtx, try)
	if err != nil {
		// NB: whether it committed is unknown; the next session settles
		// the staged epoch from the manifest topic.
		return false, errSession{fmt.Errorf("parquet: end transaction of epoch %s: %w", id, err)}
	}
	if !committed {
		s.m.aborts.Add(endCtx, 1)
		s.cfg.Logger.Info("parquet sink: epoch aborted (a rebalance or a failed produce); its records are read again", attrEpoch, id)
		return ctx.Err() != nil, s.drop(id)
	}
	if err := s.at("committed"); err != nil {
		return false, err
	}
	if err := s.publish(m); err != nil {
		return false, err
	}
	s.published(endCtx, m, time.Since(start))
	return ctx.Err() != nil, nil
}

// manifestRecord is the manifest topic's record of a committed epoch:
// the manifest without its file list, keyed by the instance id.
func manifestRecord(m *Manifest, instance string) (*kgo.Record, error) {
	short := *m
	short.Files = nil
	b, err := json.Marshal(short)
	if err != nil {
		return nil, fmt.Errorf("parquet: manifest record: %w", err)
	}
	return &kgo.Record{Key: []byte(instance), Value: b, Partition: 0}, nil
}

// settle fences the previous incarnation's transaction, then finishes
// the staged epochs the manifest topic says committed and deletes the
// others.
func (s *Sink) settle(ctx context.Context, cl *kgo.Client) error {
	staged, err := s.staged()
	if err != nil || len(staged) == 0 {
		return err
	}
	// NB: initializing the producer id aborts the open transaction of
	// the previous producer with this transactional id, so the manifest
	// topic's end is decided when it is read below.
	if _, _, err := cl.ProducerID(ctx); err != nil {
		return errSession{fmt.Errorf("parquet: init producer id: %w", err)}
	}
	last, err := s.lastCommitted(ctx)
	if err != nil {
		return errSession{err}
	}
	for id, m := range staged {
		if m != nil && id == last {
			s.cfg.Logger.Info("parquet sink: finishing a committed staged epoch", attrEpoch, id, "files", len(m.Files))
			if err := s.publish(m); err != nil {
				return err
			}
			s.published(ctx, m, 0)
			continue
		}
		s.cfg.Logger.Info("parquet sink: deleting an uncommitted staged epoch", attrEpoch, id)
		if err := s.drop(id); err != nil {
			return err
		}
	}
	return nil
}

// lastCommitted reads the manifest topic to its end and returns the id of
// the last epoch the instance committed ("" when none).
func (s *Sink) lastCommitted(ctx context.Context) (string, error) {
	cl, err := kgo.NewClient(append([]kgo.Opt{
		kgo.SeedBrokers(s.cfg.Brokers...),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.KeepControlRecords(),
	}, s.cfg.ClientOpts...)...)
	if err != nil {
		return "", fmt.Errorf("parquet: client: %w", err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	ends, err := kadm.NewClient(cl).ListEndOffsets(ctx, s.cfg.ManifestTopic)
	if err != nil {
		return "", fmt.Errorf("parquet: manifest end: %w", err)
	}
	end, ok := ends.Lookup(s.cfg.ManifestTopic, 0)
	if !ok || end.Err != nil {
		return "", fmt.Errorf("parquet: manifest end: %v", end.Err)
	}
	if end.Offset == 0 {
		return "", nil
	}
	// NB: read up to the high watermark, not the last stable offset: a
	// record this instance committed can lie past another instance's
	// open transaction, which read_committed fetches wait out.
	cl.AddConsumePartitions(map[string]map[int32]kgo.Offset{s.cfg.ManifestTopic: {0: kgo.NewOffset().AtStart()}})
	var last string
	for pos := int64(0); pos < end.Offset; {
		fetches := cl.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			return "", fmt.Errorf("parquet: read %s to offset %d: %w", s.cfg.ManifestTopic, end.Offset, err)
		}
		fetches.EachRecord(func(r *kgo.Record) {
			pos = max(pos, r.Offset+1)
			if r.Attrs.IsControl() || string(r.Key) != s.cfg.InstanceID {
				return
			}
			var m Manifest
			if json.Unmarshal(r.Value, &m) == nil {
				last = m.Epoch
			}
		})
	}
	return last, nil
}

func (s *Sink) assigned(_ context.Context, _ *kgo.Client, assigned map[string][]int32) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, p := range assigned[s.cfg.Topic] {
		if s.parts[p] == nil {
			s.parts[p] = &PartitionStatus{Partition: p, Committed: -1, End: -1}
		}
	}
}

func (s *Sink) released(_ context.Context, _ *kgo.Client, released map[string][]int32) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, p := range released[s.cfg.Topic] {
		delete(s.parts, p)
	}
}

// syncCommitted records the group's committed offsets of the owned
// partitions.
func (s *Sink) syncCommitted(committed map[string]map[int32]kgo.EpochOffset) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for p, o := range committed[s.cfg.Topic] {
		if ps := s.parts[p]; ps != nil && o.Offset >= 0 {
			ps.Committed = o.Offset
		}
	}
}

// seen records the last stable offset of a partition from a fetch.
func (s *Sink) seen(p int32, lso int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if ps := s.parts[p]; ps != nil && lso >= 0 {
		ps.End = lso
	}
}

// published records a published epoch in the status and the metrics.
func (s *Sink) published(ctx context.Context, m *Manifest, took time.Duration) {
	var rows, rejected, bytes int64
	for _, sp := range m.Spans {
		rows += int64(sp.Rows)
		rejected += int64(sp.Rejected)
	}
	for _, f := range m.Files {
		bytes += f.Bytes
	}
	s.mu.Lock()
	for _, sp := range m.Spans {
		if ps := s.parts[sp.Partition]; ps != nil {
			ps.Committed = sp.Next
		}
	}
	s.total.Epochs++
	s.total.Rows += rows
	s.total.Rejected += rejected
	s.total.Files += int64(len(m.Files))
	s.total.Bytes += bytes
	s.total.Last = m.Created
	s.mu.Unlock()
	s.m.rows.Add(ctx, rows)
	s.m.rejected.Add(ctx, rejected)
	s.m.files.Add(ctx, int64(len(m.Files)))
	s.m.bytes.Add(ctx, bytes)
	if took > 0 {
		s.m.epochSeconds.Record(ctx, took.Seconds())
	}
	s.cfg.Logger.Debug("parquet sink: epoch published", attrEpoch, m.Epoch, "rows", rows, "files", len(m.Files), "bytes", bytes)
}
