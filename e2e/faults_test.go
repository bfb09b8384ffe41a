package e2e

import (
	"context"
	"fmt"
	"io"
	"maps"
	"math/rand/v2"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kappa-stream/kappa/broker"
)

// faultSessionTimeout is the group session timeout of the instances in
// these tests: short, so a dead instance's partitions move quickly.
const faultSessionTimeout = "2s"

// instance is one `kappa process` with a fixed identity: every start
// reuses its --instance-id, --data and --http, as an operator restarting
// it would.
type instance struct {
	id, http string
	args     []string
	p        *proc
	starts   int
}

func newInstance(t testing.TB, brokers, id string) *instance {
	t.Helper()
	addr := freeAddr(t)
	return &instance{id: id, http: addr, args: []string{"process", "--brokers", brokers,
		"--instance-id", id, "--data", t.TempDir(), "--http", addr,
		"--session-timeout", faultSessionTimeout}}
}

// addrs are the HTTP addresses of the instances.
func addrs(instances []*instance) []string {
	out := make([]string, len(instances))
	for i, in := range instances {
		out[i] = in.http
	}
	return out
}

func (in *instance) start(t testing.TB) {
	t.Helper()
	in.starts++
	in.p = startKappa(t, fmt.Sprintf("%s-%d.log", in.id, in.starts), in.args...)
}

// mustRun fails the test when the instance has exited: a test waiting for
// its progress would otherwise only time out.
func (in *instance) mustRun(t testing.TB) {
	t.Helper()
	select {
	case <-in.p.done:
		t.Fatalf("instance %s (start %d) exited: %v; log:\n%s", in.id, in.starts, in.p.err, tail(in.p.log, 40))
	default:
	}
}

// startBroker starts the in-test broker on addr with its log in dir. It
// is closed at the end of the test, after everything started later.
func startBroker(t testing.TB, dir, addr string) *broker.Broker {
	t.Helper()
	b, err := broker.Start(broker.Config{Dir: dir, Addr: addr})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Close)
	return b
}

// prefixModel is the model of the first k lines of d.
func prefixModel(t testing.TB, d *dataset, k int) *model {
	t.Helper()
	m := newModel()
	for i, line := range d.lines[:k] {
		if !d.bad[i] {
			if err := m.add(line); err != nil {
				t.Fatal(err)
			}
		}
	}
	return m
}

// TestKill9TenTimes runs two instances while 1,000,000 events are
// produced at a steady pace, and kills one of them with SIGKILL ten times
// (each instance five times, in random order): each time once a random
// share of the events has been produced, at a random point of the commit
// cycle, so every kill hits an instance in the middle of live work, and
// the log is never complete yet. Some kills land while the previous
// victim is still restoring or rejoining. Each victim is restarted at once
// with the same identity. Every answer and the DLQ must be exact at the
// end: plays of every song and artist, and fan zones (--fan-zones).
func TestKill9TenTimes(t *testing.T) {
	const (
		n     = 1_000_000
		kills = 10
		seed  = 9
	)
	d := generateDataset(t, testConfig(n))
	b := startBroker(t, t.TempDir(), "127.0.0.1:0")
	kafka := b.Addr()
	createTopics(t, kafka)

	rng := rand.New(rand.NewPCG(seed, seed))
	// The kill moments: shares of the log produced, spread over the run
	// and short of its end.
	moments := make([]int64, kills)
	for i := range moments {
		moments[i] = n/50 + rng.Int64N(n*19/20-n/50)
	}
	slices.Sort(moments)
	instances := []*instance{newInstance(t, kafka, "a"), newInstance(t, kafka, "b")}
	for _, in := range instances {
		in.args = append(in.args, "--fan-zones")
	}
	// The victims: each instance half the time, in random order.
	victims := make([]*instance, kills)
	for i := range victims {
		victims[i] = instances[i%len(instances)]
	}
	rng.Shuffle(kills, func(i, j int) { victims[i], victims[j] = victims[j], victims[i] })

	for _, in := range instances {
		in.start(t)
	}
	for _, in := range instances {
		waitReady(t, in.http)
	}
	f := startFeeder(t, kafka, d, n, 1000, 20*time.Millisecond)
	adm := newAdmin(t, kafka)
	for i, at := range moments {
		victim := victims[i]
		f.waitProduced(t, at)
		for _, in := range instances {
			in.mustRun(t)
		}
		// NB: not a wait for a condition: a random delay of up to one
		// commit interval puts the kill anywhere in the commit cycle.
		<-time.After(time.Duration(rng.Int64N(int64(100 * time.Millisecond))))
		victim.p.stop(t, syscall.SIGKILL)
		produced := f.produced.Load()
		if produced >= n {
			t.Fatalf("kill %d of %s: all %d events were produced; the kill was not mid-run", i+1, victim.id, n)
		}
		users, _, _, err := groupProgress(context.Background(), adm, usersGroup, "listens")
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("kill %d: SIGKILL %s (start %d) with %d events produced, stage 1 at %d",
			i+1, victim.id, victim.starts, produced, users)
		victim.start(t)
	}
	f.waitProduced(t, n)
	waitCaughtUp(t, kafka, n, 3*time.Minute, addrs(instances)...)
	checkDLQ(t, kafka, d)
	for _, in := range instances {
		in.mustRun(t)
		waitReady(t, in.http)
		t.Logf("answers through instance %s:", in.id)
		checkAllPlays(t, newClient(in.http), d.model)
	}
	checkFanZones(t, newClient(instances[0].http), d, 1)
}

// feeder produces a dataset's lines into listens at a steady pace from a
// goroutine, the load under which the tests change the cluster. It stops
// at line hold until released.
type feeder struct {
	produced atomic.Int64
	release  chan struct{}
	done     chan struct{}
	err      error
}

// startFeeder produces perTick lines of d every tick, holding at line
// hold until f.release is closed.
func startFeeder(t testing.TB, brokers string, d *dataset, hold, perTick int, tick time.Duration) *feeder {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers), kgo.DefaultProduceTopic("listens"))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	f := &feeder{release: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(f.done)
		ticker := time.NewTicker(tick)
		defer ticker.Stop()
		for i := 0; i < len(d.lines); {
			if i == hold {
				select {
				case <-f.release:
				case <-ctx.Done():
					return
				}
			}
			j := min(i+perTick, len(d.lines))
			if i < hold {
				j = min(j, hold)
			}
			recs := make([]*kgo.Record, 0, j-i)
			for k := i; k < j; k++ {
				recs = append(recs, &kgo.Record{Key: d.keys[k], Value: d.lines[k]})
			}
			if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
				f.err = fmt.Errorf("producing lines %d…%d: %w", i, j, err)
				return
			}
			i = j
			f.produced.Store(int64(i))
			select {
			case <-ticker.C:
			case <-ctx.Done():
				return
			}
		}
	}()
	t.Cleanup(func() {
		cancel()
		// NB: the context does not cancel records already buffered;
		// closing the client fails them.
		cl.Close()
		<-f.done
	})
	return f
}

// waitProduced waits until the feeder has produced at least k lines.
func (f *feeder) waitProduced(t testing.TB, k int64) {
	t.Helper()
	waitFor(t, time.Minute, fmt.Sprintf("the feeder to produce %d lines", k), func() (bool, string) {
		select {
		case <-f.done:
			if f.err != nil {
				t.Fatal(f.err)
			}
		default:
		}
		n := f.produced.Load()
		return n >= k, itoa(n) + " produced"
	})
}

// prober queries random songs and artists through random instances while
// the cluster changes, and checks that every answer is possible: 200 with
// numbers no smaller than any answer completed before the request was
// sent and no larger than the final model's, or 503 with Retry-After.
type prober struct {
	m    *model
	keys []probeKey

	mu       sync.Mutex
	targets  map[string]*client // the instances that are up, by id
	floor    map[probeKey]map[string]counts
	ok       int
	retry    int
	failures []string

	stop     chan struct{}
	stopOnce sync.Once
	wg       sync.WaitGroup
}

// probeKey is what a probe asks for: "songs" or "artists", and the id.
type probeKey struct {
	kind string
	id   int64
}

// probeTotal is the floor key of a song's or artist's total.
const probeTotal = "total"

// startProber starts workers that query through the instances given and
// those added later; a worker stops when no instance is left.
func startProber(t testing.TB, m *model, workers int, seed uint64, instances ...*instance) *prober {
	pr := &prober{m: m, targets: map[string]*client{}, floor: map[probeKey]map[string]counts{}, stop: make(chan struct{})}
	for _, in := range instances {
		pr.targets[in.id] = newClient(in.http)
	}
	t.Cleanup(pr.halt)
	for _, id := range slices.Sorted(maps.Keys(m.songs)) {
		pr.keys = append(pr.keys, probeKey{"songs", id})
	}
	for _, id := range slices.Sorted(maps.Keys(m.artists)) {
		pr.keys = append(pr.keys, probeKey{"artists", id})
	}
	for w := range workers {
		pr.wg.Add(1)
		go pr.run(rand.New(rand.NewPCG(seed, uint64(w))))
	}
	return pr
}

// add lets queries go to the instance.
func (pr *prober) add(in *instance) {
	pr.mu.Lock()
	defer pr.mu.Unlock()
	pr.targets[in.id] = newClient(in.http)
}

// remove stops sending queries to the instance, before it is stopped.
func (pr *prober) remove(in *instance) {
	pr.mu.Lock()
	defer pr.mu.Unlock()
	delete(pr.targets, in.id)
}

// finish stops the queries and fails the test if an answer was impossible.
func (pr *prober) finish(t testing.TB) {
	t.Helper()
	pr.halt()
	t.Logf("prober: %d answers with numbers, %d times 503 with Retry-After", pr.ok, pr.retry)
	if len(pr.failures) > 0 {
		f := pr.failures
		if len(f) > 10 {
			f = append(f[:10:10], fmt.Sprintf("… and %d more", len(pr.failures)-10))
		}
		t.Fatalf("%d impossible answers while the cluster changed:\n%s", len(pr.failures), strings.Join(f, "\n"))
	}
	if pr.ok == 0 {
		t.Fatal("prober: no query was answered with numbers")
	}
}

// halt stops the queries and waits for them.
func (pr *prober) halt() {
	pr.stopOnce.Do(func() { close(pr.stop) })
	pr.wg.Wait()
}

// answered is the number of answers so far, with numbers or 503.
func (pr *prober) answered() int {
	pr.mu.Lock()
	defer pr.mu.Unlock()
	return pr.ok + pr.retry
}

func (pr *prober) run(rng *rand.Rand) {
	defer pr.wg.Done()
	for {
		select {
		case <-pr.stop:
			return
		default:
		}
		key := pr.keys[rng.IntN(len(pr.keys))]
		pr.mu.Lock()
		ids := slices.Sorted(maps.Keys(pr.targets))
		if len(ids) == 0 {
			pr.mu.Unlock()
			return
		}
		id := ids[rng.IntN(len(ids))]
		c := pr.targets[id]
		floor := maps.Clone(pr.floor[key])
		pr.mu.Unlock()
		if msg := pr.probe(c, id, key, floor); msg != "" {
			pr.mu.Lock()
			pr.failures = append(pr.failures, msg)
			pr.mu.Unlock()
		}
	}
}

// probe queries key through one instance and checks the answer against
// floor, the highest numbers answered before the query was sent.
func (pr *prober) probe(c *client, id string, key probeKey, floor map[string]counts) string {
	path := "/v1/" + key.kind + "/" + itoa(key.id) + "/plays?from=" + pr.m.minDay + "&to=" + pr.m.maxDay + "&by=day"
	resp, err := c.hc.Get(c.base + path)
	if err != nil {
		pr.mu.Lock()
		_, up := pr.targets[id]
		pr.mu.Unlock()
		if !up {
			return "" // the instance is being stopped
		}
		return fmt.Sprintf("%s via %s: %v", path, id, err)
	}
	switch resp.StatusCode {
	case http.StatusServiceUnavailable:
		resp.Body.Close()
		if resp.Header.Get("Retry-After") == "" {
			return fmt.Sprintf("%s via %s: 503 without Retry-After", path, id)
		}
		pr.mu.Lock()
		pr.retry++
		pr.mu.Unlock()
		return ""
	case http.StatusOK:
	default:
		var e struct{ Error string }
		_ = decodeJSON(resp, &e)
		return fmt.Sprintf("%s via %s: status %d (%s), want 200 or 503", path, id, resp.StatusCode, e.Error)
	}
	var a playsAnswer
	if err := decodeJSON(resp, &a); err != nil {
		return fmt.Sprintf("%s via %s: %v", path, id, err)
	}
	answer := map[string]counts{probeTotal: {a.Plays, a.Streams}}
	var sum counts
	for _, r := range a.Rows {
		answer[r.Day] = counts{r.Plays, r.Streams}
		sum.Plays += r.Plays
		sum.Streams += r.Streams
	}
	if sum != answer[probeTotal] {
		return fmt.Sprintf("%s via %s: rows sum to %d/%d, total says %d/%d", path, id, sum.Plays, sum.Streams, a.Plays, a.Streams)
	}
	cells := pr.m.songs[key.id]
	if key.kind == "artists" {
		cells = pr.m.artists[key.id]
	}
	final := map[string]counts{}
	for cl, n := range cells {
		for _, k := range []string{probeTotal, cl.Day} {
			x := final[k]
			x.Plays += n.Plays
			x.Streams += n.Streams
			final[k] = x
		}
	}
	for k, got := range answer {
		if lo, hi := floor[k], final[k]; got.Plays < lo.Plays || got.Streams < lo.Streams ||
			got.Plays > hi.Plays || got.Streams > hi.Streams {
			return fmt.Sprintf("%s via %s: %s plays/streams %d/%d; answered before: %d/%d; final: %d/%d",
				path, id, k, got.Plays, got.Streams, lo.Plays, lo.Streams, hi.Plays, hi.Streams)
		}
	}
	pr.mu.Lock()
	defer pr.mu.Unlock()
	pr.ok++
	f := pr.floor[key]
	if f == nil {
		f = map[string]counts{}
		pr.floor[key] = f
	}
	for k, got := range answer {
		old := f[k]
		f[k] = counts{max(old.Plays, got.Plays), max(old.Streams, got.Streams)}
	}
	return ""
}

// waitServing waits until the instance's HTTP API answers /healthz.
func waitServing(t testing.TB, in *instance) {
	t.Helper()
	waitFor(t, time.Minute, "instance "+in.id+" to serve /healthz", func() (bool, string) {
		in.mustRun(t)
		resp, err := http.Get("http://" + in.http + "/healthz")
		if err != nil {
			return false, err.Error()
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK, resp.Status
	})
}

// waitOwners waits until group is stable and each of want owns
// partitions of topic, and returns the partitions of each instance.
func waitOwners(t testing.TB, brokers, group, topic string, want ...string) map[string][]int32 {
	t.Helper()
	adm := newAdmin(t, brokers)
	var owners map[string][]int32
	waitFor(t, time.Minute, fmt.Sprintf("%s to spread %s over %v", group, topic, want), func() (bool, string) {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		described, err := adm.DescribeGroups(ctx, group)
		if err != nil {
			return false, err.Error()
		}
		dg := described[group]
		if dg.Err != nil || dg.State != "Stable" {
			return false, fmt.Sprintf("state %s, err %v", dg.State, dg.Err)
		}
		owners = map[string][]int32{}
		for _, m := range dg.Members {
			c, ok := m.Assigned.AsConsumer()
			if !ok || m.InstanceID == nil {
				continue
			}
			for _, tp := range c.Topics {
				if tp.Topic == topic {
					owners[*m.InstanceID] = append(owners[*m.InstanceID], tp.Partitions...)
				}
			}
		}
		for _, id := range want {
			if len(owners[id]) == 0 {
				return false, fmt.Sprintf("owners %v", owners)
			}
		}
		return len(owners) == len(want), fmt.Sprintf("owners %v", owners)
	})
	return owners
}

// TestScaleOneThreeOne scales from one instance to three and back to one
// while events are produced at a steady pace and queries go to random
// instances: every answer must be possible at the time (see prober).
// While three instances own the partitions, each of them must answer
// every song and artist exactly, most of them by forwarding to the owner.
func TestScaleOneThreeOne(t *testing.T) {
	const (
		n    = 400_000
		hold = n / 2
	)
	d := generateDataset(t, testConfig(n))
	b := startBroker(t, t.TempDir(), "127.0.0.1:0")
	kafka := b.Addr()
	createTopics(t, kafka)
	a := newInstance(t, kafka, "a")
	extra := []*instance{newInstance(t, kafka, "b"), newInstance(t, kafka, "c")}
	a.start(t)
	waitReady(t, a.http)
	pr := startProber(t, d.model, 3, 1, a)
	f := startFeeder(t, kafka, d, hold, 500, 20*time.Millisecond)

	f.waitProduced(t, n/10)
	for _, in := range extra {
		in.start(t)
	}
	if k := f.produced.Load(); k >= hold {
		t.Fatalf("the feeder had produced all %d lines of the first half before scaling out; not under load", k)
	}
	t.Logf("scaling out to 3 instances after %d lines", f.produced.Load())
	for _, in := range extra {
		waitServing(t, in)
		pr.add(in)
	}
	for _, in := range extra {
		waitReady(t, in.http)
	}

	f.waitProduced(t, hold)
	waitCaughtUp(t, kafka, hold, 2*time.Minute, addrs(append([]*instance{a}, extra...))...)
	owners := waitOwners(t, kafka, "kappa.v1.aggregates", "kappa.v1.repartition", "a", "b", "c")
	t.Logf("stage 2 partitions with 3 instances: %v", owners)
	half := prefixModel(t, d, hold)
	for _, in := range append([]*instance{a}, extra...) {
		t.Logf("answers through instance %s (owns %v):", in.id, owners[in.id])
		checkAllPlays(t, newClient(in.http), half)
	}

	close(f.release)
	f.waitProduced(t, hold+n/10)
	t.Logf("scaling in to 1 instance after %d lines", f.produced.Load())
	for _, in := range extra {
		pr.remove(in)
		start := time.Now()
		in.p.stop(t, syscall.SIGTERM)
		t.Logf("instance %s stopped in %s; %d lines produced", in.id, time.Since(start).Round(time.Millisecond), f.produced.Load())
		if k := f.produced.Load(); k >= n {
			t.Fatalf("the feeder had produced all %d lines when instance %s stopped; not under load", k, in.id)
		}
	}
	f.waitProduced(t, n)
	waitCaughtUp(t, kafka, n, 2*time.Minute, a.http)
	waitOwners(t, kafka, "kappa.v1.aggregates", "kappa.v1.repartition", "a")
	a.mustRun(t)
	waitReady(t, a.http)
	pr.finish(t)
	checkDLQ(t, kafka, d)
	checkAllPlays(t, newClient(a.http), d.model)
}

// metricSum is the sum of the samples of a metric on the instance's
// /metrics, over all its labels; 0 when it has none yet.
func metricSum(httpAddr, name string) (float64, error) {
	resp, err := http.Get("http://" + httpAddr + "/metrics")
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, err
	}
	var sum float64
	for line := range strings.Lines(string(body)) {
		if !strings.HasPrefix(line, name+"{") && !strings.HasPrefix(line, name+" ") {
			continue
		}
		fields := strings.Fields(line)
		v, err := strconv.ParseFloat(fields[len(fields)-1], 64)
		if err != nil {
			return 0, fmt.Errorf("metric line %q: %w", line, err)
		}
		sum += v
	}
	return sum, nil
}

// waitMetricGrows waits until metric has grown on every instance beyond
// the values in before (by instance id).
func waitMetricGrows(t testing.TB, what, metric string, before map[string]float64, instances ...*instance) {
	t.Helper()
	waitFor(t, time.Minute, what, func() (bool, string) {
		var state []string
		grown := true
		for _, in := range instances {
			in.mustRun(t)
			v, err := metricSum(in.http, metric)
			if err != nil {
				return false, err.Error()
			}
			state = append(state, fmt.Sprintf("%s: %s %g (was %g)", in.id, metric, v, before[in.id]))
			grown = grown && v > before[in.id]
		}
		return grown, strings.Join(state, "; ")
	})
}

// metricValues reads metric on every instance, by instance id.
func metricValues(t testing.TB, metric string, instances ...*instance) map[string]float64 {
	t.Helper()
	out := map[string]float64{}
	for _, in := range instances {
		v, err := metricSum(in.http, metric)
		if err != nil {
			t.Fatalf("instance %s: %v", in.id, err)
		}
		out[in.id] = v
	}
	return out
}

// Metrics that show the instances noticed the broker was gone: franz-go's
// failed connection attempts (kotel) and kappa's aborted transactions.
const (
	metricConnectErrors = "messaging_kafka_connect_errors_count_total"
	metricAborts        = "kappa_transaction_aborts_total"
)

// TestBrokerRestart closes the in-test broker twice while events are
// produced at a steady pace and two instances process them, and starts it
// again on the same data directory and address; the instances (and the
// producer) resume by themselves. The first outage lasts until every
// instance has failed to reconnect, the second until every instance has
// given up a transaction (after --transaction-timeout, 3 s here), which
// makes it start a new Kafka session. Queries run all along and must get
// possible answers (see prober).
func TestBrokerRestart(t *testing.T) {
	const n = 300_000
	d := generateDataset(t, testConfig(n))
	dir, addr := t.TempDir(), freeAddr(t)
	b := startBroker(t, dir, addr)
	createTopics(t, addr)

	instances := []*instance{newInstance(t, addr, "a"), newInstance(t, addr, "b")}
	for _, in := range instances {
		in.args = append(in.args, "--transaction-timeout", "3s")
		in.start(t)
	}
	for _, in := range instances {
		waitReady(t, in.http)
	}
	pr := startProber(t, d.model, 2, 3, instances...)
	f := startFeeder(t, addr, d, n, 500, 20*time.Millisecond)
	adm := newAdmin(t, addr)
	for i, outage := range []struct {
		at           int64
		what, metric string
	}{
		{n / 5, "every instance to fail to reconnect", metricConnectErrors},
		{n / 2, "every instance to abort a transaction", metricAborts},
	} {
		f.waitProduced(t, outage.at)
		committed, _, _, err := groupProgress(context.Background(), adm, usersGroup, "listens")
		if err != nil {
			t.Fatal(err)
		}
		before := metricValues(t, outage.metric, instances...)
		answered := pr.answered()
		b.Close()
		produced := f.produced.Load()
		if produced >= n {
			t.Fatalf("outage %d: all %d events were produced before the broker closed; not mid-run", i+1, n)
		}
		t.Logf("outage %d: broker closed with %d events produced, stage 1 at %d", i+1, produced, committed)
		waitMetricGrows(t, outage.what, outage.metric, before, instances...)
		waitFor(t, time.Minute, "100 answers while the broker is down", func() (bool, string) {
			k := pr.answered() - answered
			return k >= 100, itoa(int64(k)) + " answers"
		})
		b = startBroker(t, dir, addr)
	}
	f.waitProduced(t, n)
	waitCaughtUp(t, addr, n, 3*time.Minute, addrs(instances)...)
	for _, in := range instances {
		in.mustRun(t)
	}
	pr.finish(t)
	checkDLQ(t, addr, d)
	for _, in := range instances {
		waitReady(t, in.http)
		t.Logf("answers through instance %s:", in.id)
		checkAllPlays(t, newClient(in.http), d.model)
	}
}
