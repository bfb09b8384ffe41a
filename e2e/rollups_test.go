package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/kappa-stream/kappa/broker"
	"github.com/kappa-stream/kappa/generate"
)

func testConfig(events int) generate.Config {
	return generate.Config{
		Seed:              42,
		Users:             20_000,
		Artists:           400,
		Songs:             4_000,
		Events:            events,
		Span:              72 * time.Hour,
		MalformedRate:     0.005,
		LiveDrop:          true,
		LiveDropListeners: 5_000,
	}
}

// TestRollupsExact produces 200,000 generated events, half with kcat
// (librdkafka) and half with kappa produce, into `kappa up`'s embedded
// broker, and checks every song's and artist's answers, every artist's
// fan zones (a fan: 2 plays, so that thresholds are crossed after homes
// are known) and the DLQ.
func TestRollupsExact(t *testing.T) {
	const n = 200_000
	d := generateDataset(t, testConfig(n))
	kafka, httpAddr := freeAddr(t), freeAddr(t)
	startKappa(t, "up.log", "up", "--data", t.TempDir(), "--kafka-addr", kafka, "--http", httpAddr, "--fan-zones", "--fan-min-plays", "2")
	waitReady(t, httpAddr)

	produceWithKcat(t, kafka, d.writeLines(t, "kcat.txt", 0, n/2, true))
	produceWithKappa(t, kafka, d.writeLines(t, "produce.jsonl", n/2, n, false))
	waitCaughtUp(t, kafka, n, 2*time.Minute, httpAddr)

	checkDLQ(t, kafka, d)
	c := newClient(httpAddr)
	checkAllPlays(t, c, d.model)
	checkCountryFilter(t, c, d.model)
	checkFanZones(t, c, d, 2)

	out, err := exec.Command(kappaBin, "status", "--brokers", kafka, "--http", httpAddr).CombinedOutput()
	if err != nil {
		t.Fatalf("kappa status: %v\n%s", err, out)
	}
	for _, want := range []string{"total lag 0", "all sit where murmur2(key) puts them",
		"kappa.v1.users: partitions [0 1 2 3 4 5 6 7 8 9 10 11], lag 0",
		"kappa.v1.aggregates: partitions [0 1 2 3 4 5 6 7 8 9 10 11], lag 0",
		"pending publication: 0 users of fans\n"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("kappa status output lacks %q:\n%s", want, out)
		}
	}
}

// checkCountryFilter checks country= on the songs with the most countries.
func checkCountryFilter(t *testing.T, c *client, m *model) {
	t.Helper()
	checked := 0
	for id, cells := range m.songs {
		countries := map[string]bool{}
		for k := range cells {
			if k.Country != "" {
				countries[k.Country] = true
			}
		}
		if len(countries) < 3 {
			continue
		}
		for country := range countries {
			for _, by := range []string{"day", "country"} {
				path := "/v1/songs/" + itoa(id) + "/plays?from=" + m.minDay + "&to=" + m.maxDay + "&by=" + by + "&country=" + strings.ToLower(country)
				var a playsAnswer
				if _, err := c.getJSON(path, &a); err != nil {
					t.Fatal(err)
				}
				if g, w := got(a, by), expected(cells, m.minDay, m.maxDay, by, country); g != w {
					t.Fatalf("%s\n  got  %s\n  want %s", path, g, w)
				}
			}
		}
		if checked++; checked == 20 {
			return
		}
	}
	t.Fatalf("only %d songs have plays from 3 countries or more", checked)
}

// checkDLQ reads the committed records of listens.dlq: every malformed
// line must be there exactly once, with its original bytes and both
// headers, and nothing else.
func checkDLQ(t *testing.T, brokers string, d *dataset) {
	t.Helper()
	want := map[string]int{}
	for i, line := range d.lines {
		if d.bad[i] {
			want[string(line)]++
		}
	}
	dead := readCommitted(t, brokers, "listens.dlq")
	if len(dead) != d.malformed {
		t.Fatalf("listens.dlq has %d committed records, want %d (the malformed lines)", len(dead), d.malformed)
	}
	sources := map[string]string{}
	for _, r := range dead {
		var reason, source string
		for _, h := range r.Headers {
			switch h.Key {
			case "kappa-error":
				reason = string(h.Value)
			case "kappa-source":
				source = string(h.Value)
			}
		}
		if reason == "" || !strings.HasPrefix(source, "listens/") {
			t.Errorf("dead letter at offset %d has kappa-error %q, kappa-source %q", r.Offset, reason, source)
		}
		if _, dup := sources[source]; dup {
			t.Fatalf("two dead letters of source %s", source)
		}
		sources[source] = string(r.Value)
	}
	got := map[string]int{}
	for _, v := range sources {
		got[v]++
	}
	for line, n := range want {
		if got[line] != n {
			t.Fatalf("malformed line %q: %d dead letters, want %d", line, got[line], n)
		}
	}
}

// TestRestartMidStream stops `kappa up` with SIGTERM in the middle of a
// 1,000,000-event backlog, then kills it with SIGKILL in the middle, and
// checks that the final answers are still exact.
func TestRestartMidStream(t *testing.T) {
	const n = 1_000_000
	d := generateDataset(t, testConfig(n))
	b, err := broker.Start(broker.Config{Dir: t.TempDir(), Addr: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	kafka := b.Addr()
	createTopics(t, kafka)
	produceWithKappa(t, kafka, d.writeLines(t, "all.jsonl", 0, n, false))

	data, httpAddr := t.TempDir(), freeAddr(t)
	args := []string{"up", "--brokers", kafka, "--data", data, "--http", httpAddr}
	adm := newAdmin(t, kafka)
	var last int64
	for i, sig := range []syscall.Signal{syscall.SIGTERM, syscall.SIGKILL} {
		p := startKappa(t, "up-"+sig.String()+".log", args...)
		waitFor(t, time.Minute, "progress past "+itoa(last), func() (bool, string) {
			committed, end, _, err := groupProgress(context.Background(), adm, usersGroup, "listens")
			if err != nil {
				return false, err.Error()
			}
			return committed > last, itoa(committed) + " of " + itoa(end)
		})
		p.stop(t, sig)
		committed, _, _, err := groupProgress(context.Background(), adm, usersGroup, "listens")
		if err != nil {
			t.Fatal(err)
		}
		if committed >= n {
			t.Fatalf("run %d: the whole backlog was processed before %s; the kill was not mid-stream", i, sig)
		}
		t.Logf("%s after %d of %d records", sig, committed, n)
		last = committed
	}
	startKappa(t, "up-final.log", args...)
	waitCaughtUp(t, kafka, n, 3*time.Minute, httpAddr)
	waitReady(t, httpAddr)
	checkDLQ(t, kafka, d)
	checkAllPlays(t, newClient(httpAddr), d.model)
}

// TestEmbeddedBrokerKill kills `kappa up` (and with it the embedded broker)
// with SIGKILL after it has processed half the events, restarts it on the
// same data directory, and checks the log and the stores survived: the
// answers are exact before and after the second half is produced.
func TestEmbeddedBrokerKill(t *testing.T) {
	const n = 200_000
	d := generateDataset(t, testConfig(n))
	half := newModel()
	for i, line := range d.lines[:n/2] {
		if !d.bad[i] {
			if err := half.add(line); err != nil {
				t.Fatal(err)
			}
		}
	}
	data, kafka, httpAddr := t.TempDir(), freeAddr(t), freeAddr(t)
	args := []string{"up", "--data", data, "--kafka-addr", kafka, "--http", httpAddr}
	p := startKappa(t, "up-1.log", args...)
	waitReady(t, httpAddr)
	produceWithKappa(t, kafka, d.writeLines(t, "first.jsonl", 0, n/2, false))
	waitCaughtUp(t, kafka, n/2, 2*time.Minute, httpAddr)
	p.stop(t, syscall.SIGKILL)

	startKappa(t, "up-2.log", args...)
	waitReady(t, httpAddr)
	waitCaughtUp(t, kafka, n/2, 2*time.Minute, httpAddr)
	c := newClient(httpAddr)
	checkAllPlays(t, c, half)
	produceWithKcat(t, kafka, d.writeLines(t, "second.txt", n/2, n, true))
	waitCaughtUp(t, kafka, n, 2*time.Minute, httpAddr)
	checkDLQ(t, kafka, d)
	checkAllPlays(t, c, d.model)
}

// TestBadRequests checks the API's errors: 400 with a JSON error for bad
// parameters, zeros for unknown ids, JSON 404 for unknown paths.
// zonesAnswerBody is the body of GET /v1/artists/{id}/fan-zones.
type zonesAnswerBody struct {
	ArtistID int64 `json:"artist_id"`
	Res      int   `json:"res"`
	MinFans  int64 `json:"min_fans"`
	Zones    []struct {
		Cell string `json:"cell"`
		Fans int64  `json:"fans"`
	} `json:"zones"`
}

func TestBadRequests(t *testing.T) {
	kafka, httpAddr := freeAddr(t), freeAddr(t)
	startKappa(t, "up.log", "up", "--data", t.TempDir(), "--kafka-addr", kafka, "--http", httpAddr,
		"--fan-zones", "--h3-resolutions", "7,9")
	waitReady(t, httpAddr)
	c := newClient(httpAddr)
	for _, tc := range []struct {
		path   string
		status int
	}{
		{"/v1/songs/1/plays?from=2026-03-01&to=2026-03-02", http.StatusOK},
		{"/v1/songs/9223372036854775807/plays?from=2026-03-01&to=2026-03-02&by=country", http.StatusOK},
		{"/v1/songs/0/plays?from=2026-03-01&to=2026-03-02", http.StatusBadRequest},
		{"/v1/songs/abc/plays?from=2026-03-01&to=2026-03-02", http.StatusBadRequest},
		{"/v1/songs/9223372036854775808/plays?from=2026-03-01&to=2026-03-02", http.StatusBadRequest},
		{"/v1/songs/1/plays?to=2026-03-02", http.StatusBadRequest},
		{"/v1/songs/1/plays?from=2026-03-01", http.StatusBadRequest},
		{"/v1/songs/1/plays?from=2026-3-1&to=2026-03-02", http.StatusBadRequest},
		{"/v1/songs/1/plays?from=2026-03-05&to=2026-03-02", http.StatusBadRequest},
		{"/v1/songs/1/plays?from=2026-03-01&to=2026-03-02&by=week", http.StatusBadRequest},
		{"/v1/songs/1/plays?from=2026-03-01&to=2026-03-02&country=XX", http.StatusBadRequest},
		{"/v1/artists/-4/plays?from=2026-03-01&to=2026-03-02", http.StatusBadRequest},
		{"/v1/artists/4/plays?from=2026-03-01&to=2026-03-02&version=v9", http.StatusNotFound},
		{"/v1/nothing", http.StatusNotFound},
		{"/v1/songs/0/live", http.StatusBadRequest},
		{"/v1/songs/1/live?window=5m", http.StatusBadRequest},
		{"/v1/songs/1/live?window=soon", http.StatusBadRequest},
		{"/v1/songs/1/live?last=0", http.StatusBadRequest},
		{"/v1/songs/1/live?last=2882", http.StatusBadRequest},
		{"/v1/artists/1/fan-zones?res=8", http.StatusBadRequest},
		{"/v1/artists/1/fan-zones?res=x", http.StatusBadRequest},
		{"/v1/artists/1/fan-zones", http.StatusBadRequest},
		{"/v1/artists/1/fan-zones?res=7&min_fans=0", http.StatusBadRequest},
		{"/v1/artists/1/fan-zones?res=7&limit=10001", http.StatusBadRequest},
		{"/v1/artists/0/fan-zones?res=7", http.StatusBadRequest},
		{"/v1/cells/zzz/fans?artist_id=1", http.StatusBadRequest},
		{"/v1/cells/872a1072bffffff/fans", http.StatusBadRequest},
		{"/v1/cells/85283473fffffff/fans?artist_id=1", http.StatusBadRequest},
	} {
		var body map[string]any
		status, err := c.getJSON(tc.path, &body)
		if status != tc.status {
			t.Errorf("GET %s: status %d, want %d (%v)", tc.path, status, tc.status, err)
			continue
		}
		if tc.status == http.StatusOK {
			if err != nil || body["plays"] != float64(0) || body["streams"] != float64(0) {
				t.Errorf("GET %s: %v %v, want zeros", tc.path, body, err)
			}
			continue
		}
		resp, err := http.Get(c.base + tc.path)
		if err != nil {
			t.Fatal(err)
		}
		var e struct{ Error string }
		if err := decodeJSON(resp, &e); err != nil || e.Error == "" {
			t.Errorf("GET %s: error body without \"error\": %v", tc.path, err)
		}
	}
	var zones zonesAnswerBody
	if _, err := c.getJSON("/v1/artists/1/fan-zones?res=7&min_fans=3", &zones); err != nil ||
		zones.ArtistID != 1 || zones.Res != 7 || zones.MinFans != 3 || zones.Zones == nil || len(zones.Zones) != 0 {
		t.Errorf("fan zones of an artist without fans: %+v %v, want an empty list", zones, err)
	}
	var cellFans map[string]any
	if _, err := c.getJSON("/v1/cells/872a1072bffffff/fans?artist_id=1", &cellFans); err != nil ||
		cellFans["cell"] != "872a1072bffffff" || cellFans["res"] != float64(7) || cellFans["fans"] != float64(0) {
		t.Errorf("fans of an empty cell: %v %v", cellFans, err)
	}
	var live liveAnswer
	if _, err := c.getJSON("/v1/songs/1/live", &live); err != nil || live.SongID != 1 || live.Window != "1m" || live.Windows == nil {
		t.Errorf("live windows of a song without plays: %+v %v", live, err)
	}
	if out, err := exec.Command(kappaBin, "up", "--partitions", "0").CombinedOutput(); exitCode(err) != 2 || !strings.Contains(string(out), "Usage") {
		t.Errorf("kappa up --partitions 0: exit %d, want 2 with usage:\n%s", exitCode(err), out)
	}
	if out, err := exec.Command(kappaBin, "frobnicate").CombinedOutput(); exitCode(err) != 2 {
		t.Errorf("kappa frobnicate: exit %d, want 2:\n%s", exitCode(err), out)
	}
	if out, err := exec.Command(kappaBin, "produce", "--brokers", kafka, "--file", filepath.Join(t.TempDir(), "missing")).CombinedOutput(); exitCode(err) != 1 {
		t.Errorf("kappa produce of a missing file: exit %d, want 1:\n%s", exitCode(err), out)
	}
}

// TestIngestHTTP posts generated events to POST /v1/listens, as JSON lines
// and as a JSON array, and checks the answers like the Kafka path.
func TestIngestHTTP(t *testing.T) {
	const n = 4_000
	d := generateDataset(t, testConfig(n))
	kafka, httpAddr := freeAddr(t), freeAddr(t)
	startKappa(t, "up.log", "up", "--data", t.TempDir(), "--kafka-addr", kafka, "--http", httpAddr)
	waitReady(t, httpAddr)
	post := func(contentType string, body []byte) (accepted, rejected int) {
		t.Helper()
		resp, err := http.Post("http://"+httpAddr+"/v1/listens", contentType, bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		var out struct{ Accepted, Rejected int }
		if err := decodeJSON(resp, &out); err != nil || resp.StatusCode != http.StatusAccepted {
			t.Fatalf("POST /v1/listens: %d %v", resp.StatusCode, err)
		}
		return out.Accepted, out.Rejected
	}
	// An array holds only JSON values; the malformed lines that are not
	// JSON at all go with the JSON lines.
	asLines, inArray := d.lines[:n/2:n/2], [][]byte(nil)
	for _, l := range d.lines[n/2:] {
		if json.Valid(l) {
			inArray = append(inArray, l)
		} else {
			asLines = append(asLines, l)
		}
	}
	lines := bytes.Join(asLines, []byte("\n"))
	array := append(append([]byte("["), bytes.Join(inArray, []byte(","))...), ']')
	a1, r1 := post("application/x-ndjson", lines)
	a2, r2 := post("application/json", array)
	if a1+a2 != n-d.malformed || r1+r2 != d.malformed {
		t.Fatalf("accepted %d, rejected %d; want %d and %d", a1+a2, r1+r2, n-d.malformed, d.malformed)
	}
	waitCaughtUp(t, kafka, int64(n-d.malformed), time.Minute, httpAddr)
	checkAllPlays(t, newClient(httpAddr), d.model)
}
