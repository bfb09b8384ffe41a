package replay

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kappa-stream/kappa/cluster"
	"github.com/kappa-stream/kappa/control"
	"github.com/kappa-stream/kappa/events"
	"github.com/kappa-stream/kappa/processors"
	"github.com/kappa-stream/kappa/processors/example"
	"github.com/kappa-stream/kappa/state"
	"github.com/kappa-stream/kappa/topology"
)

// TestPoisonRecords writes what must not stop a version: garbage on the
// repartition topic (empty, of an unknown format, malformed) and listens
// whose ts lies in year 9999. The garbage goes to the repartition
// topic's dead letters with its source, the far-future listens to
// listens.dlq with their reason, and the version counts every other
// listen exactly. Without the stage-2 dead-letter topic the garbage
// fails the version (it is retried and fails again, forever); without
// the max-future check the count includes the year-9999 listens.
func TestPoisonRecords(t *testing.T) {
	const partitions = 3
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(partitions, "listens", "listens.dlq"),
		kfake.GroupMinSessionTimeout(time.Second))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	brokers := c.ListenAddrs()
	for _, topic := range []struct {
		name string
		n    int32
		cfg  map[string]string
	}{{"kappa.control", control.TopicPartitions, control.TopicConfigs()}, {"kappa.instances", cluster.TopicPartitions, cluster.TopicConfigs()}} {
		if err := c.CreateTopic(topic.name, topic.n, topic.cfg); err != nil {
			t.Fatal(err)
		}
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.DefaultProduceTopic("listens"),
		kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	dir, err := cluster.New(cluster.Config{Brokers: brokers, Topic: "kappa.instances", InstanceID: "a", HTTP: "http://127.0.0.1:1"})
	if err != nil {
		t.Fatal(err)
	}
	f, err := control.NewFollower(brokers, "kappa.control", nil)
	if err != nil {
		t.Fatal(err)
	}
	specs := []processors.Spec{example.Spec}
	declare := processors.NewConfig(specs)
	if err := json.Unmarshal([]byte(`{"example":true}`), &declare); err != nil {
		t.Fatal(err)
	}
	rt := NewRuntime(RuntimeConfig{
		Data: t.TempDir(), Input: "listens", DLQ: "listens.dlq", Partitions: partitions, ControlTopic: "kappa.control",
		Specs: specs, Declare: declare, Version: "v1",
		Stage:     topology.Config{Brokers: brokers, InstanceID: "a", CommitInterval: 50 * time.Millisecond, SessionTimeout: time.Second},
		StoreOpts: []state.Opt{state.WithFS(vfs.NewMem())},
		Admin:     kadm.NewClient(cl), Client: cl, Directory: dir, RetryAfter: 100 * time.Millisecond,
	})
	done := make(chan error, 3)
	go func() { done <- f.Run(ctx) }()
	go func() { done <- dir.Run(ctx) }()
	go func() { done <- rt.Run(ctx, f) }()

	produce := func(recs ...*kgo.Record) {
		t.Helper()
		if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	listens := func(from, n int, ts string) []*kgo.Record {
		recs := make([]*kgo.Record, n)
		for i := range recs {
			u := from + i + 1
			recs[i] = &kgo.Record{Partition: int32(u % partitions), Key: fmt.Appendf(nil, "%d", u), Value: fmt.Appendf(nil,
				`{"user_id":%d,"song_id":1,"artist_id":1,"ts":%q,"country":"SE"}`, u, ts)}
		}
		return recs
	}
	count := func() int64 {
		b, err := rt.Backend("v1")
		if err != nil {
			return -1
		}
		loc := b.Rollups.Locate([]byte("SE"))
		if loc.Store == nil {
			return -1
		}
		defer loc.Release()
		n, err := example.Count(loc.Store, events.Country{'S', 'E'})
		if err != nil {
			t.Fatal(err)
		}
		return int64(n)
	}
	now := time.Now().UTC()
	produce(listens(0, 100, now.Add(-time.Hour).Format(time.RFC3339))...)
	waitFor(t, done, "v1 counts 100 listens", func() bool { return count() == 100 }, rt.Status)

	deltas := NamesOf("", control.Version{Name: "v1", Repartition: Repartition})
	produce(listens(100, 3, "9999-12-31T23:59:59Z")...)
	produce(listens(103, 2, now.Add(23*time.Hour).Format(time.RFC3339))...)
	produce(
		&kgo.Record{Topic: deltas.Deltas, Partition: 0, Value: []byte{}},
		&kgo.Record{Topic: deltas.Deltas, Partition: 1, Value: []byte{0x01, 2, 3}},
		&kgo.Record{Topic: deltas.Deltas, Partition: 2, Value: []byte{0x7e, 'S'}},
	)
	produce(listens(105, 50, now.Add(-time.Minute).Format(time.RFC3339))...)
	waitFor(t, done, "v1 counts the 152 listens of the near past and future", func() bool { return count() == 152 }, rt.Status)
	for _, v := range rt.Status().Versions {
		if v.Failed != nil {
			t.Fatalf("version %s failed: %s", v.Version, v.Failed.Error)
		}
	}

	dead := committedRecords(t, brokers, "listens.dlq", 3)
	for _, d := range dead {
		if h := header(d, topology.HeaderError); !strings.Contains(h, events.ReasonFuture) {
			t.Errorf("listens.dlq record %s with reason %q", d.Value, h)
		}
	}
	dead = committedRecords(t, brokers, deltas.DeltasDLQ, 3)
	sources := map[string]bool{}
	for _, d := range dead {
		sources[header(d, topology.HeaderSource)] = true
		if header(d, topology.HeaderError) == "" {
			t.Errorf("dead letter %x without a reason", d.Value)
		}
	}
	for p := range partitions {
		if src := fmt.Sprintf("%s/%d/", deltas.Deltas, p); !hasPrefix(sources, src) {
			t.Errorf("no dead letter from %s…: sources %v", src, sources)
		}
	}
	// Still exact after them: the count goes on.
	produce(listens(155, 10, now.Format(time.RFC3339))...)
	waitFor(t, done, "v1 counts 162 listens", func() bool { return count() == 162 }, rt.Status)
}

func header(r *kgo.Record, key string) string {
	for _, h := range r.Headers {
		if h.Key == key {
			return string(h.Value)
		}
	}
	return ""
}

func hasPrefix(set map[string]bool, prefix string) bool {
	for s := range set {
		if strings.HasPrefix(s, prefix) {
			return true
		}
	}
	return false
}

// committedRecords waits until topic holds want committed records and
// returns them.
func committedRecords(t *testing.T, brokers []string, topic string, want int) []*kgo.Record {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.ConsumeTopics(topic),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	var out []*kgo.Record
	for len(out) < want {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("%s: %d committed records, want %d", topic, len(out), want)
		}
		out = append(out, fs.Records()...)
	}
	if len(out) != want {
		t.Fatalf("%s: %d committed records, want %d", topic, len(out), want)
	}
	return out
}
