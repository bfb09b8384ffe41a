package main

import (
	"context"
	"errors"
	"fmt"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
)

// readyLag is the lag, in records of each stage, within which a version
// counts as caught up (kappa status; kappa replay's default --max-lag).
const readyLag = 1000

// progress is how far a version's consumer groups are, from the offsets
// they committed with their state.
type progress struct {
	// listensCommitted is the sum over the listens partitions of the
	// offsets stage 1 committed (the log start where it has none).
	listensCommitted int64
	// listensLag and deltasLag are the records each stage has still to
	// process (offsets, transaction markers included).
	listensLag, deltasLag int64
}

// ready reports whether both stages are within maxLag of their inputs.
func (p progress) ready(maxLag int64) bool {
	return p.listensLag <= maxLag && p.deltasLag <= maxLag
}

// progressOf reads the progress of version n's groups now.
func progressOf(ctx context.Context, adm *kadm.Client, n names) (progress, error) {
	var p progress
	var err error
	if p.listensCommitted, p.listensLag, err = groupProgress(ctx, adm, n.usersGroup, topicListens); err != nil {
		return p, err
	}
	_, p.deltasLag, err = groupProgress(ctx, adm, n.aggregatesGroup, n.deltas)
	return p, err
}

// groupProgress sums, over the partitions of topic, the offsets group has
// committed (the log start where it has none) and its lag behind the end.
func groupProgress(ctx context.Context, adm *kadm.Client, group, topic string) (committed, lag int64, err error) {
	starts, err := adm.ListStartOffsets(ctx, topic)
	if err == nil {
		err = starts.Error()
	}
	if err != nil {
		return 0, 0, fmt.Errorf("list start offsets of %s: %w", topic, err)
	}
	ends, err := adm.ListEndOffsets(ctx, topic)
	if err == nil {
		err = ends.Error()
	}
	if err != nil {
		return 0, 0, fmt.Errorf("list end offsets of %s: %w", topic, err)
	}
	commits, err := fetchOffsets(ctx, adm, group)
	if err != nil {
		return 0, 0, err
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
	})
	return committed, lag, nil
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
