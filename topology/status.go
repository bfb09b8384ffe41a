package topology

import (
	"context"
	"fmt"
	"slices"

	"github.com/kappa-stream/kappa/state"
)

// PartitionStatus is the progress of one assigned partition.
type PartitionStatus struct {
	Partition int32 `json:"partition"`
	// Restoring is true while the store replays its changelog;
	// RestoreDone of RestoreTotal records are replayed.
	Restoring    bool  `json:"restoring"`
	RestoreDone  int64 `json:"restore_done"`
	RestoreTotal int64 `json:"restore_total"`
	// Consumed is the next offset processed in memory; Committed the next
	// offset committed with the state; End the last stable offset last
	// seen. Each is -1 while unknown.
	Consumed  int64 `json:"consumed"`
	Committed int64 `json:"committed"`
	End       int64 `json:"end"`
	CaughtUp  bool  `json:"caught_up"`
}

// Lag is End − Committed, or 0 when either is unknown.
func (s PartitionStatus) Lag() int64 {
	if s.End < 0 {
		return 0
	}
	return max(s.End-max(s.Committed, 0), 0)
}

// RestoreRemaining is the number of changelog records still to replay.
func (s PartitionStatus) RestoreRemaining() int64 {
	if !s.Restoring {
		return 0
	}
	return max(s.RestoreTotal-s.RestoreDone, 0)
}

// Status reports the partitions this member owns, in partition order.
func (r *Runner) Status() []PartitionStatus {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]PartitionStatus, 0, len(r.workers))
	for p, w := range r.workers {
		committed := w.committed.Load()
		if w.ready.Load() {
			committed = w.committedOffset()
		}
		out = append(out, PartitionStatus{
			Partition:    p,
			Restoring:    !w.ready.Load(),
			RestoreDone:  w.restoreDone.Load(),
			RestoreTotal: w.restoreTotal.Load(),
			Consumed:     w.consumed.Load(),
			Committed:    committed,
			End:          w.end.Load(),
			CaughtUp:     w.caughtUp.Load(),
		})
	}
	slices.SortFunc(out, func(a, b PartitionStatus) int { return int(a.Partition - b.Partition) })
	return out
}

// Store gives read access to the store of partition p when this member
// owns p and the store is restored. The caller calls release when done;
// until then the store stays open.
func (r *Runner) Store(p int32) (s *state.Store, release func(), ok bool) {
	w := r.worker(p)
	if w == nil {
		return nil, nil, false
	}
	return w.readStore()
}

// Ready reports whether the member has joined its group and every
// partition it owns is restored and has caught up with the log (lag
// within ReadyLag) at least once since it was assigned. Partitions that
// have not seen a record yet are checked against the last stable offsets.
func (r *Runner) Ready(ctx context.Context) (bool, error) {
	if !r.joined.Load() {
		return false, nil
	}
	r.mu.Lock()
	adm := r.adm
	var pending []*worker
	for _, w := range r.workers {
		if !w.ready.Load() {
			r.mu.Unlock()
			return false, nil
		}
		if !w.caughtUp.Load() {
			pending = append(pending, w)
		}
	}
	r.mu.Unlock()
	if len(pending) == 0 {
		return true, nil
	}
	ends, err := adm.ListCommittedOffsets(ctx, r.cfg.Topic)
	if err != nil {
		return false, fmt.Errorf("topology: list end offsets: %w", err)
	}
	ready := true
	for _, w := range pending {
		end, ok := ends.Lookup(r.cfg.Topic, w.partition)
		if !ok || end.Err != nil {
			return false, nil
		}
		if end.Offset-max(w.committedOffset(), 0) <= r.cfg.ReadyLag {
			w.caughtUp.Store(true)
			continue
		}
		ready = false
	}
	return ready, nil
}
