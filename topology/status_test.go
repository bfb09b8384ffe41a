package topology

import (
	"context"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"

	"github.com/kappa-stream/kappa/state"
)

// TestStatusOfIdlePartitions: a group whose offsets were set before it
// ran (as kappa replay sets a new version's at a time) and that gets no
// record reports those offsets as committed, for every partition,
// although it never commits one itself.
func TestStatusOfIdlePartitions(t *testing.T) {
	const partitions = 4
	c, prod := newCluster(t, partitions, "in", "mid")
	produce(t, prod, "in", 0, 40, nil)
	adm := kadm.NewClient(prod)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ends, err := adm.ListEndOffsets(ctx, "in")
	if err != nil {
		t.Fatal(err)
	}
	want := map[int32]int64{}
	offsets := kadm.Offsets{}
	ends.Each(func(o kadm.ListedOffset) {
		want[o.Partition] = o.Offset
		offsets.AddOffset("in", o.Partition, o.Offset, -1)
	})
	if err := adm.CommitAllOffsets(ctx, "idle", offsets); err != nil {
		t.Fatal(err)
	}
	r, err := New(Config{
		Brokers: c.ListenAddrs(), Group: "idle", InstanceID: "i1", Topic: "in",
		CommitInterval: 20 * time.Millisecond,
		NewTask:        func(int32, *state.Store) (Task, error) { return &forwardTask{}, nil },
	})
	if err != nil {
		t.Fatal(err)
	}
	rctx, rcancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(rctx) }()
	defer func() {
		rcancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	}()
	var last []PartitionStatus
	waitUntil(t, "every partition to report the group's offset as committed", func() bool {
		last = r.Status()
		if len(last) != partitions {
			return false
		}
		for _, p := range last {
			if p.Restoring || p.Committed != want[p.Partition] {
				return false
			}
		}
		return true
	})
	for _, p := range last {
		if p.Consumed > p.Committed {
			t.Errorf("partition %d consumed %d past the group's offset %d: it got records", p.Partition, p.Consumed, p.Committed)
		}
	}
}
