package topology

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// FollowTopic reads partition 0 of a one-partition topic (a compacted
// table every instance follows: the control topic, the API keys) from
// its start until ctx ends, calling apply with each record in offset
// order and synced once every record the topic held when it started has
// been applied (at once when it was empty). client is the franz-go client
// configuration (seed brokers, TLS, SASL); maxWait bounds a fetch's wait
// for new records. Broker errors are logged as what's and retried; it
// returns an error only when the client cannot be made, nil when ctx
// ends.
func FollowTopic(ctx context.Context, topic, what string, client []kgo.Opt, maxWait time.Duration, logger *slog.Logger,
	apply func(*kgo.Record), synced func()) error {
	cl, err := kgo.NewClient(append([]kgo.Opt{
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: {0: kgo.NewOffset().AtStart()}}),
		kgo.FetchMaxWait(maxWait),
	}, client...)...)
	if err != nil {
		return err
	}
	defer cl.Close()
	end := followEnd(ctx, kadm.NewClient(cl), topic, what, logger)
	if end == 0 {
		synced()
	}
	for {
		fetches := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			return nil
		}
		fetches.EachError(func(_ string, _ int32, err error) {
			logger.Warn("reading the "+what+" failed; retrying", attrTopic, topic, "err", err)
		})
		fetches.EachRecord(func(r *kgo.Record) {
			apply(r)
			if r.Offset+1 >= end {
				synced()
			}
		})
	}
}

// followEnd is topic's end offset when FollowTopic starts, retried until
// it is known or ctx ends.
func followEnd(ctx context.Context, adm *kadm.Client, topic, what string, logger *slog.Logger) int64 {
	backoff := 100 * time.Millisecond
	for {
		ends, err := adm.ListEndOffsets(ctx, topic)
		if err == nil {
			if o, ok := ends.Lookup(topic, 0); ok && o.Err == nil {
				return o.Offset
			} else if ok {
				err = o.Err
			} else {
				err = errors.New("partition 0 missing from the answer")
			}
		}
		if ctx.Err() != nil {
			return 0
		}
		logger.Warn("listing the "+what+"'s end offset failed; retrying", attrTopic, topic, "err", err)
		select {
		case <-ctx.Done():
			return 0
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 5*time.Second)
	}
}
