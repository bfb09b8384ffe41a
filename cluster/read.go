package cluster

import (
	"context"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kappa-stream/kappa/topology"
)

// ReadInstances reads the directory topic once, to its end, and returns
// the base URL of every advertised instance by instance id. Instances
// that stopped stay listed until a tombstone withdraws them (see
// Directory.Members), so a caller must expect some not to answer.
func ReadInstances(ctx context.Context, brokers []string, topic string, opts ...kgo.Opt) (map[string]string, error) {
	out := make(map[string]string)
	err := topology.ReadTopic(ctx, brokers, topic, func(r *kgo.Record) {
		id := string(r.Key)
		if r.Value == nil {
			delete(out, id)
			return
		}
		if inst, err := decodeRecord(id, r.Value); err == nil {
			out[id] = inst.url
		}
	}, opts...)
	return out, err
}
