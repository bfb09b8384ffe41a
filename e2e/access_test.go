package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/uber/h3-go/v4"
)

// createKey runs kappa keys create and returns the key it prints.
func createKey(t testing.TB, kafka, role, name string, flags ...string) string {
	t.Helper()
	if role == "partner" && len(flags) == 0 {
		flags = []string{"--epsilon-budget", "10"}
	}
	var stdout, stderr bytes.Buffer
	cmd := exec.Command(kappaBin, append([]string{"keys", "create", "--brokers", kafka, "--role", role, "--name", name}, flags...)...)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("kappa keys create: %v\n%s", err, stderr.String())
	}
	key := strings.TrimSpace(stdout.String())
	if !strings.HasPrefix(key, "kappa_") || strings.Contains(stderr.String(), key) {
		t.Fatalf("kappa keys create printed %q to stdout and %q to stderr", key, stderr.String())
	}
	return key
}

// keysCmd runs kappa keys with args and returns its combined output.
func keysCmd(t testing.TB, args ...string) string {
	t.Helper()
	out, err := exec.Command(kappaBin, append([]string{"keys"}, args...)...).CombinedOutput()
	if err != nil {
		t.Fatalf("kappa keys %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// call sends a request with the key (none when empty) and returns the
// status and the body.
func call(t testing.TB, method, url, body, key string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(b)
}

// secretOf is the random part of a key (kappa_<id>_<secret>, the secret
// in base64url, which has '_' too), which must appear nowhere but in the
// output of kappa keys create.
func secretOf(key string) string { return strings.SplitN(key, "_", 3)[2] }

// checkNotLogged fails when a log holds any of the keys.
func checkNotLogged(t testing.TB, logs []string, keys ...string) {
	t.Helper()
	for _, path := range logs {
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		for _, k := range keys {
			if bytes.Contains(b, []byte(secretOf(k))) {
				t.Fatalf("the log %s holds an API key", path)
			}
		}
	}
}

// TestAccess runs kappa up on loopback, open (a request without a key is
// an admin's), then, restarted with --require-keys, closed: every route
// as every kind of caller answers the specified 200/401/403; the
// home-cell attack and the membership test through /internal fail with
// the default floors; keys survive the restart and are never logged.
func TestAccess(t *testing.T) {
	kafka, httpAddr := freeAddr(t), freeAddr(t)
	base := "http://" + httpAddr
	args := []string{"up", "--data", t.TempDir(), "--kafka-addr", kafka, "--http", httpAddr,
		"--fan-zones", "--fan-delay", "100ms", "--similar", "--similar-delay", "100ms", "--pprof"}
	open := startKappa(t, "up-open.log", args...)
	waitReady(t, httpAddr)
	if b, _ := os.ReadFile(open.log); !bytes.Contains(b, []byte("HTTP API open on loopback")) {
		t.Fatalf("kappa up did not say it runs open:\n%s", tail(open.log, 20))
	}
	keys := map[string]string{}
	for _, role := range []string{"admin", "reader", "partner"} {
		keys[role] = createKey(t, kafka, role, "e2e "+role)
	}
	keys["revoked"] = createKey(t, kafka, "admin", "gone")
	keysCmd(t, "revoke", "--brokers", kafka, "gone")
	list := keysCmd(t, "list", "--brokers", kafka)
	if strings.Count(list, "\n") != 5 || !strings.Contains(list, "e2e reader") || strings.Contains(list, secretOf(keys["admin"])) {
		t.Fatalf("kappa keys list:\n%s", list)
	}

	// The target lives in Lyon and plays artist 10; 30 other users live
	// in Paris. The attacker holds a reader key and wants the target's
	// home: it would make the target the only fan of artist 777777,
	// which nobody plays, and read that artist's zones.
	const target, unused = 4242, 777777
	home := h3.NewLatLng(45.764, 4.8357)
	now := time.Now().UTC().Truncate(time.Second)
	ts := func(i int) string { return now.Add(-time.Duration(i) * time.Second).Format(time.RFC3339) }
	var lines []string
	lines = append(lines, fmt.Sprintf(`{"user_id":%d,"song_id":100,"artist_id":10,"ts":%q,"lat":%g,"lng":%g}`, target, ts(100), home.Lat, home.Lng))
	for u := range 30 {
		lines = append(lines, fmt.Sprintf(`{"user_id":%d,"song_id":100,"artist_id":10,"ts":%q,"lat":48.8566,"lng":2.3522}`, 5000+u, ts(90)))
	}
	attack := fmt.Sprintf(`{"user_id":%d,"song_id":%d,"artist_id":%d,"ts":%q}`, target, unused, unused, ts(10))
	if status, body := call(t, "POST", base+"/v1/listens", attack, keys["reader"]); status != 403 {
		t.Fatalf("a reader ingests: %d %s, want 403", status, body)
	}
	// Say the attacker gets its listen in anyway (an admin's ingest).
	lines = append(lines, attack)
	if status, body := call(t, "POST", base+"/v1/listens", strings.Join(lines, "\n"), keys["admin"]); status != 202 {
		t.Fatalf("admin ingest: %d %s", status, body)
	}
	homeCell := func(res int) string { return h3.LatLngToCell(home, res).String() }
	alone := fmt.Sprintf(`{"artist_id":%d,"res":9,"min_fans":1,"zones":[{"cell":"%s","fans":1}]}`, unused, homeCell(9))
	waitFor(t, time.Minute, "the admin to see the target alone in its cell", func() (bool, string) {
		status, body := call(t, "GET", base+fmt.Sprintf("/v1/artists/%d/fan-zones?res=9", unused), "", keys["admin"])
		return status == 200 && strings.TrimSpace(body) == alone, fmt.Sprintf("%d %s", status, body)
	})
	for _, tc := range []struct{ path, want string }{
		{fmt.Sprintf("/v1/artists/%d/fan-zones?res=9&min_fans=1", unused), `403 {"error":"resolution 9 is finer than --max-public-res 8 allows a non-admin key"}`},
		{fmt.Sprintf("/v1/artists/%d/fan-zones?res=8&min_fans=1", unused), fmt.Sprintf(`200 {"artist_id":%d,"res":8,"min_fans":10,"zones":[]}`, unused)},
		{fmt.Sprintf("/v1/artists/%d/fan-zones?res=5&min_fans=1", unused), fmt.Sprintf(`200 {"artist_id":%d,"res":5,"min_fans":10,"zones":[]}`, unused)},
		{fmt.Sprintf("/v1/cells/%s/fans?artist_id=%d", homeCell(8), unused), fmt.Sprintf(`200 {"cell":"%s","res":8,"fans":0,"suppressed":true}`, homeCell(8))},
		{fmt.Sprintf("/v1/cells/%s/fans?artist_id=%d", homeCell(9), unused), `403 {"error":"resolution 9 is finer than --max-public-res 8 allows a non-admin key"}`},
		// The 30 Paris fans of artist 10 pass the floor; the target's cell does not.
		{"/v1/artists/10/fan-zones?res=8&min_fans=1", fmt.Sprintf(`200 {"artist_id":10,"res":8,"min_fans":10,"zones":[{"cell":"%s","fans":30}]}`, h3.LatLngToCell(h3.NewLatLng(48.8566, 2.3522), 8))},
	} {
		status, body := call(t, "GET", base+tc.path, "", keys["reader"])
		if got := fmt.Sprintf("%d %s", status, strings.TrimSpace(body)); got != tc.want {
			t.Errorf("reader: %s:\n got  %s\n want %s", tc.path, got, tc.want)
		}
	}

	// Membership: does the target play artist a? The similar-user answer
	// is per-user data (admins only); /internal takes only instances.
	waitFor(t, time.Minute, "the target's similar users", func() (bool, string) {
		status, body := call(t, "GET", base+fmt.Sprintf("/v1/users/%d/similar", target), "", keys["admin"])
		return status == 200, fmt.Sprintf("%d %s", status, body)
	})
	score := fmt.Sprintf(`{"kind":"u","query":"AAAA","ids":[%d],"n":1}`, target)
	for _, key := range []string{"", "admin", "reader"} {
		if status, body := call(t, "GET", base+fmt.Sprintf("/v1/users/%d/similar", target), "", keys["reader"]); status != 403 {
			t.Errorf("reader: similar users: %d %s, want 403", status, body)
		}
		for _, path := range []string{"/internal/v1/similar/score", "/internal/v1/similar/members"} {
			if status, body := call(t, "POST", base+path+"?version=v1", score, keys[key]); status != 403 {
				t.Errorf("%q key: POST %s: %d %s, want 403", key, path, status, body)
			}
		}
	}

	checkRoutes(t, base, keys, true)
	open.stop(t, syscall.SIGTERM)
	closed := startKappa(t, "up-closed.log", append(args, "--require-keys")...)
	waitReady(t, httpAddr)
	if b, _ := os.ReadFile(closed.log); !bytes.Contains(b, []byte("HTTP API requires API keys")) {
		t.Fatalf("kappa up --require-keys did not say it requires keys:\n%s", tail(closed.log, 20))
	}
	checkRoutes(t, base, keys, false)
	// kappa status reads /v1/status with the admin key of $KAPPA_API_KEY.
	for _, key := range []string{"", keys["reader"], keys["admin"]} {
		status := exec.Command(kappaBin, "status", "--brokers", kafka, "--http", httpAddr)
		status.Env = append(os.Environ(), "KAPPA_API_KEY="+key)
		out, err := status.CombinedOutput()
		want := "requires an admin API key in $KAPPA_API_KEY"
		if key == keys["admin"] {
			want = "instance kappa-up-"
		}
		if err != nil || !bytes.Contains(out, []byte(want)) {
			t.Errorf("kappa status with key %q: %v, want %q in:\n%s", key[:min(len(key), 6)], err, want, out)
		}
	}
	checkNotLogged(t, []string{open.log, closed.log}, keys["admin"], keys["reader"], keys["partner"], keys["revoked"])
}

// checkRoutes asks every route of the instance at base as every kind of
// caller and checks the status.
func checkRoutes(t testing.TB, base string, keys map[string]string, open bool) {
	t.Helper()
	day := time.Now().UTC().Format(time.DateOnly)
	cell := h3.LatLngToCell(h3.NewLatLng(48.8566, 2.3522), 7).String()
	// who: "public" anyone; "internal" instances only; "partner",
	// "admin" those keys; "reader" reader and admin keys. ok is the
	// route's own answer.
	routes := []struct {
		method, path, body, who string
		ok                      int
	}{
		{"GET", "/healthz", "", "public", 200},
		{"GET", "/readyz", "", "public", 200},
		{"GET", "/login", "", "public", 200},
		{"GET", "/v1/songs/100/plays?from=" + day + "&to=" + day, "", "reader", 200},
		{"GET", "/v1/artists/10/plays?from=" + day + "&to=" + day + "&by=country", "", "reader", 200},
		{"GET", "/v1/songs/100/live?last=2", "", "reader", 200},
		{"GET", "/v1/artists/10/fan-zones?res=7", "", "reader", 200},
		{"GET", "/v1/cells/" + cell + "/fans?artist_id=10", "", "reader", 200},
		{"GET", "/v1/songs/100/similar", "", "reader", 404}, // NB: no feature vector
		{"GET", "/", "", "reader", 200},
		{"GET", "/artists/10", "", "reader", 200},
		{"GET", "/v1/users/4242/similar", "", "admin", 200},
		{"POST", "/v1/listens", `{"user_id":9,"song_id":9,"artist_id":9,"ts":1772323200000}`, "admin", 202},
		{"GET", "/v1/status", "", "admin", 200},
		{"GET", "/metrics", "", "admin", 200},
		{"GET", "/debug/pprof/", "", "admin", 200},
		{"GET", "/debug/pprof/heap", "", "admin", 200},
		{"POST", "/internal/v1/similar/members?version=v1", `{"kind":"u","buckets":["1:ff"],"limit":5}`, "internal", 0},
		{"POST", "/internal/v1/similar/score?version=v1", `{"kind":"u","query":"AAAA","ids":[1],"n":1}`, "internal", 0},
		{"GET", "/partner/v1/budget", "", "partner", 200},
	}
	mode := map[bool]string{true: "open", false: "closed"}[open]
	for _, caller := range []string{"", "bogus", "revoked", "admin", "reader", "partner"} {
		key := keys[caller]
		if caller == "bogus" {
			key = "kappa_0123456789abcdef_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
		}
		for _, rt := range routes {
			var want int
			switch {
			case rt.who == "public":
				want = rt.ok
			case rt.who == "internal":
				want = 403
			case caller == "bogus" || caller == "revoked":
				want = 401
			case caller == "":
				want = 401
				if open && rt.who != "partner" {
					want = rt.ok
				}
			case rt.who == caller || (rt.who == "reader" && caller == "admin"):
				want = rt.ok
			default:
				want = 403
			}
			status, body := call(t, rt.method, base+rt.path, rt.body, key)
			if status != want {
				t.Errorf("%s mode, %q key: %s %s: %d %s, want %d", mode, caller, rt.method, rt.path, status, strings.TrimSpace(body), want)
			}
			if status == 401 && !json.Valid([]byte(body)) {
				t.Errorf("%s %s: 401 body %q is not JSON", rt.method, rt.path, body)
			}
		}
	}
}

// TestRevocation runs two kappa process instances: a key revoked with
// kappa keys revoke stops working on both, and a reader key reads every
// answer exactly through both (half of them forwarded between the
// instances with the cluster secret). An instance refuses to serve on
// a non-loopback address without keys, or to start without the secret.
func TestRevocation(t *testing.T) {
	b := startBroker(t, t.TempDir(), "127.0.0.1:0")
	kafka := b.Addr()
	createTopics(t, kafka)

	refused := exec.Command(kappaBin, "process", "--brokers", kafka, "--instance-id", "exposed",
		"--data", t.TempDir(), "--http", "0.0.0.0:0")
	out, err := refused.CombinedOutput()
	if exitCode(err) != 1 || !bytes.Contains(out, []byte("refusing to serve on")) {
		t.Fatalf("kappa process on 0.0.0.0 without keys: exit %d\n%s", exitCode(err), out)
	}
	noSecret := exec.Command(kappaBin, "process", "--brokers", kafka, "--data", t.TempDir(), "--http", "127.0.0.1:0")
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, envClusterSecret+"=") {
			noSecret.Env = append(noSecret.Env, kv)
		}
	}
	out, err = noSecret.CombinedOutput()
	if exitCode(err) != 2 || !bytes.Contains(out, []byte("a cluster secret is required")) {
		t.Fatalf("kappa process without a cluster secret: exit %d\n%s", exitCode(err), out)
	}

	admin := createKey(t, kafka, "admin", "ops")
	reader := createKey(t, kafka, "reader", "dashboard")
	instances := []*instance{newInstance(t, kafka, "a"), newInstance(t, kafka, "b")}
	for _, in := range instances {
		in.start(t)
	}
	for _, in := range instances {
		waitReady(t, in.http)
	}
	const n = 3000
	d := generateDataset(t, testConfig(n))
	produceWithKappa(t, kafka, d.writeLines(t, "listens.jsonl", 0, n, false))
	waitCaughtUp(t, kafka, n, 2*time.Minute, addrs(instances)...)
	for _, in := range instances {
		checkAllPlays(t, newClient(in.http).withKey(reader), d.model)
	}

	path := "/v1/songs/1/plays?from=2026-01-01&to=2026-01-02"
	revoked := time.Now()
	keysCmd(t, "revoke", "--brokers", kafka, "dashboard")
	waitFor(t, 30*time.Second, "the revocation on every instance", func() (bool, string) {
		var states []string
		for _, in := range instances {
			status, _ := call(t, "GET", "http://"+in.http+path, "", reader)
			states = append(states, fmt.Sprintf("%s: %d", in.id, status))
			if status != 401 {
				return false, strings.Join(states, ", ")
			}
		}
		return true, ""
	})
	t.Logf("the revoked key failed on both instances %s after kappa keys revoke started", time.Since(revoked).Round(time.Millisecond))
	for _, in := range instances {
		if status, body := call(t, "GET", "http://"+in.http+path, "", admin); status != 200 {
			t.Fatalf("admin on %s after the revocation: %d %s", in.id, status, body)
		}
	}
	var logs []string
	for _, in := range instances {
		logs = append(logs, in.p.log)
	}
	checkNotLogged(t, logs, admin, reader)
}
