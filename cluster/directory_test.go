package cluster

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const (
	dirTopic   = "kappa.instances"
	inTopic    = "in"
	group      = "g"
	partitions = 4
)

func newCluster(t *testing.T) *kfake.Cluster {
	t.Helper()
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(partitions, inTopic))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	if err := c.CreateTopic(dirTopic, TopicPartitions, TopicConfigs()); err != nil {
		t.Fatal(err)
	}
	return c
}

func urlOf(id string) string { return "http://" + id + ".test:8080" }

// startDirectory runs the directory of instance id until stop is called
// or the test ends.
func startDirectory(t *testing.T, c *kfake.Cluster, id string) (d *Directory, stop func()) {
	t.Helper()
	d, err := New(Config{
		Brokers:         c.ListenAddrs(),
		Topic:           dirTopic,
		InstanceID:      id,
		HTTP:            urlOf(id) + "/",
		Groups:          map[string]string{group: inTopic},
		RefreshInterval: 20 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }()
	stop = sync.OnceFunc(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run of %s: %v", id, err)
		}
	})
	t.Cleanup(stop)
	return d, stop
}

// startMember joins the group as static member id ("" for a dynamic
// member), with the runner's balancer.
func startMember(t *testing.T, c *kfake.Cluster, id string) (stop func()) {
	t.Helper()
	opts := []kgo.Opt{
		kgo.SeedBrokers(c.ListenAddrs()...),
		kgo.ConsumerGroup(group),
		kgo.ConsumeTopics(inTopic),
		kgo.Balancers(kgo.CooperativeStickyBalancer()),
		kgo.HeartbeatInterval(100 * time.Millisecond),
	}
	if id != "" {
		opts = append(opts, kgo.InstanceID(id))
	}
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		t.Fatal(err)
	}
	stop = sync.OnceFunc(cl.Close)
	t.Cleanup(stop)
	return stop
}

func produce(t *testing.T, c *kfake.Cluster, key string, value []byte) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	r := &kgo.Record{Topic: dirTopic, Key: []byte(key), Value: value}
	if err := cl.ProduceSync(context.Background(), r).FirstErr(); err != nil {
		t.Fatal(err)
	}
}

// waitFor polls cond until it holds, failing the test after a deadline.
// cond returns a description of what it saw, for the failure message.
func waitFor(t *testing.T, what string, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		ok, saw := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s; last saw %s", what, saw)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// owners is d's view of the group: partition → instance id, for the
// partitions whose owner is known. It checks every URL Owner returns.
func owners(t *testing.T, d *Directory) map[int32]string {
	t.Helper()
	out := map[int32]string{}
	for p := range int32(partitions) {
		id, url, ok := d.Owner(group, p)
		if !ok {
			if id != "" || url != "" {
				t.Errorf("Owner(%d) = %q, %q, false", p, id, url)
			}
			continue
		}
		if url != urlOf(id) {
			t.Errorf("Owner(%d) = %q with URL %q, want %q", p, id, url, urlOf(id))
		}
		out[p] = id
	}
	return out
}

// brokerOwners is the group's assignment as the broker holds it, when the
// group is stable with n members.
func brokerOwners(c *kfake.Cluster, n int) (map[int32]string, bool) {
	gi := c.GroupInfo(group)
	if gi == nil || gi.State != "Stable" || len(gi.Members) != n {
		return nil, false
	}
	out := map[int32]string{}
	for _, m := range gi.Members {
		for _, p := range m.Assignment[inTopic] {
			if m.InstanceID != nil {
				out[p] = *m.InstanceID
			}
		}
	}
	return out, true
}

func distinct(m map[int32]string) []string {
	return slices.Compact(slices.Sorted(maps.Values(m)))
}

// waitConverged waits until every directory reports the broker's
// assignment of a stable group of n members, held by exactly ids, and
// returns it.
func waitConverged(t *testing.T, c *kfake.Cluster, n int, ids []string, dirs ...*Directory) map[int32]string {
	t.Helper()
	var want map[int32]string
	waitFor(t, fmt.Sprintf("directories to agree that %v own all partitions", ids), func() (bool, string) {
		var ok bool
		if want, ok = brokerOwners(c, n); !ok || len(want) != partitions || !slices.Equal(distinct(want), ids) {
			return false, fmt.Sprintf("broker assignment %v (stable with %d members: %t)", want, n, ok)
		}
		for _, d := range dirs {
			if got := owners(t, d); !maps.Equal(got, want) {
				return false, fmt.Sprintf("directory %s: %v, broker: %v", d.cfg.InstanceID, got, want)
			}
		}
		return true, ""
	})
	return want
}

func TestOwnersFollowTheGroup(t *testing.T) {
	c := newCluster(t)
	da, stopA := startDirectory(t, c, "a")
	db, _ := startDirectory(t, c, "b")
	startMember(t, c, "a")
	closeB := startMember(t, c, "b")

	got := waitConverged(t, c, 2, []string{"a", "b"}, da, db)
	members := da.Members()
	if len(members) != 2 || members[0].InstanceID != "a" || members[1].InstanceID != "b" {
		t.Fatalf("members %+v, want a and b", members)
	}
	for _, m := range members {
		var want []int32
		for p, id := range got {
			if id == m.InstanceID {
				want = append(want, p)
			}
		}
		slices.Sort(want)
		if m.HTTP != urlOf(m.InstanceID) || m.Started.IsZero() || !slices.Equal(m.Partitions[group], want) {
			t.Errorf("member %+v, want URL %s, a start time and partitions %v", m, urlOf(m.InstanceID), want)
		}
	}

	// b stops and leaves (a static member does not leave by itself; an
	// operator or its session timeout removes it): a takes everything.
	closeB()
	adm := kadm.NewClient(newClient(t, c))
	if _, err := adm.LeaveGroup(context.Background(), kadm.LeaveGroup(group).InstanceIDs("b")); err != nil {
		t.Fatal(err)
	}
	waitConverged(t, c, 1, []string{"a"}, da, db)

	stopA()
	if id, url, ok := da.Owner(group, 0); ok {
		t.Fatalf("stopped directory still names owner %s at %s", id, url)
	}
	if err := da.Run(context.Background()); err == nil {
		t.Fatal("second Run did not fail")
	}
}

func newClient(t *testing.T, c *kfake.Cluster) *kgo.Client {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return cl
}

// TestRebalanceHidesOwners holds a real rebalance open. NB: a broker (kfake
// like Kafka) describes no assignments outside Stable, so this checks the
// end-to-end behaviour; TestOwnersOnlyFromStableGroups checks the state
// test itself.
func TestRebalanceHidesOwners(t *testing.T) {
	c := newCluster(t)
	da, _ := startDirectory(t, c, "a")
	startDirectory(t, c, "b")
	startMember(t, c, "a")
	waitConverged(t, c, 1, []string{"a"}, da)

	// Hold every SyncGroup until release: the rebalance that b's join
	// starts cannot complete.
	release := make(chan struct{})
	releaseOnce := sync.OnceFunc(func() { close(release) })
	t.Cleanup(releaseOnce)
	c.ControlKey(int16(kmsg.SyncGroup), func(kmsg.Request) (kmsg.Response, error, bool) {
		c.KeepControl()
		c.SleepControl(func() { <-release })
		return nil, nil, false
	})
	describes := c.Fault(kfake.Fault{Keys: []kmsg.Key{kmsg.DescribeGroups}, Group: group, Observe: true, Count: -1})
	defer describes.Remove()
	startMember(t, c, "b")

	waitFor(t, "the group to wait for its SyncGroup", func() (bool, string) {
		gi := c.GroupInfo(group)
		return gi.State == "CompletingRebalance", gi.State
	})
	waitFor(t, "the directory to hide the owners", func() (bool, string) {
		got := owners(t, da)
		return len(got) == 0, fmt.Sprint(got)
	})
	// Several more describes of the held group: still nothing.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := describes.Wait(ctx, describes.Hits()+6); err != nil {
		t.Fatal(err)
	}
	if got := owners(t, da); len(got) != 0 {
		t.Fatalf("owners %v while the group is %s", got, c.GroupInfo(group).State)
	}
	if state := c.GroupInfo(group).State; state != "CompletingRebalance" {
		t.Fatalf("group %s, want it still held in CompletingRebalance", state)
	}

	releaseOnce()
	waitConverged(t, c, 2, []string{"a", "b"}, da)
}

// TestOwnersOnlyFromStableGroups answers DescribeGroups itself, with an
// assignment in every state: only a Stable group's assignment counts.
func TestOwnersOnlyFromStableGroups(t *testing.T) {
	c := newCluster(t)
	var state atomic.Value
	state.Store("Stable")
	c.ControlKey(int16(kmsg.DescribeGroups), func(kreq kmsg.Request) (kmsg.Response, error, bool) {
		c.KeepControl()
		req := kreq.(*kmsg.DescribeGroupsRequest)
		resp := req.ResponseKind().(*kmsg.DescribeGroupsResponse)
		assigned := kmsg.NewConsumerMemberAssignment()
		topic := kmsg.NewConsumerMemberAssignmentTopic()
		topic.Topic, topic.Partitions = inTopic, []int32{0, 1, 2, 3}
		assigned.Topics = append(assigned.Topics, topic)
		for _, g := range req.Groups {
			rg := kmsg.NewDescribeGroupsResponseGroup()
			rg.Group, rg.State, rg.ProtocolType, rg.Protocol = g, state.Load().(string), "consumer", "cooperative-sticky"
			m := kmsg.NewDescribeGroupsResponseGroupMember()
			m.MemberID, m.InstanceID, m.MemberAssignment = "a-1", kmsg.StringPtr("a"), assigned.AppendTo(nil)
			rg.Members = append(rg.Members, m)
			resp.Groups = append(resp.Groups, rg)
		}
		return resp, nil, true
	})
	da, _ := startDirectory(t, c, "a")
	for _, tc := range []struct {
		state string
		known int
	}{
		{"Stable", partitions},
		{"PreparingRebalance", 0},
		{"Stable", partitions},
		{"CompletingRebalance", 0},
		{"Dead", 0},
	} {
		state.Store(tc.state)
		waitFor(t, fmt.Sprintf("%d known owners in state %s", tc.known, tc.state), func() (bool, string) {
			got := owners(t, da)
			return len(got) == tc.known, fmt.Sprint(got)
		})
	}
}

func TestInstanceRecords(t *testing.T) {
	c := newCluster(t)
	da, _ := startDirectory(t, c, "a")
	startMember(t, c, "c") // c consumes but has no directory of its own

	member := func(id string) (Member, bool) {
		for _, m := range da.Members() {
			if m.InstanceID == id {
				return m, true
			}
		}
		return Member{}, false
	}
	waitFor(t, "c to own every partition, without a URL", func() (bool, string) {
		m, _ := member("c")
		return len(m.Partitions[group]) == partitions && m.HTTP == "", fmt.Sprintf("%+v", m)
	})
	if id, url, ok := da.Owner(group, 0); ok {
		t.Fatalf("Owner = %s at %s for an instance that never advertised", id, url)
	}

	produce(t, c, "c", []byte(`{"instance_id":"c","http":"http://c.test:9","started":"2026-03-01T10:00:00Z"}`))
	waitFor(t, "c's advertisement", func() (bool, string) {
		id, url, ok := da.Owner(group, 0)
		return ok && id == "c" && url == "http://c.test:9", id + " " + url
	})
	if m, _ := member("c"); !m.Started.Equal(time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)) {
		t.Fatalf("c started %s", m.Started)
	}

	// Malformed records and a record for this instance's own id are
	// ignored, and the follower keeps going.
	produce(t, c, "d", []byte(`not json`))
	produce(t, c, "e", []byte(`{"instance_id":"x","http":"http://e.test"}`))
	produce(t, c, "a", []byte(`{"instance_id":"a","http":"http://elsewhere.test"}`))
	produce(t, c, "f", []byte(`{"instance_id":"f","http":"http://f.test"}`))
	waitFor(t, "f's advertisement", func() (bool, string) {
		m, ok := member("f")
		return ok && m.HTTP == "http://f.test", fmt.Sprintf("%+v", m)
	})
	for _, id := range []string{"d", "e"} {
		if m, ok := member(id); ok {
			t.Errorf("malformed record listed: %+v", m)
		}
	}
	if m, _ := member("a"); m.HTTP != urlOf("a") {
		t.Errorf("own URL %q, want %q from the config", m.HTTP, urlOf("a"))
	}

	// A tombstone withdraws c's URL; c still owns its partitions.
	produce(t, c, "c", nil)
	waitFor(t, "c's withdrawal", func() (bool, string) {
		m, _ := member("c")
		_, _, ok := da.Owner(group, 0)
		return !ok && m.HTTP == "" && len(m.Partitions[group]) == partitions, fmt.Sprintf("%+v", m)
	})
}

func TestMembersWithoutInstanceID(t *testing.T) {
	c := newCluster(t)
	da, _ := startDirectory(t, c, "a")
	startMember(t, c, "a")
	startMember(t, c, "")

	waitFor(t, "a's partitions, and no owner for the dynamic member's", func() (bool, string) {
		gi := c.GroupInfo(group)
		if gi == nil || gi.State != "Stable" || len(gi.Members) != 2 {
			return false, "broker group not stable with 2 members"
		}
		want := map[int32]string{}
		for _, m := range gi.Members {
			if m.InstanceID != nil {
				for _, p := range m.Assignment[inTopic] {
					want[p] = *m.InstanceID
				}
			}
		}
		got := owners(t, da)
		return len(want) > 0 && len(want) < partitions && maps.Equal(got, want), fmt.Sprintf("directory %v, broker %v", got, want)
	})
}

func TestConfigValidate(t *testing.T) {
	valid := func() Config {
		return Config{
			Brokers:    []string{"localhost:9092"},
			Topic:      dirTopic,
			InstanceID: "a",
			HTTP:       "http://10.0.0.7:8080",
			Groups:     map[string]string{group: inTopic},
		}
	}
	for _, tc := range []struct {
		name   string
		modify func(*Config)
		err    string
	}{
		{"valid", func(*Config) {}, ""},
		{"path prefix and trailing slash", func(c *Config) { c.HTTP = "https://kappa.example/api/" }, ""},
		{"no brokers", func(c *Config) { c.Brokers = nil }, "cluster: no brokers"},
		{"no topic", func(c *Config) { c.Topic = "" }, "cluster: no directory topic"},
		{"no instance id", func(c *Config) { c.InstanceID = "" }, "cluster: no instance id"},
		{"no groups yet", func(c *Config) { c.Groups = nil }, ""},
		{"group without topic", func(c *Config) { c.Groups = map[string]string{"g": ""} }, `cluster: group "g" with topic "": both must be set`},
		{"negative refresh", func(c *Config) { c.RefreshInterval = -time.Second }, "cluster: negative refresh interval -1s"},
		{"no URL", func(c *Config) { c.HTTP = "" }, "cluster: advertised HTTP address: empty"},
		{"host only", func(c *Config) { c.HTTP = "10.0.0.7:8080" }, `"10.0.0.7:8080": want http://host:port`},
		{"other scheme", func(c *Config) { c.HTTP = "ftp://h" }, "scheme must be http or https"},
		{"query", func(c *Config) { c.HTTP = "http://h:1/?x=1" }, "must be scheme://host[:port][/path] only"},
		{"no host", func(c *Config) { c.HTTP = "http:///x" }, "no host"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := valid()
			tc.modify(&cfg)
			_, err := New(cfg)
			switch {
			case tc.err == "" && err != nil:
				t.Fatalf("unexpected error: %v", err)
			case tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)):
				t.Fatalf("error %v, want one containing %q", err, tc.err)
			}
		})
	}
}

func TestDecodeRecord(t *testing.T) {
	for _, tc := range []struct {
		value string
		url   string
		err   string
	}{
		{`{"instance_id":"a","http":"http://a:1","started":"2026-03-01T10:00:00+01:00"}`, "http://a:1", ""},
		{`{"instance_id":"a","http":"http://a:1"}`, "http://a:1", ""},
		{`{"instance_id":"b","http":"http://a:1"}`, "", `instance_id "b" differs from the key "a"`},
		{`{"instance_id":"a","http":"a:1"}`, "", "http: "},
		{`{"instance_id":"a","http":"http://a:1","started":"yesterday"}`, "", "started: "},
		{`[]`, "", "cannot unmarshal"},
	} {
		t.Run(tc.value, func(t *testing.T) {
			inst, err := decodeRecord("a", []byte(tc.value))
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("error %v, want one containing %q", err, tc.err)
				}
				return
			}
			if err != nil || inst.url != tc.url {
				t.Fatalf("got %+v, %v; want URL %s", inst, err, tc.url)
			}
		})
	}
}

// TestTrackAndUntrack tracks a group the directory did not start with,
// then stops tracking it.
func TestTrackAndUntrack(t *testing.T) {
	c := newCluster(t)
	d, err := New(Config{Brokers: c.ListenAddrs(), Topic: dirTopic, InstanceID: "a", HTTP: urlOf("a"),
		RefreshInterval: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	}()
	startMember(t, c, "a")
	waitFor(t, "the group to be stable", func() (bool, string) {
		_, ok := brokerOwners(c, 1)
		return ok, "not stable"
	})
	if got := owners(t, d); len(got) != 0 {
		t.Fatalf("owners of an untracked group: %v", got)
	}
	d.Track(group, inTopic)
	waitConverged(t, c, 1, []string{"a"}, d)
	d.Untrack(group)
	if got := owners(t, d); len(got) != 0 {
		t.Fatalf("owners after Untrack: %v", got)
	}
}
