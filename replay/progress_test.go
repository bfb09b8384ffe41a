package replay

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kappa-stream/kappa/control"
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
	p, err := ProgressOf(ctx, kadm.NewClient(cl), NamesOf("", control.Version{Name: "v2"}), "listens")
	if err != nil {
		t.Fatal(err)
	}
	if p.Started || p.Ready(ReadyLag) || p.ListensLag != 2 || p.ListensPartitions != 3 {
		t.Fatalf("progress %+v: want not started, not ready, 2 listens behind on 3 partitions", p)
	}
}

// TestFeaturesCaughtUp: a version with similar users and songs is not
// caught up while its features stage lags the song features by more than
// MaxLag; one without them does not wait for it.
func TestFeaturesCaughtUp(t *testing.T) {
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(3, "song-features"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...), kgo.DefaultProduceTopic("song-features"))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for i := range 5 {
		if err := cl.ProduceSync(ctx, &kgo.Record{Key: []byte{byte(i)}, Value: []byte("v")}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	adm := kadm.NewClient(cl)
	n := NamesOf("", control.Version{Name: "v2"})
	cfg := Config{Features: "song-features", MaxLag: 2}
	similar := control.Version{Name: "v2", Config: json.RawMessage(`{"similar":true}`)}
	check := func(v control.Version, c Config, want bool) {
		t.Helper()
		if ok, err := featuresCaughtUp(ctx, c, adm, v, n); err != nil || ok != want {
			t.Fatalf("featuresCaughtUp(%s, features %q) = %t, %v; want %t", v.Config, c.Features, ok, err, want)
		}
	}
	check(similar, cfg, false)
	check(control.Version{Name: "v2", Config: json.RawMessage(`{"similar":false}`)}, cfg, true)
	check(similar, Config{MaxLag: 2}, true)
	ends, err := adm.ListEndOffsets(ctx, "song-features")
	if err != nil {
		t.Fatal(err)
	}
	offsets := kadm.Offsets{}
	ends.Each(func(o kadm.ListedOffset) { offsets.AddOffset(o.Topic, o.Partition, o.Offset, -1) })
	if err := adm.CommitAllOffsets(ctx, n.FeaturesGroup, offsets); err != nil {
		t.Fatal(err)
	}
	check(similar, cfg, true)
}
