package topology

import (
	"context"
	"encoding/binary"
	"maps"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kappa-stream/kappa/state"
)

// publishTask publishes, every 20 ms and without input, one record to
// its partition of "out" holding the group generation its runner knows:
// like the fan-zone and similar-user publications, whose transactions
// carry no input offsets.
type publishTask struct {
	r         *Runner
	partition int32
	next      time.Time
}

func (t *publishTask) Process(*kgo.Record) error { return nil }

func (t *publishTask) Prepare(out *Output) error {
	t.r.mu.Lock()
	_, generation := t.r.sess.Client().GroupMetadata()
	t.r.mu.Unlock()
	out.SendTo("out", t.partition, nil, binary.BigEndian.AppendUint32(nil, uint32(generation)))
	t.next = time.Now().Add(20 * time.Millisecond)
	return nil
}

func (t *publishTask) NextDue() time.Time { return t.next }

// TestTimerOnlyTransactionsAreFenced makes instance A a zombie: its
// heartbeats are answered by the test instead of the group, so the group
// drops it and gives its partitions to B while A goes on believing it
// owns them. A's publications (transactions without input offsets) must
// not commit: in each partition of "out", the generations the committed
// publications were made in never go down. Without the fence A's
// transactions, which the group generation never checked, committed
// between B's.
func TestTimerOnlyTransactionsAreFenced(t *testing.T) {
	c, prod := newCluster(t, 3, "in", "out", "in.changelog")
	dir := t.TempDir()
	produce(t, prod, "in", 0, 30, nil)
	newRunner := func(id string) *Runner {
		var r *Runner
		r, err := New(Config{
			// NB: with a store, a task learns its input offsets before
			// it runs (a task publishes only once it knows one), so B
			// publishes without input.
			Brokers: c.ListenAddrs(), Group: "pub", InstanceID: id, Topic: "in", ManualTopics: []string{"out"},
			Changelog: "in.changelog", StoreDir: filepath.Join(dir, id),
			CommitInterval: 20 * time.Millisecond, SessionTimeout: time.Second,
			NewTask: func(p int32, _ *state.Store) (Task, error) {
				return &publishTask{r: r, partition: p, next: time.Now()}, nil
			},
		})
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	a, b := newRunner("a"), newRunner("b")
	var wg sync.WaitGroup
	defer wg.Wait()
	run := func(r *Runner) context.CancelFunc {
		ctx, cancel := context.WithCancel(context.Background())
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := r.Run(ctx); err != nil {
				t.Errorf("%s: %v", r.TransactionalID(), err)
			}
		}()
		return cancel
	}
	owns := func(r *Runner, n int) func() bool {
		return func() bool {
			k := 0
			for _, s := range r.Status() {
				if !s.Restoring && s.Committed >= 0 {
					k++
				}
			}
			return k == n
		}
	}
	stopA := run(a)
	defer stopA()
	waitUntil(t, "A owns the three partitions", owns(a, 3))

	var zombie, afterB atomic.Bool
	var attempts atomic.Int64
	c.ControlKey(kmsg.Heartbeat.Int16(), func(r kmsg.Request) (kmsg.Response, error, bool) {
		c.KeepControl()
		req := r.(*kmsg.HeartbeatRequest)
		if !zombie.Load() || req.InstanceID == nil || *req.InstanceID != "a" {
			return nil, nil, false
		}
		return req.ResponseKind(), nil, true
	})
	var bCommits atomic.Int64
	c.ControlKey(kmsg.EndTxn.Int16(), func(r kmsg.Request) (kmsg.Response, error, bool) {
		c.KeepControl()
		req := r.(*kmsg.EndTxnRequest)
		switch {
		case !afterB.Load():
		case req.TransactionalID == a.TransactionalID():
			// NB: after five attempts A may rejoin the group: a member
			// it rejoins as is no zombie.
			if attempts.Add(1) >= 5 {
				zombie.Store(false)
			}
		case req.TransactionalID == b.TransactionalID() && req.Commit && attempts.Load() >= 5:
			bCommits.Add(1)
		}
		return nil, nil, false
	})
	zombie.Store(true)
	stopB := run(b)
	defer stopB()
	waitUntil(t, "B owns the three partitions", owns(b, 3))
	afterB.Store(true)
	waitUntil(t, "five transactions of the zombie and ten of B after them", func() bool { return bCommits.Load() >= 10 })
	stopA()
	stopB()
	wg.Wait()

	last := map[int32]uint32{}
	for _, rec := range readAll(t, c.ListenAddrs(), "out") {
		g := binary.BigEndian.Uint32(rec.Value)
		if g < last[rec.Partition] {
			t.Fatalf("out/%d/%d published in generation %d after generation %d: a zombie's publication committed",
				rec.Partition, rec.Offset, g, last[rec.Partition])
		}
		last[rec.Partition] = g
	}
	if len(last) != 3 || slices.Min(slices.Collect(maps.Values(last))) < 2 {
		t.Fatalf("last generations published per partition %v: B published not in all", last)
	}
}
