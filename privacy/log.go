package privacy

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kappa-stream/kappa/topology"
)

// Stream is one of the two logs of the service.
type Stream uint8

const (
	// Releases holds the drawn releases, the latest per id.
	Releases Stream = iota
	// Audit holds charges, refunds and answers, in order, for good.
	Audit
)

func (s Stream) String() string {
	if s == Audit {
		return "audit"
	}
	return "releases"
}

// Entry is one record of a stream.
type Entry struct {
	Stream     Stream
	Key, Value []byte
}

// Log keeps the service's streams durably. The service calls it from one
// goroutine at a time.
type Log interface {
	// Append writes entries and returns once they are durable (a later
	// Sync, also on another instance or after a restart, delivers them).
	Append(ctx context.Context, entries ...Entry) error
	// Sync delivers, in order per stream, every entry appended before it
	// was called (by anyone) that it has not delivered yet.
	Sync(ctx context.Context, fn func(Entry)) error
}

// Topic names.
const (
	ReleasesTopic = "kappa.dp-releases"
	AuditTopic    = "kappa.dp-audit"
)

// Topics are the topics of a KafkaLog, to provision: one partition each
// (a total order), the releases compacted (the latest per id, for as
// long as the cluster runs), the audit kept for good.
func Topics() []topology.TopicSpec {
	return []topology.TopicSpec{
		{Name: ReleasesTopic, Partitions: 1, Configs: map[string]string{"cleanup.policy": "compact"}},
		{Name: AuditTopic, Partitions: 1, Configs: map[string]string{"retention.ms": "-1", "retention.bytes": "-1"}},
	}
}

// KafkaLog is a Log on the topics of Topics.
type KafkaLog struct {
	cl   *kgo.Client
	adm  *kadm.Client
	next map[string]int64 // the next offset to deliver per topic
}

// NewKafkaLog returns a log on brokers; opts are extra franz-go options
// (SASL, TLS, hooks). Close releases its client.
func NewKafkaLog(brokers []string, opts ...kgo.Opt) (*KafkaLog, error) {
	start := kgo.NewOffset().AtStart()
	opts = append([]kgo.Opt{
		kgo.SeedBrokers(brokers...),
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{ReleasesTopic: {0: start}, AuditTopic: {0: start}}),
		kgo.FetchMaxWait(200 * time.Millisecond),
		kgo.RequiredAcks(kgo.AllISRAcks()),
	}, opts...)
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return nil, fmt.Errorf("privacy: client: %w", err)
	}
	return &KafkaLog{cl: cl, adm: kadm.NewClient(cl), next: map[string]int64{ReleasesTopic: 0, AuditTopic: 0}}, nil
}

// Close closes the client.
func (l *KafkaLog) Close() { l.cl.Close() }

func topicOf(s Stream) string {
	if s == Audit {
		return AuditTopic
	}
	return ReleasesTopic
}

// Append implements Log: it waits for the brokers' acknowledgement.
func (l *KafkaLog) Append(ctx context.Context, entries ...Entry) error {
	recs := make([]*kgo.Record, len(entries))
	for i, e := range entries {
		recs[i] = &kgo.Record{Topic: topicOf(e.Stream), Key: e.Key, Value: e.Value}
	}
	if err := l.cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		return fmt.Errorf("privacy: append: %w", err)
	}
	return nil
}

// Sync implements Log: it reads both topics up to their end offsets as
// of the call.
func (l *KafkaLog) Sync(ctx context.Context, fn func(Entry)) error {
	ends, err := l.adm.ListEndOffsets(ctx, ReleasesTopic, AuditTopic)
	if err != nil {
		return fmt.Errorf("privacy: list end offsets: %w", err)
	}
	want := map[string]int64{}
	for _, t := range []string{ReleasesTopic, AuditTopic} {
		o, ok := ends.Lookup(t, 0)
		if !ok {
			return fmt.Errorf("privacy: topic %s has no partition 0", t)
		}
		if o.Err != nil {
			return fmt.Errorf("privacy: end offset of %s: %w", t, o.Err)
		}
		want[t] = o.Offset
	}
	behind := func() bool {
		return l.next[ReleasesTopic] < want[ReleasesTopic] || l.next[AuditTopic] < want[AuditTopic]
	}
	for behind() {
		fetches := l.cl.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("privacy: sync: %w", err)
		}
		var ferr error
		fetches.EachError(func(t string, p int32, err error) {
			ferr = errors.Join(ferr, fmt.Errorf("%s/%d: %w", t, p, err))
		})
		if ferr != nil {
			return fmt.Errorf("privacy: fetch: %w", ferr)
		}
		fetches.EachRecord(func(r *kgo.Record) {
			if r.Offset < l.next[r.Topic] {
				return
			}
			l.next[r.Topic] = r.Offset + 1
			s := Releases
			if r.Topic == AuditTopic {
				s = Audit
			}
			fn(Entry{Stream: s, Key: r.Key, Value: r.Value})
		})
	}
	return nil
}
