package cluster

import (
	"context"
	"fmt"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// ReadInstances reads the directory topic once, to its end, and returns
// the base URL of every advertised instance by instance id. Instances
// that stopped stay listed until a tombstone withdraws them (see
// Directory.Members), so a caller must expect some not to answer.
func ReadInstances(ctx context.Context, brokers []string, topic string, opts ...kgo.Opt) (map[string]string, error) {
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(brokers...)}, opts...)...)
	if err != nil {
		return nil, fmt.Errorf("cluster: client: %w", err)
	}
	defer cl.Close()
	ends, err := kadm.NewClient(cl).ListEndOffsets(ctx, topic)
	if err == nil {
		err = ends.Error()
	}
	if err != nil {
		return nil, fmt.Errorf("cluster: end offsets of %s: %w", topic, err)
	}
	remaining := map[int32]int64{}
	from := map[int32]kgo.Offset{}
	ends.Each(func(o kadm.ListedOffset) {
		if o.Offset > 0 {
			remaining[o.Partition] = o.Offset
			from[o.Partition] = kgo.NewOffset().AtStart()
		}
	})
	out := make(map[string]string)
	if len(remaining) == 0 {
		return out, nil
	}
	cl.AddConsumePartitions(map[string]map[int32]kgo.Offset{topic: from})
	for len(remaining) > 0 {
		fetches := cl.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			return nil, fmt.Errorf("cluster: read %s: %w", topic, err)
		}
		fetches.EachRecord(func(r *kgo.Record) {
			if r.Offset+1 >= remaining[r.Partition] {
				delete(remaining, r.Partition)
			}
			id := string(r.Key)
			if r.Value == nil {
				delete(out, id)
				return
			}
			if inst, err := decodeRecord(id, r.Value); err == nil {
				out[id] = inst.url
			}
		})
	}
	return out, nil
}
