package e2e

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"iter"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kappa-stream/kappa/generate"
)

// freeAddr returns a loopback address with a port that was free a moment ago.
func freeAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// proc is a running kappa process whose output goes to a log file.
type proc struct {
	cmd  *exec.Cmd
	log  string
	done chan struct{}
	err  error
}

func startKappa(t testing.TB, logName string, args ...string) *proc {
	t.Helper()
	logPath := filepath.Join(t.TempDir(), logName)
	f, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(kappaBin, args...)
	cmd.Stdout, cmd.Stderr = f, f
	// NB: a test binary killed by -timeout runs no cleanup; its kappa
	// processes must not outlive it and load the machine.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &proc{cmd: cmd, log: logPath, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		f.Close()
		close(p.done)
	}()
	t.Cleanup(func() {
		select {
		case <-p.done:
		default:
			_ = cmd.Process.Kill()
			<-p.done
		}
		if t.Failed() {
			t.Logf("log of kappa %s:\n%s", strings.Join(args, " "), tail(p.log, 60))
		}
	})
	return p
}

func tail(path string, n int) string {
	b, _ := os.ReadFile(path)
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// stop sends sig and waits for the process to exit.
func (p *proc) stop(t testing.TB, sig syscall.Signal) {
	t.Helper()
	if err := p.cmd.Process.Signal(sig); err != nil {
		t.Fatal(err)
	}
	select {
	case <-p.done:
	case <-time.After(30 * time.Second):
		t.Fatalf("kappa did not exit within 30 s of %s", sig)
	}
	if sig == syscall.SIGTERM && p.err != nil {
		t.Fatalf("kappa exited with %v after SIGTERM, want a clean exit; log:\n%s", p.err, tail(p.log, 30))
	}
}

// waitFor polls cond every 20 ms until it holds or the timeout passes.
func waitFor(t testing.TB, timeout time.Duration, what string, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	var last string
	for {
		ok, state := cond()
		if ok {
			return
		}
		last = state
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s; last state: %s", timeout, what, last)
		}
		<-tick.C
	}
}

func waitReady(t testing.TB, httpAddr string) {
	t.Helper()
	waitFor(t, 60*time.Second, "/readyz", func() (bool, string) {
		resp, err := http.Get("http://" + httpAddr + "/readyz")
		if err != nil {
			return false, err.Error()
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK, string(body)
	})
}

// groupProgress is the sum of the group's committed offsets and of the
// end offsets of the topic, and a description of the lagging partitions.
func groupProgress(ctx context.Context, adm *kadm.Client, group, topic string) (committed, end int64, lagging string, err error) {
	lags, err := adm.Lag(ctx, group)
	if err != nil {
		return 0, 0, "", err
	}
	ends, err := adm.ListEndOffsets(ctx, topic)
	if err != nil {
		return 0, 0, "", err
	}
	commits := map[int32]int64{}
	if l, ok := lags[group]; ok && l.Error() == nil {
		for _, ml := range l.Lag.Sorted() {
			if ml.Topic == topic && ml.Commit.At > 0 {
				commits[ml.Partition] = ml.Commit.At
			}
		}
	}
	var b strings.Builder
	var listed []kadm.ListedOffset
	ends.Each(func(o kadm.ListedOffset) { listed = append(listed, o) })
	slices.SortFunc(listed, func(a, b kadm.ListedOffset) int { return int(a.Partition - b.Partition) })
	for _, o := range listed {
		end += o.Offset
		committed += commits[o.Partition]
		if commits[o.Partition] != o.Offset {
			fmt.Fprintf(&b, " p%d:%d/%d", o.Partition, commits[o.Partition], o.Offset)
		}
	}
	return committed, end, b.String(), nil
}

// The stage-1 group of version v1.
const usersGroup = "kappa.v1.users"

// waitCaughtUp waits until version v1 has processed every record of
// listens, which holds want records.
func waitCaughtUp(t testing.TB, brokers string, want int64, timeout time.Duration, instances ...string) {
	t.Helper()
	waitVersionCaughtUp(t, brokers, "v1", want, timeout, instances...)
}

// waitVersionCaughtUp waits until stage 1 of version has committed every
// record of listens, which holds want records; given the HTTP addresses
// of the instances, until no user waits on them to be published (fan
// zones, similar users); then until stage 2 has committed every delta
// stage 1 wrote and, given the instances, until their stores hold all of
// it.
func waitVersionCaughtUp(t testing.TB, brokers, version string, want int64, timeout time.Duration, instances ...string) {
	t.Helper()
	waitAdminCaughtUp(t, newAdmin(t, brokers), version, want, timeout, instances...)
}

// waitAdminCaughtUp is waitVersionCaughtUp with the admin client given.
func waitAdminCaughtUp(t testing.TB, adm *kadm.Client, version string, want int64, timeout time.Duration, instances ...string) {
	t.Helper()
	for i, stage := range []struct {
		group, topic string
		want         int64
	}{
		{"kappa." + version + ".users", "listens", want},
		{"kappa." + version + ".aggregates", "kappa." + version + ".repartition", -1},
	} {
		if i == 1 && len(instances) > 0 {
			waitNonePending(t, version, timeout, instances)
		}
		waitFor(t, timeout, "lag 0 on "+stage.group, func() (bool, string) {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			committed, end, lagging, err := groupProgress(ctx, adm, stage.group, stage.topic)
			if err != nil {
				return false, err.Error()
			}
			if stage.want >= 0 && end != stage.want {
				return false, fmt.Sprintf("%s holds %d records, want %d", stage.topic, end, stage.want)
			}
			return committed == end, fmt.Sprintf("committed %d of %d; lagging:%s", committed, end, lagging)
		})
	}
	if len(instances) > 0 {
		waitApplied(t, adm, "kappa."+version+".aggregates", "kappa."+version+".repartition", timeout, instances)
	}
}

// waitNonePending waits until no user of version is pending on the
// instances at the HTTP addresses (fan zones, similar users: changes
// stage 2 does not have yet, --fan-delay, --similar-delay) while every
// stage-1 partition is owned, restored and reported.
func waitNonePending(t testing.TB, version string, timeout time.Duration, instances []string) {
	t.Helper()
	waitFor(t, timeout, "no user of "+version+" pending", func() (bool, string) {
		pending, owned := int64(0), map[int32]bool{}
		for _, addr := range instances {
			st, err := fetchStatus(addr)
			if err != nil {
				return false, err.Error()
			}
			for _, v := range st.Versions {
				if v.Version != version {
					continue
				}
				pending += v.FansPending + v.SimilarPending
				for _, p := range v.Stages[0].Partitions {
					owned[p.Partition] = owned[p.Partition] || !p.Restoring
				}
			}
		}
		ready := 0
		for _, ok := range owned {
			if ok {
				ready++
			}
		}
		return pending == 0 && ready == listensPartitions, fmt.Sprintf("%d users pending; %d of %d stage-1 partitions reported", pending, ready, listensPartitions)
	})
}

// statusBody is the part of an instance's GET /v1/status the harness
// reads.
type statusBody struct {
	Versions []struct {
		Version        string `json:"version"`
		FansPending    int64  `json:"fans_pending"`
		SimilarPending int64  `json:"similar_pending"`
		Stages         []struct {
			Group      string `json:"group"`
			Partitions []struct {
				Partition int32 `json:"partition"`
				Restoring bool  `json:"restoring"`
				Committed int64 `json:"committed"`
			} `json:"partitions"`
		} `json:"stages"`
	} `json:"versions"`
}

// fetchStatus reads the status of the instance at HTTP address addr.
func fetchStatus(addr string) (statusBody, error) {
	var st statusBody
	_, err := newClient(addr).getJSON("/v1/status", &st)
	return st, err
}

// listensPartitions is the number of partitions of listens.
const listensPartitions = 12

// waitApplied waits until the stores of the instances at the HTTP
// addresses hold every record of topic: an instance applies a
// transaction's changes to its store just after the transaction commits,
// so a query right after the group's lag reaches 0 can still see the
// state before the last transaction.
func waitApplied(t testing.TB, adm *kadm.Client, group, topic string, timeout time.Duration, instances []string) {
	t.Helper()
	waitFor(t, timeout, "the stores of "+group+" to hold every record", func() (bool, string) {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		ends, err := adm.ListEndOffsets(ctx, topic)
		if err != nil {
			return false, err.Error()
		}
		applied := map[int32]int64{}
		for _, addr := range instances {
			st, err := fetchStatus(addr)
			if err != nil {
				return false, err.Error()
			}
			for _, v := range st.Versions {
				for _, stage := range v.Stages {
					for _, p := range stage.Partitions {
						if stage.Group == group {
							applied[p.Partition] = max(applied[p.Partition], p.Committed)
						}
					}
				}
			}
		}
		var behind []string
		ends.Each(func(o kadm.ListedOffset) {
			if applied[o.Partition] < o.Offset {
				behind = append(behind, fmt.Sprintf("p%d:%d/%d", o.Partition, applied[o.Partition], o.Offset))
			}
		})
		slices.Sort(behind)
		return len(behind) == 0, "behind: " + strings.Join(behind, " ")
	})
}

// newAdmin returns an admin client of the brokers; opts are extra
// franz-go options (TLS, SASL).
func newAdmin(t testing.TB, brokers string, opts ...kgo.Opt) *kadm.Client {
	t.Helper()
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(brokers)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return kadm.NewClient(cl)
}

// readCommitted reads every committed data record of topic, up to the
// last stable offsets at the time of the call.
func readCommitted(t testing.TB, brokers, topic string) []*kgo.Record {
	t.Helper()
	adm := newAdmin(t, brokers)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	ends, err := adm.ListCommittedOffsets(ctx, topic)
	if err != nil {
		t.Fatal(err)
	}
	pending := map[int32]int64{}
	ends.Each(func(o kadm.ListedOffset) {
		if o.Offset > 0 {
			pending[o.Partition] = o.Offset
		}
	})
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers), kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()), kgo.KeepControlRecords())
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	var out []*kgo.Record
	for len(pending) > 0 {
		fs := cl.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			t.Fatalf("reading %s: %v; partitions left (partition: end): %v", topic, err, pending)
		}
		fs.EachRecord(func(r *kgo.Record) {
			end, ok := pending[r.Partition]
			if !ok || r.Offset >= end {
				return
			}
			if !r.Attrs.IsControl() {
				out = append(out, r)
			}
			if r.Offset+1 >= end {
				delete(pending, r.Partition)
			}
		})
	}
	return out
}

// dataset is a generated input: the lines, which of them the generator
// broke on purpose, and the model of the valid ones.
type dataset struct {
	lines     [][]byte
	keys      [][]byte
	bad       []bool
	malformed int
	model     *model
}

func generateDataset(t testing.TB, cfg generate.Config) *dataset {
	t.Helper()
	g, err := generate.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	d := &dataset{model: newModel()}
	for range cfg.Events {
		line, bad := g.Next(nil)
		d.lines = append(d.lines, line)
		d.keys = append(d.keys, g.Key(nil))
		d.bad = append(d.bad, bad)
		if bad {
			d.malformed++
			continue
		}
		if err := d.model.add(line); err != nil {
			t.Fatal(err)
		}
	}
	return d
}

// valid yields the valid lines, parsed by the e2e parser, in log order.
func (d *dataset) valid(t testing.TB) iter.Seq2[rawListen, time.Time] {
	return func(yield func(rawListen, time.Time) bool) {
		for i, line := range d.lines {
			if d.bad[i] {
				continue
			}
			l, ts, err := parseRaw(line)
			if err != nil {
				t.Fatal(err)
			}
			if !yield(l, ts) {
				return
			}
		}
	}
}

// writeLines writes lines[from:to] to a file, one per line; with keys, as
// "key<TAB>value" for kcat -K.
func (d *dataset) writeLines(t testing.TB, name string, from, to int, withKeys bool) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	w := bufio.NewWriter(f)
	for i := from; i < to; i++ {
		if withKeys {
			w.Write(d.keys[i])
			w.WriteByte('\t')
		}
		w.Write(d.lines[i])
		w.WriteByte('\n')
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	return path
}

// produceWithKappa runs `kappa produce` over the file.
func produceWithKappa(t testing.TB, brokers, file string) {
	t.Helper()
	out, err := exec.Command(kappaBin, "produce", "--brokers", brokers, "--file", file).CombinedOutput()
	if err != nil {
		t.Fatalf("kappa produce: %v\n%s", err, out)
	}
	if !bytes.Contains(out, []byte("done:")) {
		t.Fatalf("kappa produce printed no summary:\n%s", out)
	}
}

// produceWithKcat runs librdkafka's kcat over a key<TAB>value file, with
// the Java-compatible partitioner CONTRACT.md asks of librdkafka clients.
func produceWithKcat(t testing.TB, brokers, file string) {
	t.Helper()
	kcat, err := exec.LookPath("kcat")
	if err != nil {
		t.Fatalf("kcat is required (apt-get install kcat; .ci/run installs it): %v", err)
	}
	cmd := exec.Command(kcat, "-P", "-b", brokers, "-t", "listens", "-K", "\t",
		"-X", "partitioner=murmur2_random", "-X", "enable.idempotence=true", "-l", file)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("kcat: %v\n%s", err, out)
	}
}

// client is an HTTP client of one kappa instance.
type client struct {
	base string
	hc   *http.Client
	// query is appended to the query of every request, e.g. "&version=v2".
	query string
	// key is the API key the requests present (empty: none, for an
	// instance in open mode).
	key string
}

func newClient(addr string) *client {
	return &client{base: "http://" + addr, hc: &http.Client{Timeout: 10 * time.Second}}
}

// version returns a client of the same instance whose requests read
// version v (paths must have a query).
func (c *client) version(v string) *client {
	return &client{base: c.base, hc: c.hc, query: "&version=" + v, key: c.key}
}

// withKey returns a client of the same instance whose requests present
// the API key.
func (c *client) withKey(key string) *client {
	return &client{base: c.base, hc: c.hc, query: c.query, key: key}
}

func (c *client) getJSON(path string, v any) (int, error) {
	req, err := http.NewRequest(http.MethodGet, c.base+path+c.query, nil)
	if err != nil {
		return 0, err
	}
	if c.key != "" {
		req.Header.Set("Authorization", "Bearer "+c.key)
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return resp.StatusCode, err
	}
	if resp.StatusCode != http.StatusOK {
		return resp.StatusCode, fmt.Errorf("GET %s: %d %s", path, resp.StatusCode, body)
	}
	return resp.StatusCode, json.Unmarshal(body, v)
}

// getJSONRetrying is getJSON that, like any client of the API, retries an
// answer of 503 with Retry-After (a partition moving between instances,
// as a rebalance under load can) for up to a minute.
func (c *client) getJSONRetrying(path string, v any) error {
	deadline := time.Now().Add(time.Minute)
	for {
		status, err := c.getJSON(path, v)
		if status != http.StatusServiceUnavailable || time.Now().After(deadline) {
			return err
		}
		time.Sleep(time.Second) // NB: the API's Retry-After: 1
	}
}

// checkAllPlays compares every song's and artist's answers, by day and by
// country, with the model; and a few ids with no plays, which must be zeros.
func checkAllPlays(t testing.TB, c *client, m *model) {
	t.Helper()
	from, to := m.minDay, m.maxDay
	type job struct {
		kind  string
		id    int64
		cells map[cell]counts
	}
	var jobs []job
	for id, cells := range m.songs {
		jobs = append(jobs, job{"songs", id, cells})
	}
	for id, cells := range m.artists {
		jobs = append(jobs, job{"artists", id, cells})
	}
	jobs = append(jobs, job{"songs", 1 << 62, nil}, job{"artists", 1 << 62, nil})
	var (
		mu       sync.Mutex
		failures []string
		wg       sync.WaitGroup
		next     = make(chan job)
	)
	fail := func(s string) {
		mu.Lock()
		defer mu.Unlock()
		failures = append(failures, s)
	}
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range next {
				for _, by := range []string{"day", "country"} {
					path := "/v1/" + j.kind + "/" + strconv.FormatInt(j.id, 10) + "/plays?from=" + from + "&to=" + to + "&by=" + by
					var a playsAnswer
					if err := c.getJSONRetrying(path, &a); err != nil {
						fail(err.Error())
						continue
					}
					if g, w := got(a, by), expected(j.cells, from, to, by, ""); g != w {
						fail(fmt.Sprintf("%s\n  got  %s\n  want %s", path, g, w))
					}
				}
			}
		}()
	}
	for _, j := range jobs {
		next <- j
	}
	close(next)
	wg.Wait()
	if n := len(failures); n > 0 {
		if n > 10 {
			failures = append(failures[:10], fmt.Sprintf("… and %d more", n-10))
		}
		t.Fatalf("%d of %d answers differ from the raw events:\n%s", n, 2*len(jobs), strings.Join(failures, "\n"))
	}
	t.Logf("checked %d songs and %d artists by day and by country: all exact", len(m.songs), len(m.artists))
}

func itoa(v int64) string { return strconv.FormatInt(v, 10) }

func exitCode(err error) int {
	if err == nil {
		return 0
	}
	if ee, ok := err.(*exec.ExitError); ok {
		return ee.ExitCode()
	}
	return -1
}

func decodeJSON(resp *http.Response, v any) error {
	defer resp.Body.Close()
	return json.NewDecoder(resp.Body).Decode(v)
}

// createTopics provisions the topics on an external cluster as an
// operator would before pointing kappa at it.
func createTopics(t testing.TB, brokers string) {
	t.Helper()
	adm := newAdmin(t, brokers)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, topic := range []string{"listens", "listens.dlq"} {
		if _, err := adm.CreateTopic(ctx, listensPartitions, -1, nil, topic); err != nil {
			t.Fatalf("create %s: %v", topic, err)
		}
	}
}
