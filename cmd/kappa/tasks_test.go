package main

import (
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kappa-stream/kappa/processors/fans"
	"github.com/kappa-stream/kappa/processors/rollups"
	"github.com/kappa-stream/kappa/state"
	"github.com/kappa-stream/kappa/topology"
)

// TestListensTaskPublishesWhenIdle: after an interval with listens, a
// listens task with users pending wants the next interval (topology.Timer),
// and that interval, without listens, publishes them all, long before
// their delay.
func TestListensTaskPublishesWhenIdle(t *testing.T) {
	s, err := state.Open("users", state.WithFS(vfs.NewMem()))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	p, err := fans.NewProcessor(fans.Config{Delay: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	c, err := fans.NewCollector(p, s, "deltas", 4)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Unix(1_700_000_000, 0)
	task := &listensTask{rollups: rollups.NewUserTask("deltas", 4), fans: c, now: func() time.Time { return now }}
	rec := &kgo.Record{Value: []byte(`{"user_id":1,"song_id":2,"artist_id":3,"ts":"2026-03-01T12:00:00Z","lat":52.52,"lng":13.405}`)}
	if err := task.Process(rec); err != nil {
		t.Fatal(err)
	}
	if err := task.Prepare(&topology.Output{}); err != nil {
		t.Fatal(err)
	}
	if due := c.NextDue(); time.Until(due) < 59*time.Minute {
		t.Fatalf("the collector's NextDue = %v, want the user due in an hour", due)
	}
	if due := task.NextDue(); !due.Equal(now) {
		t.Fatalf("after an interval with listens, NextDue = %v, want the next interval (%v)", due, now)
	}
	var out topology.Output
	if err := task.Prepare(&out); err != nil {
		t.Fatal(err)
	}
	if len(out.Records()) == 0 {
		t.Fatal("the idle interval sent no fan deltas")
	}
	if due := task.NextDue(); !due.IsZero() {
		t.Fatalf("with no user pending, NextDue = %v", due)
	}
}
