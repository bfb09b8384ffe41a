package replay

import (
	"context"
	"encoding/json"
	"errors"
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
	"github.com/kappa-stream/kappa/serve"
	"github.com/kappa-stream/kappa/state"
	"github.com/kappa-stream/kappa/topology"
)

// boomSpec is a processor whose stage 1 panics on every listen when its
// option is set: a processor's bug in one version.
var boomSpec = processors.Spec{Name: "boom", Formats: []byte{0x7f}, Tables: []byte{0x7f},
	Options: func() processors.Options { return &boomOptions{} }}

type boomOptions struct {
	Boom bool `json:"boom"`
}

func (o *boomOptions) Enabled() bool                                    { return o.Boom }
func (o *boomOptions) Validate() error                                  { return nil }
func (o *boomOptions) New(processors.Env) (processors.Processor, error) { return boom{}, nil }

type boom struct{}

func (boom) NewStage1(int32, *state.Store) (processors.Stage1, error) { return boom{}, nil }
func (boom) NewStage2(int32, *state.Store) (processors.Stage2, error) { return nil, nil }
func (boom) Add(*events.Listen) error                                 { panic("boom") }
func (boom) Prepare(*topology.Output, bool) error                     { return nil }
func (boom) NextDue() time.Time                                       { return time.Time{} }

// TestFailingVersionKeepsTheOthers: a version whose processor panics, and
// one whose configuration cannot be read, are reported failed in the
// status while the serving version keeps counting and answering, and the
// runtime (the instance) keeps running.
func TestFailingVersionKeepsTheOthers(t *testing.T) {
	const partitions = 4
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(partitions, "listens", "listens.dlq"),
		kfake.GroupMinSessionTimeout(time.Second))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	brokers := c.ListenAddrs()
	if err := c.CreateTopic("kappa.control", control.TopicPartitions, control.TopicConfigs()); err != nil {
		t.Fatal(err)
	}
	if err := c.CreateTopic("kappa.instances", cluster.TopicPartitions, cluster.TopicConfigs()); err != nil {
		t.Fatal(err)
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.DefaultProduceTopic("listens"))
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
	specs := []processors.Spec{example.Spec, boomSpec}
	declare := processors.NewConfig(specs)
	if err := json.Unmarshal([]byte(`{"example":true}`), &declare); err != nil {
		t.Fatal(err)
	}
	rt := NewRuntime(RuntimeConfig{
		Data: t.TempDir(), Input: "listens", DLQ: "listens.dlq", Partitions: partitions, ControlTopic: "kappa.control",
		Specs: specs, Declare: declare, Version: "v1",
		Stage:     topology.Config{Brokers: brokers, InstanceID: "a", CommitInterval: 50 * time.Millisecond, SessionTimeout: time.Second},
		StoreOpts: []state.Opt{state.WithFS(vfs.NewMem())},
		Admin:     kadm.NewClient(cl), Client: cl, Directory: dir, RetryAfter: time.Hour,
	})
	done := make(chan error, 3)
	go func() { done <- f.Run(ctx) }()
	go func() { done <- dir.Run(ctx) }()
	go func() { done <- rt.Run(ctx, f) }()

	produce := func(n int) {
		t.Helper()
		recs := make([]*kgo.Record, n)
		for i := range recs {
			recs[i] = &kgo.Record{Key: fmt.Appendf(nil, "%d", i+1), Value: fmt.Appendf(nil,
				`{"user_id":%d,"song_id":1,"artist_id":1,"ts":"2026-12-01T10:00:00Z","country":"SE"}`, i+1)}
		}
		if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	// count is v1's count of listens from SE, -1 while it cannot answer.
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
	produce(100)
	waitFor(t, done, "v1 counts 100 listens", func() bool { return count() == 100 }, rt.Status)

	put := func(v control.Version) {
		t.Helper()
		if err := control.PutVersion(ctx, cl, "kappa.control", v); err != nil {
			t.Fatal(err)
		}
	}
	put(control.Version{Name: "v2", From: control.FromEarliest, Repartition: Repartition, Config: json.RawMessage(`{"example":true,"boom":true}`)})
	put(control.Version{Name: "v3", From: control.FromEarliest, Repartition: Repartition, Config: json.RawMessage(`{"example":"yes"}`)})
	failed := func(name, why string) bool {
		for _, v := range rt.Status().Versions {
			if v.Version == name && v.Failed != nil && strings.Contains(v.Failed.Error, why) {
				return true
			}
		}
		return false
	}
	waitFor(t, done, "v2 failed with the panic and v3 with its configuration", func() bool {
		return failed("v2", "processor boom panicked: boom") && failed("v3", "configuration")
	}, rt.Status)
	if _, err := rt.Backend("v2"); !errors.Is(err, serve.ErrStarting) || !strings.Contains(err.Error(), "failed") {
		t.Errorf("reading v2: %v, want a 503 that says it failed", err)
	}
	produce(50)
	waitFor(t, done, "v1 counts 150 listens after the failures", func() bool { return count() == 150 }, rt.Status)
	if ready, err := rt.Ready(ctx); !ready || err != nil {
		t.Errorf("v1 serving but not ready: %v", err)
	}
	if rt.Serving() != "v1" {
		t.Errorf("serving %q", rt.Serving())
	}
	b, err := json.Marshal(rt.Status())
	if err != nil || !strings.Contains(string(b), `"failed":{"error":"`) {
		t.Errorf("status JSON %s (%v) does not report the failure", b, err)
	}
}

// waitFor waits until cond holds, failing when the runtime or its
// followers stop first; status is shown on a time-out.
func waitFor(t *testing.T, done <-chan error, what string, cond func() bool, status func() serve.Status) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for !cond() {
		select {
		case err := <-done:
			t.Fatalf("waiting for %s: the runtime stopped: %v", what, err)
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s; status %+v", what, status())
		}
	}
}
