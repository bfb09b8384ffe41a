package e2e

import (
	"cmp"
	"context"
	"fmt"
	"maps"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
)

// TestReplayCutover is the Kappa architecture's fix-a-bug cycle. Version
// v1 runs on two instances with a wrong configuration (--fan-min-plays 3;
// the intended one is 2). While queries hammer both instances, `kappa
// replay` rebuilds v2 from the earliest listen with the intended one; it
// is killed mid-way and started again, which resumes; then it cuts over
// and, after a grace period, retires v1. Every answer during all of it is
// 200 and right: plays equal the raw events' counts throughout (they are
// the same in both versions), fan zones are v1's or v2's while the switch
// happens and v2's once it is done. Afterwards both versions read
// (version=) equal to the independent computation of their
// configuration, and retiring v1 deletes its groups, topics and state
// directories.
func TestReplayCutover(t *testing.T) {
	const n = 300_000
	d := generateDataset(t, testConfig(n))
	b := startBroker(t, t.TempDir(), "127.0.0.1:0")
	kafka := b.Addr()
	createTopics(t, kafka)
	produceWithKappa(t, kafka, d.writeLines(t, "all.jsonl", 0, n, false))
	instances := []*instance{newInstance(t, kafka, "a"), newInstance(t, kafka, "b")}
	for _, in := range instances {
		in.args = append(in.args, "--fan-zones", "--fan-min-plays", "3")
		in.start(t)
	}
	waitCaughtUp(t, kafka, n, 3*time.Minute, addrs(instances)...)
	for _, in := range instances {
		waitReady(t, in.http)
	}
	a := newClient(instances[0].http)
	checkAllPlays(t, a, d.model)
	checkFanZones(t, a, d, 3)

	h := startHammer(t, d, instances)
	adm := newAdmin(t, kafka)
	mon := startMonitor(t, adm, "kappa.v2.users")

	replay := startKappa(t, "replay-1.log", "replay", "--brokers", kafka, "--from", "earliest", "--fan-min-plays", "2")
	waitFor(t, time.Minute, "v2 to start", func() (bool, string) {
		return mon.last() > 0, "v2 committed " + itoa(mon.last())
	})
	replay.stop(t, syscall.SIGKILL)
	killedAt := mon.last()
	if killedAt >= n {
		t.Fatalf("v2 had processed all %d listens before the kill; the kill was not mid-way", n)
	}
	t.Logf("replay killed after v2 committed %d of %d listens", killedAt, n)

	out := runKappa(t, 0, "replay", "--brokers", kafka, "--version", "v2", "--cutover")
	switched := time.Now()
	for _, want := range []string{"version v2 exists", "resuming", "v2 has caught up", "cutover: 2 instance(s) serve v2"} {
		if !strings.Contains(out, want) {
			t.Errorf("replay output lacks %q:\n%s", want, out)
		}
	}
	h.cutover(switched)
	h.waitAnswers(t, 300)
	h.finish(t)
	mon.finish(t)

	checkAllPlays(t, a.version("v1"), d.model)
	checkAllPlays(t, newClient(instances[1].http).version("v2"), d.model)
	checkFanZones(t, a.version("v1"), d, 3)
	checkFanZones(t, a, d, 2)

	// A replay from a time is refused without --force; with it, a version
	// that replaced the serving one cannot retire it.
	now := time.Now().UTC().Format(time.RFC3339)
	if out, code := runKappaCode(t, "replay", "--brokers", kafka, "--from", now); code != 2 || !strings.Contains(out, "refusing to replay from") {
		t.Errorf("replay --from a time: exit %d, want 2 and a refusal:\n%s", code, out)
	}
	if out, code := runKappaCode(t, "replay", "--brokers", kafka, "--version", "v3", "--from", now, "--force", "--retire"); code != 1 ||
		!strings.Contains(out, "refusing to retire v2: it is the serving version") {
		t.Errorf("replay --retire of the serving version: exit %d, want 1 and a refusal:\n%s", code, out)
	}

	out = runKappa(t, 0, "replay", "--brokers", kafka, "--version", "v2", "--retire", "--grace", "1s")
	if !strings.Contains(out, "retired v1") {
		t.Errorf("replay --retire output lacks the retirement:\n%s", out)
	}
	if status, err := a.getJSON("/v1/songs/1/plays?from=2026-03-01&to=2026-03-02&version=v1", &struct{}{}); status != http.StatusNotFound ||
		!strings.Contains(err.Error(), "version v1 is retired") {
		t.Errorf("version=v1 after the retirement: %d %v, want 404 retired", status, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	groups, err := adm.ListGroups(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, g := range groups.Groups() {
		if strings.HasPrefix(g, "kappa.v1.") {
			t.Errorf("group %s of the retired version still exists", g)
		}
	}
	topics, err := adm.ListTopics(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range topics.Names() {
		if strings.HasPrefix(name, "kappa.v1.") {
			t.Errorf("topic %s of the retired version still exists", name)
		}
	}
	for _, in := range instances {
		dir := filepath.Join(in.dataDir(), "v1")
		waitFor(t, 30*time.Second, "the instance to delete "+dir, func() (bool, string) {
			_, err := os.Stat(dir)
			return os.IsNotExist(err), fmt.Sprint(err)
		})
	}
	checkAllPlays(t, newClient(instances[1].http), d.model)

	status := runKappa(t, 0, "status", "--brokers", kafka, "--http", instances[0].http)
	for _, want := range []string{`serving v2 since`, `(?m)^v1 +retired `, `(?m)^v2 +running +earliest +\d+ +\d+ +yes +serving`,
		`(?m)^v3 +running +` + regexp.QuoteMeta(now) + ` \(forced\)`} {
		if !regexp.MustCompile(want).MatchString(status) {
			t.Errorf("kappa status does not match %s:\n%s", want, status)
		}
	}
}

// dataDir is the instance's --data.
func (in *instance) dataDir() string {
	i := slices.Index(in.args, "--data")
	return in.args[i+1]
}

// runKappa runs kappa to completion and returns its output; it fails the
// test unless kappa exits 0 within the timeout (0: three minutes).
func runKappa(t testing.TB, timeout time.Duration, args ...string) string {
	t.Helper()
	if timeout == 0 {
		timeout = 3 * time.Minute
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	out, err := exec.CommandContext(ctx, kappaBin, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("kappa %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// runKappaCode runs kappa to completion and returns its output and exit
// code.
func runKappaCode(t testing.TB, args ...string) (string, int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, kappaBin, args...).CombinedOutput()
	return string(out), exitCode(err)
}

// monitor samples a group's committed offsets on listens and records
// whether their sum ever went down.
type monitor struct {
	mu      sync.Mutex
	latest  int64
	dropped string
	stop    chan struct{}
	done    chan struct{}
}

// startMonitor samples group every 20 ms until finish.
func startMonitor(t testing.TB, adm *kadm.Client, group string) *monitor {
	t.Helper()
	m := &monitor{stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(m.done)
		for {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			committed, _, _, err := groupProgress(ctx, adm, group, "listens")
			cancel()
			if err == nil {
				m.mu.Lock()
				if committed < m.latest && m.dropped == "" {
					m.dropped = fmt.Sprintf("%s went back from %d to %d committed listens: the replay restarted", group, m.latest, committed)
				}
				m.latest = max(m.latest, committed)
				m.mu.Unlock()
			}
			select {
			case <-m.stop:
				return
			case <-time.After(20 * time.Millisecond):
			}
		}
	}()
	return m
}

func (m *monitor) last() int64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.latest
}

// finish stops the sampling and fails the test if the sum went down.
func (m *monitor) finish(t testing.TB) {
	t.Helper()
	close(m.stop)
	<-m.done
	if m.dropped != "" {
		t.Fatal(m.dropped)
	}
}

// zone is one fan zone of an answer.
type zone struct {
	Cell string `json:"cell"`
	Fans int64  `json:"fans"`
}

// hammer queries both instances without version= from a few goroutines:
// plays of random songs must equal the raw events' counts; fan zones of
// artists whose zones differ between the two configurations must be v1's
// or v2's, and v2's for requests sent after the cutover.
type hammer struct {
	d       *dataset
	clients []*client
	songs   []int64
	// zones holds, per artist, the res-7 zones of v1 (min plays 3) and v2 (2).
	zones   map[int64][2][]zone
	artists []int64

	mu        sync.Mutex
	switched  time.Time
	answers   int
	v1, v2    int
	failures  []string
	stop      chan struct{}
	wg        sync.WaitGroup
	stopOnce  sync.Once
	afterDone int
}

func startHammer(t testing.TB, d *dataset, instances []*instance) *hammer {
	t.Helper()
	h := &hammer{d: d, zones: map[int64][2][]zone{}, stop: make(chan struct{})}
	for _, in := range instances {
		h.clients = append(h.clients, newClient(in.http))
	}
	h.songs = slices.Sorted(maps.Keys(d.model.songs))
	models := [2]map[fanKey]int64{fanModel(t, d, 3), fanModel(t, d, 2)}
	for i, m := range models {
		for k, fans := range m {
			if k.res != 7 {
				continue
			}
			z := h.zones[k.artist]
			z[i] = append(z[i], zone{k.cell, fans})
			h.zones[k.artist] = z
		}
	}
	for artist, z := range h.zones {
		for i := range z {
			slices.SortFunc(z[i], func(a, b zone) int {
				return cmp.Or(cmp.Compare(b.Fans, a.Fans), strings.Compare(a.Cell, b.Cell))
			})
		}
		if !slices.Equal(z[0], z[1]) && len(z[1]) <= zoneLimit {
			h.artists = append(h.artists, artist)
		}
	}
	slices.Sort(h.artists)
	if len(h.artists) == 0 {
		t.Fatal("no artist has different zones in v1 and v2: the cutover check checks nothing")
	}
	t.Cleanup(h.halt)
	for w := range 3 {
		h.wg.Add(1)
		go h.run(rand.New(rand.NewPCG(uint64(w), 11)))
	}
	return h
}

// cutover marks when the cutover was done: answers to requests sent
// after it must be v2's.
func (h *hammer) cutover(at time.Time) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.switched = at
}

// waitAnswers waits for k more answers after the cutover.
func (h *hammer) waitAnswers(t testing.TB, k int) {
	t.Helper()
	waitFor(t, time.Minute, "answers after the cutover", func() (bool, string) {
		h.mu.Lock()
		defer h.mu.Unlock()
		return h.afterDone >= k, itoa(int64(h.afterDone))
	})
}

func (h *hammer) halt() {
	h.stopOnce.Do(func() { close(h.stop) })
	h.wg.Wait()
}

// finish stops the queries and fails the test if an answer was not 200
// or not right.
func (h *hammer) finish(t testing.TB) {
	t.Helper()
	h.halt()
	t.Logf("hammer: %d answers; fan zones: %d of v1, %d of v2", h.answers, h.v1, h.v2)
	if len(h.failures) > 0 {
		f := h.failures
		if len(f) > 10 {
			f = append(f[:10:10], fmt.Sprintf("… and %d more", len(h.failures)-10))
		}
		t.Fatalf("%d failed or wrong answers during the replay and cutover:\n%s", len(h.failures), strings.Join(f, "\n"))
	}
	if h.v1 == 0 || h.v2 == 0 {
		t.Fatalf("fan zones answered %d times as v1 and %d as v2: the hammer did not see both sides of the cutover", h.v1, h.v2)
	}
}

func (h *hammer) run(rng *rand.Rand) {
	defer h.wg.Done()
	for {
		select {
		case <-h.stop:
			return
		default:
		}
		c := h.clients[rng.IntN(len(h.clients))]
		h.mu.Lock()
		after := !h.switched.IsZero()
		h.mu.Unlock()
		var msg string
		var side int
		if rng.IntN(2) == 0 {
			msg = h.plays(c, h.songs[rng.IntN(len(h.songs))])
		} else {
			msg, side = h.fanZones(c, h.artists[rng.IntN(len(h.artists))], after)
		}
		h.mu.Lock()
		h.answers++
		if after {
			h.afterDone++
		}
		switch side {
		case 1:
			h.v1++
		case 2:
			h.v2++
		}
		if msg != "" {
			h.failures = append(h.failures, msg)
		}
		h.mu.Unlock()
	}
}

func (h *hammer) plays(c *client, song int64) string {
	m := h.d.model
	path := "/v1/songs/" + itoa(song) + "/plays?from=" + m.minDay + "&to=" + m.maxDay + "&by=day"
	var a playsAnswer
	if _, err := c.getJSON(path, &a); err != nil {
		return err.Error()
	}
	if g, w := got(a, "day"), expected(m.songs[song], m.minDay, m.maxDay, "day", ""); g != w {
		return fmt.Sprintf("%s\n  got  %s\n  want %s", path, g, w)
	}
	return ""
}

// fanZones checks one artist's zones; side is 1 or 2 for an answer that
// is v1's or v2's.
func (h *hammer) fanZones(c *client, artist int64, afterCutover bool) (msg string, side int) {
	path := "/v1/artists/" + itoa(artist) + "/fan-zones?res=7&min_fans=1&limit=" + itoa(zoneLimit)
	var a struct {
		Zones []zone `json:"zones"`
	}
	if _, err := c.getJSON(path, &a); err != nil {
		return err.Error(), 0
	}
	z := h.zones[artist]
	switch {
	case slices.Equal(a.Zones, z[1]):
		return "", 2
	case slices.Equal(a.Zones, z[0]) && afterCutover:
		return path + ": v1's zones after the cutover", 1
	case slices.Equal(a.Zones, z[0]):
		return "", 1
	}
	return fmt.Sprintf("%s: %d zones, neither v1's (%d) nor v2's (%d)", path, len(a.Zones), len(z[0]), len(z[1])), 0
}
