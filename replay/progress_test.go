package replay

import (
	"context"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
)

// TestProgressBeforeStart reads the progress of a version the instances
// have not started yet (its repartition topic does not exist): not
// started, not ready, no error, so kappa replay keeps waiting.
func TestProgressBeforeStart(t *testing.T) {
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(3, "listens"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...), kgo.DefaultProduceTopic("listens"))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := cl.ProduceSync(ctx, &kgo.Record{Value: []byte("x")}, &kgo.Record{Value: []byte("y")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	p, err := ProgressOf(ctx, kadm.NewClient(cl), NamesOf("", "v2"), "listens")
	if err != nil {
		t.Fatal(err)
	}
	if p.Started || p.Ready(ReadyLag) || p.ListensLag != 2 || p.ListensPartitions != 3 {
		t.Fatalf("progress %+v: want not started, not ready, 2 listens behind on 3 partitions", p)
	}
}
