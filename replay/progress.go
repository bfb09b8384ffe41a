package replay

import (
	"context"
	"errors"
	"fmt"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
)

// ReadyLag is the lag, in listens, within which a version's stage 1
// counts as caught up (kappa status; kappa replay's default --max-lag).
const ReadyLag = 1000

// ReadyDeltasIntervals is the lag of stage 2, in commit intervals of
// stage 1, within which it counts as caught up: each listens partition
// sends at most one repartition record to each stage-2 partition per
// interval (plus a transaction marker).
const ReadyDeltasIntervals = 3

// Progress is how far a version's consumer groups are, from the offsets
// they committed with their state.
type Progress struct {
	// ListensCommitted is the sum over the listens partitions of the
	// offsets stage 1 committed (the log start where it has none).
	ListensCommitted int64
	// ListensLag and DeltasLag are the records each stage has still to
	// process (offsets, transaction markers included).
	ListensLag, DeltasLag int64
	// DeltasLagMax is the largest lag of one repartition partition.
	DeltasLagMax int64
	// ListensPartitions is the number of listens partitions.
	ListensPartitions int
	// Started is false until the instances have created the version's
	// repartition topic (they start a version when they read it in the
	// control topic); the lags of stage 2 are 0 until then.
	Started bool
}

// Ready reports whether stage 1 is within maxLag listens of the log's end,
// and stage 2 within ReadyDeltasIntervals of stage 1's output.
func (p Progress) Ready(maxLag int64) bool {
	return p.Started && p.ListensLag <= maxLag && p.DeltasLagMax <= int64(ReadyDeltasIntervals*2*p.ListensPartitions)
}

// ProgressOf reads the progress of version n's groups now; input is the
// topic of stage 1 (listens).
func ProgressOf(ctx context.Context, adm *kadm.Client, n Names, input string) (Progress, error) {
	var p Progress
	var err error
	if p.ListensCommitted, p.ListensLag, _, p.ListensPartitions, err = groupProgress(ctx, adm, n.UsersGroup, input); err != nil {
		return p, err
	}
	_, p.DeltasLag, p.DeltasLagMax, _, err = groupProgress(ctx, adm, n.AggregatesGroup, n.Deltas)
	if errors.Is(err, kerr.UnknownTopicOrPartition) {
		return p, nil
	}
	p.Started = err == nil
	return p, err
}

// groupProgress sums, over the partitions of topic, the offsets group has
// committed (the log start where it has none) and its lag behind the end;
// maxLag is the largest lag of one partition.
func groupProgress(ctx context.Context, adm *kadm.Client, group, topic string) (committed, lag, maxLag int64, partitions int, err error) {
	starts, err := adm.ListStartOffsets(ctx, topic)
	if err == nil {
		err = starts.Error()
	}
	if err != nil {
		return 0, 0, 0, 0, fmt.Errorf("list start offsets of %s: %w", topic, err)
	}
	ends, err := adm.ListEndOffsets(ctx, topic)
	if err == nil {
		err = ends.Error()
	}
	if err != nil {
		return 0, 0, 0, 0, fmt.Errorf("list end offsets of %s: %w", topic, err)
	}
	commits, err := fetchOffsets(ctx, adm, group)
	if err != nil {
		return 0, 0, 0, 0, err
	}
	ends.Each(func(end kadm.ListedOffset) {
		at := int64(0)
		if s, ok := starts.Lookup(topic, end.Partition); ok {
			at = s.Offset
		}
		if c, ok := commits.Lookup(topic, end.Partition); ok && c.At >= 0 {
			at = max(at, c.At)
		}
		committed += at
		lag += max(end.Offset-at, 0)
		maxLag = max(maxLag, end.Offset-at)
		partitions++
	})
	return committed, lag, maxLag, partitions, nil
}

// fetchOffsets is the offsets group has committed; none when the group
// does not exist (yet).
func fetchOffsets(ctx context.Context, adm *kadm.Client, group string) (kadm.OffsetResponses, error) {
	commits, err := adm.FetchOffsets(ctx, group)
	if err == nil {
		err = commits.Error()
	}
	switch {
	case errors.Is(err, kerr.GroupIDNotFound):
		return kadm.OffsetResponses{}, nil
	case err != nil:
		return nil, fmt.Errorf("group %s: offsets: %w", group, err)
	}
	return commits, nil
}
