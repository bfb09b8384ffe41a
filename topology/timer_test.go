package topology

import (
	"context"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kappa-stream/kappa/state"
)

// laterTask sends each record value to the topic "out" a while after it
// came (a Timer task), whether or not more records come.
type laterTask struct {
	due     time.Time
	pending [][]byte
}

func (t *laterTask) Process(rec *kgo.Record) error {
	if len(t.pending) == 0 {
		t.due = time.Now().Add(300 * time.Millisecond)
	}
	t.pending = append(t.pending, rec.Value)
	return nil
}

func (t *laterTask) Prepare(out *Output) error {
	if len(t.pending) == 0 || time.Now().Before(t.due) {
		return nil
	}
	for _, v := range t.pending {
		out.Send("out", v, v)
	}
	t.pending = t.pending[:0]
	return nil
}

func (t *laterTask) NextDue() time.Time {
	if len(t.pending) == 0 {
		return time.Time{}
	}
	return t.due
}

// TestTimer: a task whose Timer is due is prepared without new records,
// so what it holds back reaches its output once due.
func TestTimer(t *testing.T) {
	c, prod := newCluster(t, 1, "in", "out")
	r, err := New(Config{
		Brokers: c.ListenAddrs(), Group: "timer", InstanceID: "i1", Topic: "in",
		CommitInterval: 20 * time.Millisecond,
		NewTask:        func(int32, *state.Store) (Task, error) { return &laterTask{}, nil },
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	}()
	produce(t, prod, "in", 0, 1, nil)
	waitUntil(t, "the record held back to reach out", func() bool {
		return len(readAll(t, c.ListenAddrs(), "out")) == 1
	})
}
