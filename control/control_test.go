package control

import (
	"context"
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const topic = "kappa.control"

func TestNames(t *testing.T) {
	for _, tc := range []struct {
		name  string
		valid bool
		n     int
	}{
		{"v1", true, 1}, {"v12", true, 12}, {"v0", false, 0}, {"v01", false, 0},
		{"V1", false, 0}, {"v", false, 0}, {"v1x", false, 0}, {"", false, 0},
	} {
		if got := ValidName(tc.name); got != tc.valid {
			t.Errorf("ValidName(%q) = %v, want %v", tc.name, got, tc.valid)
		}
		if got := Number(tc.name); got != tc.n {
			t.Errorf("Number(%q) = %d, want %d", tc.name, got, tc.n)
		}
	}
	s := State{Versions: map[string]Version{"v2": {Name: "v2"}, "v10": {Name: "v10"}, "v9": {Name: "v9"}}}
	if got := s.Next(); got != "v11" {
		t.Errorf("Next = %s, want v11", got)
	}
	var order []string
	for _, v := range s.Sorted() {
		order = append(order, v.Name)
	}
	if want := "v2 v9 v10"; strings.Join(order, " ") != want {
		t.Errorf("Sorted = %s, want %s", strings.Join(order, " "), want)
	}
	if got := (State{}).Next(); got != "v1" {
		t.Errorf("Next of nothing = %s, want v1", got)
	}
}

func TestApplyRejects(t *testing.T) {
	for _, tc := range []struct{ key, value string }{
		{"serving", `{"version":"x1"}`},
		{"serving", `{`},
		{"version/v2", `{"version":"v3","config":{}}`},
		{"version/v2x", `{"version":"v2x","config":{}}`},
		{"other", `{}`},
	} {
		var s State
		if err := s.apply([]byte(tc.key), []byte(tc.value)); err == nil {
			t.Errorf("apply(%s, %s): no error", tc.key, tc.value)
		}
		if len(s.Versions) != 0 || s.Serving.Version != "" {
			t.Errorf("apply(%s, %s) changed the state: %+v", tc.key, tc.value, s)
		}
	}
}

func TestFollowAndLoad(t *testing.T) {
	c, err := kfake.NewCluster(kfake.NumBrokers(1))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.CreateTopic(topic, TopicPartitions, TopicConfigs()); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	brokers := c.ListenAddrs()

	empty, err := Load(ctx, brokers, topic)
	if err != nil {
		t.Fatal(err)
	}
	if len(empty.Versions) != 0 || empty.Serving.Version != "" {
		t.Fatalf("empty topic: state %+v", empty)
	}

	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	created := time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)
	v1 := Version{Name: "v1", From: FromEarliest, Config: json.RawMessage(`{"fan_min_plays":1}`), Created: created}
	if err := PutVersion(ctx, cl, topic, v1); err != nil {
		t.Fatal(err)
	}
	if err := PutServing(ctx, cl, topic, Serving{Version: "v1", Since: created}); err != nil {
		t.Fatal(err)
	}

	f, err := NewFollower(brokers, topic, nil)
	if err != nil {
		t.Fatal(err)
	}
	fctx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- f.Run(fctx) }()
	defer func() {
		stop()
		if err := <-done; err != nil {
			t.Error(err)
		}
	}()
	select {
	case <-f.Synced():
	case <-ctx.Done():
		t.Fatal("follower never synced")
	}
	if s := f.State(); s.Serving.Version != "v1" || len(s.Active()) != 1 || string(s.Versions["v1"].Config) != `{"fan_min_plays":1}` {
		t.Fatalf("synced state %+v", s)
	}

	// A later change reaches the follower; a record it cannot read does
	// not change its state.
	if err := cl.ProduceSync(ctx, &kgo.Record{Topic: topic, Key: []byte("serving"), Value: []byte("nonsense")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	v2 := Version{Name: "v2", From: FromEarliest, Replaces: "v1", Config: json.RawMessage(`{"fan_min_plays":3}`), Created: created.Add(time.Hour)}
	if err := PutVersion(ctx, cl, topic, v2); err != nil {
		t.Fatal(err)
	}
	if err := PutServing(ctx, cl, topic, Serving{Version: "v2", Since: created.Add(2 * time.Hour)}); err != nil {
		t.Fatal(err)
	}
	retired := created.Add(3 * time.Hour)
	v1.Retired = &retired
	if err := PutVersion(ctx, cl, topic, v1); err != nil {
		t.Fatal(err)
	}
	for {
		s := f.State()
		if s.Serving.Version == "v2" && !s.Versions["v1"].Active() {
			if a := s.Active(); len(a) != 1 || a[0].Name != "v2" || a[0].Replaces != "v1" {
				t.Fatalf("active versions %+v", a)
			}
			break
		}
		select {
		case <-f.Changed():
		case <-ctx.Done():
			t.Fatalf("follower never saw the cutover and the retirement: %+v", s)
		}
	}

	loaded, err := Load(ctx, brokers, topic)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(loaded, f.State()) {
		t.Fatalf("Load = %+v, follower = %+v", loaded, f.State())
	}
	if loaded.Next() != "v3" {
		t.Fatalf("Next = %s, want v3", loaded.Next())
	}
}
