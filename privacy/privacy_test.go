package privacy

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
)

type cluster struct {
	t       *testing.T
	c       *kfake.Cluster
	brokers []string
}

func newCluster(t *testing.T) *cluster {
	t.Helper()
	c, err := kfake.NewCluster(kfake.NumBrokers(1))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	for _, ts := range Topics() {
		if err := c.CreateTopic(ts.Name, ts.Partitions, ts.Configs); err != nil {
			t.Fatal(err)
		}
	}
	return &cluster{t: t, c: c, brokers: c.ListenAddrs()}
}

// clock is a settable clock.
type clock struct{ now time.Time }

func (c *clock) Now() time.Time { return c.now }

// service starts a service (an instance) on the cluster.
func (c *cluster) service(ck *clock, opts ...func(*Config)) *Service {
	c.t.Helper()
	l, err := NewKafkaLog(c.brokers)
	if err != nil {
		c.t.Fatal(err)
	}
	c.t.Cleanup(l.Close)
	cfg := Config{Log: l, Now: ck.Now}
	for _, o := range opts {
		o(&cfg)
	}
	s, err := New(ctx(c.t), cfg)
	if err != nil {
		c.t.Fatal(err)
	}
	return s
}

// records reads a topic of the cluster from the start.
func (c *cluster) records(topic string) []*kgo.Record {
	c.t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.brokers...),
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: {0: kgo.NewOffset().AtStart()}}))
	if err != nil {
		c.t.Fatal(err)
	}
	defer cl.Close()
	var out []*kgo.Record
	ends, err := kadm.NewClient(cl).ListEndOffsets(ctx(c.t), topic)
	if err != nil {
		c.t.Fatal(err)
	}
	end, _ := ends.Lookup(topic, 0)
	for int64(len(out)) < end.Offset {
		f := cl.PollFetches(ctx(c.t))
		if err := f.Err(); err != nil {
			c.t.Fatal(err)
		}
		out = append(out, f.Records()...)
	}
	return out
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return c
}

var pCount = Params{Mechanism: Count, L0: 8, LInf: 1, Epsilon: 0.5}

// request asks for the listeners of song 7 on days from..to, with exact
// value 1000+day, counting the calls of Exact in *calls.
func request(key Partner, from, to int32, calls *int) Request {
	r := Request{Key: key, Endpoint: "/partner/v1/songs/{id}/listeners", Query: fmt.Sprintf("from=%d&to=%d", from, to)}
	for d := from; d <= to; d++ {
		r.Needs = append(r.Needs, Need{ID: fmt.Sprintf("song-listeners/7/%d", d), Params: pCount, Day: d})
	}
	r.Exact = func(ids []string) (map[string]map[string]int64, error) {
		*calls++
		out := map[string]map[string]int64{}
		for _, id := range ids {
			var d int32
			fmt.Sscanf(id, "song-listeners/7/%d", &d)
			out[id] = map[string]int64{"": 1000 + int64(d)}
		}
		return out, nil
	}
	return r
}

func values(a Answer) map[string]int64 {
	out := map[string]int64{}
	for id, r := range a.Releases {
		out[id] = r.Values[""]
	}
	return out
}

// TestSameAnswerAcrossRestart: the same request twice, then again on a
// restarted instance (and on a second instance): the same noisy values,
// charged once, Exact read once.
func TestSameAnswerAcrossRestart(t *testing.T) {
	c := newCluster(t)
	ck := &clock{time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)}
	key := Partner{ID: "k1", EpsilonBudget: 2, Window: 30 * 24 * time.Hour}
	calls := 0
	s1 := c.service(ck)
	a1, err := s1.Answer(ctx(t), request(key, 100, 106, &calls))
	if err != nil {
		t.Fatal(err)
	}
	if !a1.Charged || a1.Epsilon != 0.5 || len(a1.Releases) != 7 || calls != 1 {
		t.Fatalf("first answer: charged %v ε %v, %d releases, %d reads", a1.Charged, a1.Epsilon, len(a1.Releases), calls)
	}
	a2, err := s1.Answer(ctx(t), request(key, 100, 106, &calls))
	if err != nil {
		t.Fatal(err)
	}
	if a2.Charged || calls != 1 || fmt.Sprint(values(a2)) != fmt.Sprint(values(a1)) {
		t.Fatalf("second answer: charged %v, %d reads, %v vs %v", a2.Charged, calls, values(a2), values(a1))
	}
	// A restart: a new instance reads the releases and the budget back.
	s2 := c.service(ck)
	a3, err := s2.Answer(ctx(t), request(key, 100, 106, &calls))
	if err != nil {
		t.Fatal(err)
	}
	if a3.Charged || calls != 1 || fmt.Sprint(values(a3)) != fmt.Sprint(values(a1)) {
		t.Fatalf("after the restart: charged %v, %d reads, %v vs %v", a3.Charged, calls, values(a3), values(a1))
	}
	b, err := s2.Budget(ctx(t), key)
	if err != nil {
		t.Fatal(err)
	}
	if b.EpsilonSpent != 0.5 || !b.ResetsAt.Equal(ck.now.Add(key.Window)) {
		t.Fatalf("budget after one charge: %+v", b)
	}
	// A range that overlaps: only its new days are drawn, the old ones kept.
	a4, err := s2.Answer(ctx(t), request(key, 105, 108, &calls))
	if err != nil {
		t.Fatal(err)
	}
	if !a4.Charged || calls != 2 || values(a4)["song-listeners/7/105"] != values(a1)["song-listeners/7/105"] {
		t.Fatalf("overlapping range: charged %v, %d reads", a4.Charged, calls)
	}
	// The first instance sees the second's releases and charges.
	if b, _ := s1.Budget(ctx(t), key); b.EpsilonSpent != 1 {
		t.Fatalf("instance 1 sees ε %v spent, want 1", b.EpsilonSpent)
	}
	led, _ := s1.Ledger(ctx(t))
	if led[100] != 0.5 || led[105] != 0.5 || led[107] != 0.5 || led[109] != 0 {
		t.Fatalf("ledger %v", led)
	}
	if n := len(c.records(ReleasesTopic)); n != 9 {
		t.Fatalf("%d release records, want 9 (days 100…108, each once)", n)
	}
}

// TestBudgetExhaustion: past its budget a windowed key waits (until its
// oldest charge leaves the window), a key for good is refused, a cached
// answer stays free, and nothing new is released.
func TestBudgetExhaustion(t *testing.T) {
	c := newCluster(t)
	t0 := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	ck := &clock{t0}
	s := c.service(ck)
	calls := 0
	windowed := Partner{ID: "w", EpsilonBudget: 1, Window: 24 * time.Hour}
	for i := range 2 {
		ck.now = t0.Add(time.Duration(i) * time.Hour)
		if _, err := s.Answer(ctx(t), request(windowed, int32(10*i), int32(10*i), &calls)); err != nil {
			t.Fatal(err)
		}
	}
	released := len(c.records(ReleasesTopic))
	_, err := s.Answer(ctx(t), request(windowed, 50, 50, &calls))
	var wait *WaitError
	if !errors.As(err, &wait) || !wait.At.Equal(t0.Add(24*time.Hour)) {
		t.Fatalf("third request: %v, want to wait until %s", err, t0.Add(24*time.Hour))
	}
	if a, err := s.Answer(ctx(t), request(windowed, 0, 0, &calls)); err != nil || a.Charged {
		t.Fatalf("a cached answer after the budget is spent: %v, charged %v", err, a.Charged)
	}
	if calls != 2 || len(c.records(ReleasesTopic)) != released {
		t.Fatalf("%d reads and %d releases after refusals, want 2 and %d", calls, len(c.records(ReleasesTopic)), released)
	}
	ck.now = t0.Add(24*time.Hour + time.Second)
	if a, err := s.Answer(ctx(t), request(windowed, 50, 50, &calls)); err != nil || !a.Charged {
		t.Fatalf("after the window: %v", err)
	}

	forGood := Partner{ID: "g", EpsilonBudget: 0.5}
	if _, err := s.Answer(ctx(t), request(forGood, 60, 60, &calls)); err != nil {
		t.Fatal(err)
	}
	ck.now = ck.now.Add(1000 * time.Hour)
	if _, err := s.Answer(ctx(t), request(forGood, 61, 61, &calls)); !errors.Is(err, ErrSpent) {
		t.Fatalf("a spent key for good: %v, want ErrSpent", err)
	}
	tiny := Partner{ID: "t", EpsilonBudget: 0.1, Window: time.Hour}
	if _, err := s.Answer(ctx(t), request(tiny, 62, 62, &calls)); !errors.Is(err, ErrSpent) {
		t.Fatalf("a request over the whole budget: %v, want ErrSpent", err)
	}
}

// TestRefund: a request whose exact values or releases cannot be had is
// refunded, and the audit log says so; the day's ledger too.
func TestRefund(t *testing.T) {
	c := newCluster(t)
	ck := &clock{time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)}
	s := c.service(ck, func(c *Config) { c.DayEpsilon = 1 })
	key := Partner{ID: "k", EpsilonBudget: 1}
	calls := 0
	req := request(key, 5, 5, &calls)
	req.Exact = func([]string) (map[string]map[string]int64, error) { return nil, errors.New("store gone") }
	if _, err := s.Answer(ctx(t), req); err == nil {
		t.Fatal("no error")
	}
	b, _ := s.Budget(ctx(t), key)
	led, _ := s.Ledger(ctx(t))
	if b.EpsilonSpent != 0 || len(led) != 0 {
		t.Fatalf("after a refund: spent %v, ledger %v", b.EpsilonSpent, led)
	}
	var types []string
	for _, r := range c.records(AuditTopic) {
		var a auditRecord
		if err := json.Unmarshal(r.Value, &a); err != nil {
			t.Fatal(err)
		}
		types = append(types, a.Type)
	}
	if !slices.Equal(types, []string{"charge", "refund"}) {
		t.Fatalf("audit %v", types)
	}
	// The day cap: two keys together cannot charge day 5 past ε 1.
	other := Partner{ID: "o", EpsilonBudget: 5}
	for _, id := range []string{"a", "b"} {
		r := request(other, 5, 5, &calls)
		r.Needs[0].ID += id
		if _, err := s.Answer(ctx(t), r); err != nil {
			t.Fatal(err)
		}
	}
	r := request(key, 5, 5, &calls)
	r.Needs[0].ID += "c"
	if _, err := s.Answer(ctx(t), r); !errors.Is(err, ErrSpent) {
		t.Fatalf("past the day cap: %v", err)
	}
}

// TestAuditHasNoCounts: audit records carry the key, endpoint,
// parameters, releases touched and ε, and no value.
func TestAuditHasNoCounts(t *testing.T) {
	c := newCluster(t)
	ck := &clock{time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)}
	s := c.service(ck)
	key := Partner{ID: "k", EpsilonBudget: 5}
	calls := 0
	for range 2 {
		if _, err := s.Answer(ctx(t), request(key, 1, 2, &calls)); err != nil {
			t.Fatal(err)
		}
	}
	allowed := []string{"type", "id", "key", "endpoint", "query", "epsilon", "days", "new", "cached", "at"}
	recs := c.records(AuditTopic)
	if len(recs) != 3 {
		t.Fatalf("%d audit records, want a charge and two answers", len(recs))
	}
	for _, r := range recs {
		var m map[string]json.RawMessage
		if err := json.Unmarshal(r.Value, &m); err != nil {
			t.Fatal(err)
		}
		for k := range m {
			if !slices.Contains(allowed, k) {
				t.Errorf("audit field %q in %s", k, r.Value)
			}
		}
	}
	var last auditRecord
	_ = json.Unmarshal(recs[2].Value, &last)
	if len(last.Cached) != 2 || len(last.New) != 0 || last.Epsilon != 0 {
		t.Fatalf("the cached answer's audit: %+v", last)
	}
}
