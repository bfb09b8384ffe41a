package topology

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kappa-stream/kappa/state"
)

// TestOpenTransactionDoesNotWipeStore leaves a zombie's transaction open
// on every changelog partition while the pipeline goes on committing, so
// the stores' offsets lie past the changelog's last stable offset. A
// restart must keep the stores (they are not ahead of the changelog,
// whose high watermark is past them) and count on exactly. Judged against
// the last stable offset, the stores were wiped and rebuilt only up to
// the zombie's records: the changes committed after them were lost.
func TestOpenTransactionDoesNotWipeStore(t *testing.T) {
	c, prod := newCluster(t, 3, "in", "in.dlq", "mid", "mid.changelog")
	dir := filepath.Join(t.TempDir(), "stores")
	want := map[string]int64{}
	add := func(from, n int) {
		produce(t, prod, "in", from, n, nil)
		for i := from; i < from+n; i++ {
			want[strconv.Itoa(i%10)]++
		}
	}
	add(0, 300)
	p := startPipeline(t, c.ListenAddrs(), dir)
	waitCounts(t, p.second, want)

	zombie, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...), kgo.TransactionalID("zombie"),
		kgo.TransactionTimeout(5*time.Minute), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	defer zombie.Close()
	if err := zombie.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	for part := range int32(3) {
		rec := &kgo.Record{Topic: "mid.changelog", Partition: part, Key: []byte("kzombie"), Value: state.AppendCounters(nil, 1000)}
		if err := zombie.ProduceSync(context.Background(), rec).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	add(300, 300)
	waitCounts(t, p.second, want)
	p.stop(t)

	add(600, 30)
	p = startPipeline(t, c.ListenAddrs(), dir)
	waitCounts(t, p.second, want)
	p.stop(t)
	if err := zombie.EndTransaction(context.Background(), kgo.TryAbort); err != nil {
		t.Fatal(err)
	}
}

// zombieIterations is how many times TestZombieCommitsDuringRestore
// runs its scenario: KAPPA_ZOMBIE_ITERATIONS (50 for the run),
// default 3.
func zombieIterations(t *testing.T) int {
	if v := os.Getenv("KAPPA_ZOMBIE_ITERATIONS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			t.Fatalf("KAPPA_ZOMBIE_ITERATIONS=%q: want a positive number", v)
		}
		return n
	}
	return 3
}

// TestZombieCommitsDuringRestore holds instance A's EndTxn (kfake
// ControlKey) after its offsets joined the transaction, as when A is
// stopped (SIGSTOP) between its offset commit and EndTxn for longer than
// the session timeout: its partitions move to instance B, which restores
// their stores while A's transaction is open. Then A's EndTxn goes
// through and commits. B must resume from A's offsets with A's changes in
// its stores: every count exact. Without the catch-up after the stable
// offsets, B's stores missed A's last changes.
func TestZombieCommitsDuringRestore(t *testing.T) {
	for i := range zombieIterations(t) {
		t.Run(strconv.Itoa(i), testZombieCommitsDuringRestore)
	}
}

func testZombieCommitsDuringRestore(t *testing.T) {
	c, prod := newCluster(t, 3, "in", "in.dlq", "mid", "mid.changelog")
	dir := t.TempDir()
	want := map[string]int64{}
	add := func(from, n int) {
		produce(t, prod, "in", from, n, nil)
		for i := from; i < from+n; i++ {
			want[strconv.Itoa(i%10)]++
		}
	}
	first, err := New(Config{
		Brokers: c.ListenAddrs(), Group: "first", InstanceID: "i1", Topic: "in", DLQTopic: "in.dlq",
		CommitInterval: 20 * time.Millisecond,
		NewTask:        func(int32, *state.Store) (Task, error) { return &forwardTask{}, nil },
	})
	if err != nil {
		t.Fatal(err)
	}
	second := func(id string) *Runner {
		r, err := New(Config{
			Brokers: c.ListenAddrs(), Group: "second", InstanceID: id, Topic: "mid", Changelog: "mid.changelog",
			StoreDir: filepath.Join(dir, id), CommitInterval: 20 * time.Millisecond, SessionTimeout: time.Second,
			NewTask: func(_ int32, s *state.Store) (Task, error) {
				return &countTask{store: s, pending: map[string]int64{}}, nil
			},
		})
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	a, b := second("a"), second("b")
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
	stopFirst := run(first)
	defer stopFirst()
	stopA := run(a)
	defer stopA()
	add(0, 300)
	waitCounts(t, a, want)

	// Hold A's next EndTxn of a transaction with offsets until B has
	// restored every partition.
	var (
		mu       sync.Mutex
		armed    = true
		held     = make(chan struct{})
		release  = make(chan struct{})
		restored = map[int32]bool{}
		all      = make(chan struct{})
	)
	b.restored = func(p int32) {
		mu.Lock()
		defer mu.Unlock()
		restored[p] = true
		if len(restored) == 3 && all != nil {
			close(all)
			all = nil
		}
	}
	var offsetsJoined atomic.Bool
	c.ControlKey(kmsg.TxnOffsetCommit.Int16(), func(r kmsg.Request) (kmsg.Response, error, bool) {
		c.KeepControl()
		if r.(*kmsg.TxnOffsetCommitRequest).TransactionalID == a.TransactionalID() {
			offsetsJoined.Store(true)
		}
		return nil, nil, false
	})
	c.ControlKey(kmsg.EndTxn.Int16(), func(r kmsg.Request) (kmsg.Response, error, bool) {
		c.KeepControl()
		req := r.(*kmsg.EndTxnRequest)
		mu.Lock()
		hold := armed && req.TransactionalID == a.TransactionalID() && req.Commit && offsetsJoined.Load()
		if hold {
			armed = false
		}
		mu.Unlock()
		if hold {
			close(held)
			c.SleepControl(func() { <-release })
		}
		return nil, nil, false
	})
	add(300, 300)
	select {
	case <-held:
	case <-time.After(30 * time.Second):
		t.Fatal("A committed no offsets")
	}
	stopB := run(b)
	defer stopB()
	mu.Lock()
	wait := all
	mu.Unlock()
	select {
	case <-wait:
	case <-time.After(60 * time.Second):
		t.Fatal("B did not restore the three partitions")
	}
	close(release)
	stopA()
	waitCounts(t, b, want)
	add(600, 30)
	waitCounts(t, b, want)
	stopB()
	stopFirst()
}
