package topology

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kappa-stream/kappa/state"
)

// restoreBatch is how many changelog records go into one store batch.
const restoreBatch = 64 << 10

// restoreIdle is how long a restore waits without a record before it
// checks whether it has read everything there is.
const restoreIdle = time.Second

// restoreIdleRounds is how many polls in a row (of restoreIdle each) a
// restore waits without records below the changelog's end before it
// takes everything as read.
const restoreIdleRounds = 5

// restore opens the partition's store and replays its changelog partition
// from the offset the store reflects up to the changelog's last stable
// offset. A store whose offset lies outside the changelog (the topic was
// recreated or truncated) is wiped and rebuilt from the start.
//
// The store may lie past the last stable offset without being ahead of
// the changelog: an open transaction (a zombie's, which will abort)
// holds the last stable offset below records this partition's owners
// committed after it. So "ahead" is judged against the high watermark;
// such a store has nothing to replay.
func (w *worker) restore() (*state.Store, error) {
	ctx := w.ctx
	topic, p := w.r.cfg.Changelog, w.partition
	dir := w.storeDir()
	s, err := state.Open(dir, w.r.cfg.StoreOpts...)
	if err != nil {
		return nil, err
	}
	from, ok, err := s.Offset(topic, p)
	if err != nil {
		s.Close()
		return nil, err
	}
	start, stable, high, err := w.changelogBounds(ctx)
	if err != nil {
		s.Close()
		return nil, err
	}
	if ok && (from < start || from > high) {
		w.r.cfg.Logger.Warn("store does not match its changelog; rebuilding it", attrTopic, topic, attrPartition, p,
			"store_offset", from, "changelog_start", start, "changelog_end", high)
		if err := s.Close(); err != nil {
			return nil, err
		}
		if err := os.RemoveAll(dir); err != nil {
			return nil, fmt.Errorf("topology: wipe %s: %w", dir, err)
		}
		if s, err = state.Open(dir, w.r.cfg.StoreOpts...); err != nil {
			return nil, err
		}
		ok = false
	}
	if !ok {
		from = start
	}
	w.restoreTotal.Store(max(stable-from, 0))
	if err := w.replayTo(ctx, s, from, stable); err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

// catchUp replays into s what its changelog partition committed since
// the restore: called once the group's offsets of the partition are
// stable, it brings in the changes of a transaction that was still open
// during the restore and committed with the input offsets the task
// resumes from (a zombie's that committed late).
func (w *worker) catchUp(s *state.Store) error {
	from, ok, err := s.Offset(w.r.cfg.Changelog, w.partition)
	if err != nil {
		return err
	}
	_, stable, _, err := w.changelogBounds(w.ctx)
	if err != nil {
		return err
	}
	if !ok || from >= stable {
		return nil
	}
	w.restoreTotal.Add(stable - from)
	return w.replayTo(w.ctx, s, from, stable)
}

// replayTo replays the changelog into s from from to end and logs it.
func (w *worker) replayTo(ctx context.Context, s *state.Store, from, end int64) error {
	if from >= end {
		return nil
	}
	began := time.Now()
	n, err := w.replay(ctx, s, from, end)
	if err != nil {
		return err
	}
	w.r.m.restored.Add(ctx, n, w.attrs)
	w.r.cfg.Logger.Info("store restored from changelog", attrTopic, w.r.cfg.Changelog, attrPartition, w.partition,
		"from", from, "to", end, "records", n, "took", time.Since(began).Round(time.Millisecond))
	return nil
}

// stableGroupOffset is the group's committed offset of the partition
// once no transaction holds an offset commit of it open (OffsetFetch
// with require_stable, retried while the broker answers
// UNSTABLE_OFFSET_COMMIT); ok is false when the group has none.
func (w *worker) stableGroupOffset() (int64, bool, error) {
	for {
		req := kmsg.NewPtrOffsetFetchRequest()
		req.Group = w.r.cfg.Group
		req.RequireStable = true
		rt := kmsg.NewOffsetFetchRequestTopic()
		rt.Topic = w.r.cfg.Topic
		rt.Partitions = []int32{w.partition}
		req.Topics = append(req.Topics, rt)
		resp, err := req.RequestWith(w.ctx, w.cl)
		if err != nil {
			return 0, false, errSession{fmt.Errorf("topology: fetch offsets of %s: %w", w.r.cfg.Group, err)}
		}
		code := resp.ErrorCode
		var at int64 = -1
		for _, t := range resp.Topics {
			for _, p := range t.Partitions {
				if t.Topic == w.r.cfg.Topic && p.Partition == w.partition {
					code = max(code, p.ErrorCode)
					at = p.Offset
				}
			}
		}
		switch err := kerr.ErrorForCode(code); {
		case err == nil:
			return at, at >= 0, nil
		case errors.Is(err, kerr.UnstableOffsetCommit) || kerr.IsRetriable(err):
			select {
			case <-w.ctx.Done():
				return 0, false, w.ctx.Err()
			case <-time.After(100 * time.Millisecond):
			}
		default:
			return 0, false, errSession{fmt.Errorf("topology: fetch offsets of %s: %w", w.r.cfg.Group, err)}
		}
	}
}

// changelogBounds are the changelog partition's start, last stable
// offset and high watermark.
func (w *worker) changelogBounds(ctx context.Context) (start, stable, high int64, err error) {
	adm := kadm.NewClient(w.cl)
	topic, p := w.r.cfg.Changelog, w.partition
	starts, err := adm.ListStartOffsets(ctx, topic)
	if err == nil {
		err = starts.Error()
	}
	if err != nil {
		return 0, 0, 0, errSession{fmt.Errorf("topology: changelog %s start offsets: %w", topic, err)}
	}
	so, ok := starts.Lookup(topic, p)
	if !ok {
		return 0, 0, 0, fmt.Errorf("topology: changelog %s has no partition %d: it must be partitioned like %s", topic, p, w.r.cfg.Topic)
	}
	ends, err := adm.ListEndOffsets(ctx, topic)
	if err == nil {
		err = ends.Error()
	}
	if err != nil {
		return 0, 0, 0, errSession{fmt.Errorf("topology: changelog %s end offsets: %w", topic, err)}
	}
	he, ok := ends.Lookup(topic, p)
	if !ok {
		return 0, 0, 0, fmt.Errorf("topology: changelog %s has no partition %d", topic, p)
	}
	stable, err = w.stableEnd(ctx, adm)
	return so.Offset, stable, he.Offset, err
}

// stableEnd is the changelog partition's last stable offset: everything
// before it belongs to finished transactions.
func (w *worker) stableEnd(ctx context.Context, adm *kadm.Client) (int64, error) {
	topic, p := w.r.cfg.Changelog, w.partition
	ends, err := adm.ListCommittedOffsets(ctx, topic)
	if err == nil {
		err = ends.Error()
	}
	if err != nil {
		return 0, errSession{fmt.Errorf("topology: changelog %s end offsets: %w", topic, err)}
	}
	eo, ok := ends.Lookup(topic, p)
	if !ok {
		return 0, fmt.Errorf("topology: changelog %s has no partition %d", topic, p)
	}
	return eo.Offset, nil
}

// replay copies the committed changelog records in [from, end) into s, in
// batches that each record the changelog offset they reach.
func (w *worker) replay(ctx context.Context, s *state.Store, from, end int64) (int64, error) {
	topic, p := w.r.cfg.Changelog, w.partition
	cl, err := kgo.NewClient(append([]kgo.Opt{
		kgo.SeedBrokers(w.r.cfg.Brokers...),
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: {p: kgo.NewOffset().At(from)}}),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.KeepControlRecords(),
		kgo.FetchMaxBytes(32 << 20),
		kgo.FetchMaxPartitionBytes(32 << 20),
		kgo.WithLogger(kgoLogger{w.r.cfg.Logger}),
	}, w.r.cfg.ClientOpts...)...)
	if err != nil {
		return 0, fmt.Errorf("topology: restore client: %w", err)
	}
	defer cl.Close()
	var (
		n    int64
		idle int // polls in a row without records
		next = from
		b    = s.NewBatch()
		inB  int
	)
	defer func() { b.Close() }()
	commit := func() error {
		if err := b.SetOffset(topic, p, next); err != nil {
			return err
		}
		if err := b.Commit(false); err != nil {
			return err
		}
		b, inB = s.NewBatch(), 0
		w.restoreDone.Store(next - from)
		return nil
	}
	for next < end {
		pollCtx, cancel := context.WithTimeout(ctx, restoreIdle)
		fetches := cl.PollFetches(pollCtx)
		cancel()
		if ctx.Err() != nil {
			return n, ctx.Err()
		}
		var fetchErr, storeErr error
		fetches.EachError(func(_ string, _ int32, err error) {
			if !errors.Is(err, context.DeadlineExceeded) && fetchErr == nil {
				fetchErr = err
			}
		})
		if fetchErr != nil {
			w.r.cfg.Logger.Warn("changelog fetch error during restore", attrTopic, topic, attrPartition, p, "err", fetchErr)
		}
		got := 0
		fetches.EachRecord(func(rec *kgo.Record) {
			got++
			next = rec.Offset + 1
			if rec.Offset >= end || rec.Attrs.IsControl() {
				return
			}
			var err error
			if rec.Value == nil {
				err = b.Delete(rec.Key)
			} else {
				err = b.Set(rec.Key, rec.Value)
			}
			if err != nil && storeErr == nil {
				storeErr = err
			}
			n++
			inB++
		})
		if storeErr != nil {
			return n, fmt.Errorf("topology: restore %s/%d: %w", topic, p, storeErr)
		}
		if got > 0 && fetchErr != nil {
			// NB: the broker may be back by the next session.
			return n, errSession{fmt.Errorf("topology: restore %s/%d: %w", topic, p, fetchErr)}
		}
		if inB >= restoreBatch {
			if err := commit(); err != nil {
				return n, err
			}
		}
		if got > 0 {
			idle = 0
			continue
		}
		// NB: the last records before end can be an aborted
		// transaction's, whose marker lies past end: nothing more will
		// come below end. The consumer fetches up to the last stable
		// offset, so once it stays idle and that offset has not moved,
		// everything there is has been read. Idle means several polls
		// in a row: one poll without records can be a fetch that a
		// loaded broker or machine answered late, and taking it for
		// the end left the store without every record in between.
		idle++
		lso, err := w.stableEnd(ctx, kadm.NewClient(cl))
		if err != nil {
			return n, err
		}
		if lso != end {
			idle = 0
		} else if idle >= restoreIdleRounds {
			w.r.cfg.Logger.Warn("changelog idle below its end during restore; taking it as read", attrTopic, topic, attrPartition, p,
				"at", next, "end", end)
			next = end
		}
	}
	next = min(next, end)
	if err := commit(); err != nil {
		return n, err
	}
	return n, nil
}
