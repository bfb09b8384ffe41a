package topology

import (
	"context"
	"errors"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"go.uber.org/goleak"

	"github.com/kappa-stream/kappa/state"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// sumTask counts records per key in the store; a value "bad" is rejected.
type sumTask struct {
	partition int32
	pending   map[string]int64
}

func (t *sumTask) Process(v []byte) error {
	if string(v) == "bad" {
		return errors.New("bad: not a number")
	}
	t.pending[string(v)]++
	return nil
}

func (t *sumTask) Flush(b *state.Batch) error {
	for k, n := range t.pending {
		if err := b.Merge([]byte("k"+k), state.AppendCounters(nil, n)); err != nil {
			return err
		}
	}
	clear(t.pending)
	return nil
}

func counted(t *testing.T, s *state.Store) map[string]int64 {
	t.Helper()
	out := map[string]int64{}
	if err := s.Scan([]byte("k"), []byte("l"), func(k, v []byte) error {
		out[string(k[1:])] = state.Counter(v, 0)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return out
}

func produce(t *testing.T, cl *kgo.Client, topic string, n int, bad map[int]bool) {
	t.Helper()
	for i := range n {
		v := strconv.Itoa(i % 10)
		if bad[i] {
			v = "bad"
		}
		r := &kgo.Record{Topic: topic, Key: []byte(strconv.Itoa(i)), Value: []byte(v)}
		if err := cl.ProduceSync(context.Background(), r).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
}

func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestRunnerCountsOnceAcrossRestartsAndRejects(t *testing.T) {
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(3, "in", "in.dlq"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	prod, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...))
	if err != nil {
		t.Fatal(err)
	}
	defer prod.Close()
	fs := vfs.NewMem()

	run := func(wantTotal int64) {
		s, err := state.Open("db", state.WithFS(fs))
		if err != nil {
			t.Fatal(err)
		}
		r, err := New(Config{
			Brokers: c.ListenAddrs(), Group: "g", Topic: "in", DLQTopic: "in.dlq",
			CommitInterval: 20 * time.Millisecond, Store: s,
			NewTask: func(p int32) Task { return &sumTask{partition: p, pending: map[string]int64{}} },
		})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		var wg sync.WaitGroup
		var runErr error
		wg.Add(1)
		go func() { defer wg.Done(); runErr = r.Run(ctx) }()
		waitUntil(t, "all records counted", func() bool {
			var total int64
			for _, n := range counted(t, s) {
				total += n
			}
			return total == wantTotal
		})
		waitUntil(t, "ready", func() bool { ok, _ := r.Ready(ctx); return ok })
		st := r.Status()
		if len(st) != 3 {
			t.Fatalf("status has %d partitions, want 3", len(st))
		}
		cancel()
		wg.Wait()
		if runErr != nil {
			t.Fatal(runErr)
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
	}

	produce(t, prod, "in", 100, map[int]bool{3: true, 50: true})
	run(98)
	produce(t, prod, "in", 50, map[int]bool{7: true})
	run(98 + 49)

	s, err := state.Open("db", state.WithFS(fs))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	got := counted(t, s)
	for d := range 10 {
		want := int64(15)
		switch d {
		case 3, 0, 7:
			want--
		}
		if got[strconv.Itoa(d)] != want {
			t.Errorf("count of %d = %d, want %d", d, got[strconv.Itoa(d)], want)
		}
	}

	cons, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...), kgo.ConsumeTopics("in.dlq"),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cons.Close()
	var dead []*kgo.Record
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for len(dead) < 3 && ctx.Err() == nil {
		cons.PollFetches(ctx).EachRecord(func(r *kgo.Record) { dead = append(dead, r) })
	}
	if len(dead) != 3 {
		t.Fatalf("%d dead letters, want 3", len(dead))
	}
	for _, r := range dead {
		hs := map[string]string{}
		for _, h := range r.Headers {
			hs[h.Key] = string(h.Value)
		}
		if string(r.Value) != "bad" || hs[HeaderError] != "bad: not a number" || len(hs[HeaderSource]) < len("in/0/0") {
			t.Errorf("dead letter %q with headers %v", r.Value, hs)
		}
	}
}

func TestConfigValidate(t *testing.T) {
	s, err := state.Open("db", state.WithFS(vfs.NewMem()))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ok := Config{Brokers: []string{"x:1"}, Group: "g", Topic: "t", DLQTopic: "d", Store: s,
		NewTask: func(int32) Task { return nil }}
	for _, tc := range []struct {
		name string
		edit func(*Config)
	}{
		{"no brokers", func(c *Config) { c.Brokers = nil }},
		{"no group", func(c *Config) { c.Group = "" }},
		{"no topic", func(c *Config) { c.Topic = "" }},
		{"no dlq", func(c *Config) { c.DLQTopic = "" }},
		{"negative interval", func(c *Config) { c.CommitInterval = -time.Second }},
		{"no store", func(c *Config) { c.Store = nil }},
		{"no task", func(c *Config) { c.NewTask = nil }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := ok
			tc.edit(&c)
			if _, err := New(c); err == nil {
				t.Fatal("New accepted a bad config")
			}
		})
	}
	r, err := New(ok)
	if err != nil {
		t.Fatal(err)
	}
	r.cl.Close()
}
