package topology

import (
	"context"
	"fmt"
	"slices"
)

// PartitionStatus is the progress of one assigned partition.
type PartitionStatus struct {
	Partition int32
	// Consumed is the next offset processed in memory; Committed the next
	// offset the store reflects; End the log end offset last seen (-1 when
	// unknown). All are -1 before the first record.
	Consumed, Committed, End int64
	CaughtUp                 bool
}

// Lag is End − Committed, or 0 when either is unknown.
func (s PartitionStatus) Lag() int64 {
	if s.End < 0 {
		return 0
	}
	return max(s.End-max(s.Committed, 0), 0)
}

// Status reports the partitions this member owns, in partition order.
func (r *Runner) Status() []PartitionStatus {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]PartitionStatus, 0, len(r.workers))
	for p, w := range r.workers {
		out = append(out, PartitionStatus{
			Partition: p,
			Consumed:  w.consumed.Load(),
			Committed: w.flushed.Load(),
			End:       w.hwm.Load(),
			CaughtUp:  w.caughtUp.Load(),
		})
	}
	slices.SortFunc(out, func(a, b PartitionStatus) int { return int(a.Partition - b.Partition) })
	return out
}

// Ready reports whether the member has joined its group and every
// partition it owns has caught up with the log (lag within ReadyLag) at
// least once since it was assigned. Partitions that have not seen a
// record yet are checked against the log end offsets.
func (r *Runner) Ready(ctx context.Context) (bool, error) {
	if !r.joined.Load() {
		return false, nil
	}
	r.mu.Lock()
	var pending []*worker
	for _, w := range r.workers {
		if !w.caughtUp.Load() {
			pending = append(pending, w)
		}
	}
	r.mu.Unlock()
	if len(pending) == 0 {
		return true, nil
	}
	ends, err := r.adm.ListEndOffsets(ctx, r.cfg.Topic)
	if err != nil {
		return false, fmt.Errorf("topology: list end offsets: %w", err)
	}
	ready := true
	for _, w := range pending {
		end, ok := ends.Lookup(r.cfg.Topic, w.partition)
		if !ok || end.Err != nil {
			return false, nil
		}
		if end.Offset-max(w.flushed.Load(), 0) <= r.cfg.ReadyLag {
			w.caughtUp.Store(true)
			continue
		}
		ready = false
	}
	return ready, nil
}
