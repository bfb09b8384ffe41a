package topology

import (
	"context"
	"errors"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"go.uber.org/goleak"

	"github.com/kappa-stream/kappa/state"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// forwardTask sends every record value to the topic "mid", keyed by
// itself; the value "bad" is rejected.
type forwardTask struct{ pending [][]byte }

func (t *forwardTask) Process(rec *kgo.Record) error {
	if string(rec.Value) == "bad" {
		return errors.New("bad: not a number")
	}
	t.pending = append(t.pending, rec.Value)
	return nil
}

func (t *forwardTask) Prepare(out *Output) error {
	for _, v := range t.pending {
		out.Send("mid", v, v)
	}
	t.pending = t.pending[:0]
	return nil
}

// countTask counts record values in its store under "k"+value.
type countTask struct {
	store   *state.Store
	pending map[string]int64
}

func (t *countTask) Process(rec *kgo.Record) error {
	t.pending[string(rec.Value)]++
	return nil
}

func (t *countTask) Prepare(out *Output) error {
	for v, n := range t.pending {
		key := []byte("k" + v)
		cur, ok, err := t.store.Get(nil, key)
		if err != nil {
			return err
		}
		if ok {
			n += state.Counter(cur, 0)
		}
		out.Put(key, state.AppendCounters(nil, n))
	}
	clear(t.pending)
	return nil
}

// counted sums the counts of every store in dir's partition stores, by
// value, through the runner's read access.
func counted(t *testing.T, r *Runner, partitions int32) (map[string]int64, bool) {
	t.Helper()
	out := map[string]int64{}
	for p := range partitions {
		s, release, ok := r.Store(p)
		if !ok {
			return nil, false
		}
		err := s.Scan([]byte("k"), []byte("l"), func(k, v []byte) error {
			out[string(k[1:])] += state.Counter(v, 0)
			return nil
		})
		release()
		if err != nil {
			t.Fatal(err)
		}
	}
	return out, true
}

func produce(t *testing.T, cl *kgo.Client, topic string, from, n int, bad map[int]bool) {
	t.Helper()
	var recs []*kgo.Record
	for i := from; i < from+n; i++ {
		v := strconv.Itoa(i % 10)
		if bad[i] {
			v = "bad"
		}
		recs = append(recs, &kgo.Record{Topic: topic, Key: []byte(strconv.Itoa(i)), Value: []byte(v)})
	}
	if err := cl.ProduceSync(context.Background(), recs...).FirstErr(); err != nil {
		t.Fatal(err)
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

// newCluster starts an in-process broker with topics of the given
// partition count and a producer for it; both close with the test.
func newCluster(t *testing.T, partitions int32, topics ...string) (*kfake.Cluster, *kgo.Client) {
	t.Helper()
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(partitions, topics...),
		kfake.GroupMinSessionTimeout(time.Second))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	prod, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(prod.Close)
	return c, prod
}

type pipeline struct {
	first, second *Runner
	cancel        context.CancelFunc
	wg            sync.WaitGroup
	errs          [2]error
}

func startPipeline(t *testing.T, brokers []string, storeDir string) *pipeline {
	t.Helper()
	first, err := New(Config{
		Brokers: brokers, Group: "first", InstanceID: "i1", Topic: "in", DLQTopic: "in.dlq",
		CommitInterval: 20 * time.Millisecond,
		NewTask:        func(int32, *state.Store) (Task, error) { return &forwardTask{}, nil },
	})
	if err != nil {
		t.Fatal(err)
	}
	second, err := New(Config{
		Brokers: brokers, Group: "second", InstanceID: "i1", Topic: "mid", Changelog: "mid.changelog",
		StoreDir: storeDir, CommitInterval: 20 * time.Millisecond, PurgeInterval: 50 * time.Millisecond,
		NewTask: func(_ int32, s *state.Store) (Task, error) {
			return &countTask{store: s, pending: map[string]int64{}}, nil
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	p := &pipeline{first: first, second: second, cancel: cancel}
	for i, r := range []*Runner{first, second} {
		p.wg.Add(1)
		go func() { defer p.wg.Done(); p.errs[i] = r.Run(ctx) }()
	}
	return p
}

func (p *pipeline) stop(t *testing.T) {
	t.Helper()
	p.cancel()
	p.wg.Wait()
	for _, err := range p.errs {
		if err != nil {
			t.Fatal(err)
		}
	}
}

func waitCounts(t *testing.T, r *Runner, want map[string]int64) {
	t.Helper()
	waitUntil(t, "counts", func() bool {
		got, ok := counted(t, r, 3)
		if !ok || len(got) != len(want) {
			return false
		}
		for k, n := range want {
			if got[k] != n {
				return false
			}
		}
		return true
	})
}

func TestPipelineExactlyOnceAcrossRestartsAndLostStores(t *testing.T) {
	c, prod := newCluster(t, 3, "in", "in.dlq", "mid", "mid.changelog")
	dir := t.TempDir()
	want := func(total int, bad ...int) map[string]int64 {
		out := map[string]int64{}
		for i := range total {
			out[strconv.Itoa(i%10)]++
		}
		for _, i := range bad {
			out[strconv.Itoa(i%10)]--
		}
		return out
	}

	produce(t, prod, "in", 0, 100, map[int]bool{3: true, 50: true})
	p := startPipeline(t, c.ListenAddrs(), filepath.Join(dir, "a"))
	waitCounts(t, p.second, want(100, 3, 50))
	waitUntil(t, "ready", func() bool { ok, _ := p.second.Ready(context.Background()); return ok })
	p.stop(t)

	// The same stores again: they resume where they were.
	produce(t, prod, "in", 100, 50, map[int]bool{107: true})
	p = startPipeline(t, c.ListenAddrs(), filepath.Join(dir, "a"))
	waitCounts(t, p.second, want(150, 3, 50, 107))
	p.stop(t)

	// No stores at all: they are rebuilt from the changelog.
	produce(t, prod, "in", 150, 50, nil)
	p = startPipeline(t, c.ListenAddrs(), filepath.Join(dir, "b"))
	waitCounts(t, p.second, want(200, 3, 50, 107))
	var restored int64
	for _, s := range p.second.Status() {
		restored += s.RestoreTotal
	}
	if restored == 0 {
		t.Error("status shows no restore of the empty stores")
	}
	p.stop(t)

	// The second stage deleted the records of "mid" it had committed.
	adm := kadm.NewClient(prod)
	starts, err := adm.ListStartOffsets(context.Background(), "mid")
	if err != nil {
		t.Fatal(err)
	}
	var purged int64
	starts.Each(func(o kadm.ListedOffset) { purged += o.Offset })
	if purged == 0 {
		t.Error("no record of mid was purged")
	}

	dead := readAll(t, c.ListenAddrs(), "in.dlq")
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

// readAll reads the committed data records of topic up to its last
// stable offsets.
func readAll(t *testing.T, brokers []string, topic string) []*kgo.Record {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ends, err := kadm.NewClient(cl).ListCommittedOffsets(ctx, topic)
	if err != nil {
		t.Fatal(err)
	}
	pending := map[int32]int64{}
	ends.Each(func(o kadm.ListedOffset) {
		if o.Offset > 0 {
			pending[o.Partition] = o.Offset
		}
	})
	cons, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()), kgo.KeepControlRecords())
	if err != nil {
		t.Fatal(err)
	}
	defer cons.Close()
	var out []*kgo.Record
	for len(pending) > 0 {
		fs := cons.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("reading %s: partitions left %v", topic, pending)
		}
		fs.EachRecord(func(r *kgo.Record) {
			end, ok := pending[r.Partition]
			if !ok || r.Offset >= end {
				return
			}
			if !r.Attrs.IsControl() {
				out = append(out, r)
			}
			if r.Offset+1 >= end {
				delete(pending, r.Partition)
			}
		})
	}
	return out
}

func TestConfigValidate(t *testing.T) {
	ok := Config{Brokers: []string{"x:1"}, Group: "g", InstanceID: "i", Topic: "t",
		NewTask: func(int32, *state.Store) (Task, error) { return nil, nil }}
	for _, tc := range []struct {
		name string
		edit func(*Config)
	}{
		{"no brokers", func(c *Config) { c.Brokers = nil }},
		{"no group", func(c *Config) { c.Group = "" }},
		{"no instance", func(c *Config) { c.InstanceID = "" }},
		{"no topic", func(c *Config) { c.Topic = "" }},
		{"changelog without store dir", func(c *Config) { c.Changelog = "cl" }},
		{"negative interval", func(c *Config) { c.CommitInterval = -time.Second }},
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
	if _, err := New(ok); err != nil {
		t.Fatal(err)
	}
}
