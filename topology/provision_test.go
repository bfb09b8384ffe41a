package topology

import (
	"context"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
)

// TestProvisionReplication provisions topics on clusters of 1 to 4
// brokers and checks each topic's replicas (min(3, brokers)) and
// min.insync.replicas (2 with three replicas, as the spec says when it
// sets it, the broker's default otherwise).
func TestProvisionReplication(t *testing.T) {
	for _, tc := range []struct {
		brokers  int
		replicas int
		minISR   string
	}{
		{1, 1, "1"},
		{2, 2, "1"},
		{3, 3, "2"},
		{4, 3, "2"},
	} {
		c, err := kfake.NewCluster(kfake.NumBrokers(tc.brokers))
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		cl, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...))
		if err != nil {
			t.Fatal(err)
		}
		defer cl.Close()
		adm := kadm.NewClient(cl)
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		specs := []TopicSpec{
			{Name: "plain", Partitions: 4},
			{Name: "compacted", Partitions: 2, Configs: map[string]string{"cleanup.policy": "compact"}},
			{Name: "own-isr", Partitions: 1, Configs: map[string]string{minISR: "1"}},
		}
		if err := Provision(ctx, adm, nil, specs...); err != nil {
			t.Fatal(err)
		}
		// NB: again: existing topics are left as they are.
		if err := Provision(ctx, adm, nil, specs...); err != nil {
			t.Fatalf("%d brokers, second Provision: %v", tc.brokers, err)
		}
		details, err := adm.ListTopics(ctx)
		if err != nil {
			t.Fatal(err)
		}
		configs, err := adm.DescribeTopicConfigs(ctx, "plain", "compacted", "own-isr")
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range specs {
			d := details[s.Name]
			if len(d.Partitions) != int(s.Partitions) {
				t.Errorf("%d brokers: %s has %d partitions, want %d", tc.brokers, s.Name, len(d.Partitions), s.Partitions)
			}
			for _, p := range d.Partitions {
				if len(p.Replicas) != tc.replicas {
					t.Errorf("%d brokers: %s/%d has replicas %v, want %d", tc.brokers, s.Name, p.Partition, p.Replicas, tc.replicas)
				}
			}
			rc, err := configs.On(s.Name, nil)
			if err != nil {
				t.Fatal(err)
			}
			want := tc.minISR
			if v, ok := s.Configs[minISR]; ok {
				want = v
			}
			got := "(not listed)"
			for _, cfg := range rc.Configs {
				if cfg.Key == minISR {
					got = cfg.MaybeValue()
				}
			}
			if got != want {
				t.Errorf("%d brokers: %s has %s %s, want %s", tc.brokers, s.Name, minISR, got, want)
			}
		}
	}
}
