package topology

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/kappa-stream/kappa/state"
)

// TestRebalanceMovesPartitionsAndState runs the counting stage as two
// members of one group: the partitions are shared, each member serves
// only the stores of its own partitions, and when one member leaves the
// other takes its partitions over, stores restored, counts exact.
func TestRebalanceMovesPartitionsAndState(t *testing.T) {
	c, prod := newCluster(t, 4, "mid", "mid.changelog")
	dir := t.TempDir()
	start := func(id string) (*Runner, func()) {
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
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- r.Run(ctx) }()
		return r, func() {
			cancel()
			if err := <-done; err != nil {
				t.Error(err)
			}
		}
	}
	owned := func(r *Runner) []int32 {
		var ps []int32
		for _, s := range r.Status() {
			if !s.Restoring {
				ps = append(ps, s.Partition)
			}
		}
		return ps
	}
	produce(t, prod, "mid", 0, 400, nil)
	a, stopA := start("a")
	defer func() {
		if stopA != nil {
			stopA()
		}
	}()
	waitUntil(t, "a owns all partitions", func() bool { return len(owned(a)) == 4 })
	b, stopB := start("b")
	waitUntil(t, "a and b share the partitions", func() bool {
		pa, pb := owned(a), owned(b)
		return len(pa) > 0 && len(pb) > 0 && len(pa)+len(pb) == 4
	})
	produce(t, prod, "mid", 400, 400, nil)
	total := func() int64 {
		var n int64
		for _, r := range []*Runner{a, b} {
			if r == nil {
				continue
			}
			for _, p := range owned(r) {
				s, release, ok := r.Store(p)
				if !ok {
					continue
				}
				_ = s.Scan([]byte("k"), []byte("l"), func(_, v []byte) error {
					n += state.Counter(v, 0)
					return nil
				})
				release()
			}
		}
		return n
	}
	waitUntil(t, "800 counted over both members", func() bool { return total() == 800 })
	stopB()
	b = nil
	waitUntil(t, "a owns all partitions again", func() bool { return len(owned(a)) == 4 })
	produce(t, prod, "mid", 800, 200, nil)
	waitUntil(t, "1000 counted by a", func() bool { return total() == 1000 })
	stopA()
	stopA = nil
}
