package serve

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/http/pprof"
	"strings"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/uber/h3-go/v4"

	"github.com/kappa-stream/kappa/keys"
	"github.com/kappa-stream/kappa/processors"
	"github.com/kappa-stream/kappa/processors/fans"
	"github.com/kappa-stream/kappa/serve/auth"
	"github.com/kappa-stream/kappa/state"
	"github.com/kappa-stream/kappa/topology"
)

// fakeKeys verifies the tokens it holds; revoked ones are ErrRevoked.
type fakeKeys map[string]keys.Key

func (f fakeKeys) Verify(token string) (keys.Key, error) {
	k, ok := f[token]
	switch {
	case !ok:
		return keys.Key{}, keys.ErrUnknown
	case !k.Active():
		return keys.Key{}, keys.ErrRevoked
	}
	return k, nil
}

// testKeys draws a key of every role, and a revoked admin key.
func testKeys(t *testing.T) (fakeKeys, map[string]string) {
	t.Helper()
	ks, tokens := fakeKeys{}, map[string]string{}
	now := time.Now()
	for _, c := range []struct {
		name string
		role keys.Role
	}{{"admin", keys.Admin}, {"reader", keys.Reader}, {"partner", keys.Partner}, {"revoked", keys.Admin}} {
		tok, k, err := keys.New(c.role, c.name, now)
		if err != nil {
			t.Fatal(err)
		}
		if c.name == "revoked" {
			k.Revoked = &now
		}
		ks[tok], tokens[c.name] = k, tok
	}
	return ks, tokens
}

// The cells of the fan-zone tests: artist 3 has 12 fans in busy and 3 in
// quiet at resolution 7, 12 in busy's parent at 5 and one in lone at 9.
var (
	busy  = h3.LatLngToCell(h3.NewLatLng(51.5072, -0.1276), 7)
	quiet = h3.LatLngToCell(h3.NewLatLng(48.8566, 2.3522), 7)
	lone  = h3.LatLngToCell(h3.NewLatLng(40.7128, -74.0060), 9)
)

// newFanStore returns a store with the counts of fanDeltas, run through
// stage 2 as the topology would.
func newFanStore(t *testing.T) *state.Store {
	t.Helper()
	s, err := state.Open("db", state.WithFS(vfs.NewMem()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	parent := busy.Parent(5)
	ds := []fans.Delta{{Artist: 3, Res: 7, Cell: busy, N: 12}, {Artist: 3, Res: 7, Cell: quiet, N: 3},
		{Artist: 3, Res: 5, Cell: parent, N: 12}, {Artist: 3, Res: 9, Cell: lone, N: 1}}
	v := binary.AppendUvarint([]byte{fans.Format}, uint64(len(ds)))
	for i := range ds {
		v = ds[i].AppendValue(ds[i].AppendKey(v))
	}
	task := fans.NewStage2(s)
	if err := task.Process(&kgo.Record{Value: v}); err != nil {
		t.Fatal(err)
	}
	var out topology.Output
	if err := task.Prepare(&out); err != nil {
		t.Fatal(err)
	}
	b := s.NewBatch()
	for k, v := range out.Changes() {
		if err := b.Set(k, v); err != nil {
			t.Fatal(err)
		}
	}
	if err := b.Commit(false); err != nil {
		t.Fatal(err)
	}
	return s
}

// guarded is an instance's handler as kappa wires it: the API with
// ingest, status and metrics, the pprof mux, all behind auth.
func guarded(t *testing.T, p Placement, ks auth.Verifier, cl *auth.Cluster, open bool) http.Handler {
	t.Helper()
	log := &fakeLog{}
	api, err := New(Config{
		Versions: fixedVersions{"v1", map[string]*Backend{"v1": {Rollups: p, Processors: fansOn(t)}}},
		Ready:    func(context.Context) (bool, error) { return true, nil },
		Produce:  log.produce,
		Metrics:  http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.Write([]byte("# metrics\n")) }),
		Status:   func() any { return map[string]string{"instance": "a"} },
		Peers:    cl.Transport(nil),
		Floors:   &Floors{},
	})
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.Handle("/", api)
	h, err := auth.New(auth.Config{Keys: ks, Cluster: cl, Open: open}, mux)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

func newCluster(t *testing.T, secret string) *auth.Cluster {
	t.Helper()
	cl, err := auth.NewCluster([]byte(secret))
	if err != nil {
		t.Fatal(err)
	}
	return cl
}

// TestAccessMatrix asks every route with no key, a bogus, a malformed
// and a revoked key, a key of each role (in the header, and a reader's
// in the login cookie) and as another instance, in open and in closed
// mode, and checks the status: 401 for no valid key, 403 outside the
// role, else the route's own answer.
func TestAccessMatrix(t *testing.T) {
	ks, tokens := testKeys(t)
	cl := newCluster(t, "the cluster secret, 32 bytes....")
	const day = "from=2026-03-01&to=2026-03-31"
	cell := busy.String()
	// Who may reach a route: "public" anyone; "internal" the cluster
	// only; "partner", "admin" those keys; "reader" reader and admin
	// keys. ok is the route's own answer.
	routes := []struct {
		method, target, body, who string
		ok                        int
	}{
		{"GET", "/healthz", "", "public", 200},
		{"GET", "/readyz", "", "public", 200},
		{"GET", "/login", "", "public", 200},
		{"GET", "/v1/songs/7/plays?" + day, "", "reader", 200},
		{"GET", "/v1/artists/3/plays?" + day, "", "reader", 200},
		{"GET", "/v1/songs/7/live", "", "reader", 404}, // NB: live windows off in this backend
		{"GET", "/v1/artists/3/fan-zones?res=7", "", "reader", 200},
		{"GET", "/v1/cells/" + cell + "/fans?artist_id=3", "", "reader", 200},
		{"GET", "/v1/songs/7/similar", "", "reader", 404}, // NB: similarity off in this backend
		{"GET", "/v1/top/artists?" + day, "", "reader", 404},
		{"GET", "/", "", "reader", 404},                    // NB: the UI is not served yet
		{"GET", "/artists/3/fan-zones", "", "reader", 404}, // NB: the UI is not served yet
		{"GET", "/v1/users/1/similar", "", "admin", 404},
		{"POST", "/v1/listens", `{"user_id":1,"song_id":1,"artist_id":1,"ts":1772323200000}`, "admin", 202},
		{"GET", "/v1/status", "", "admin", 200},
		{"GET", "/metrics", "", "admin", 200},
		{"GET", "/debug/pprof/", "", "admin", 200},
		{"GET", "/debug/pprof/cmdline", "", "admin", 200},
		{"POST", "/internal/v1/similar/members", `{"kind":"u","buckets":["1:ff"],"limit":5}`, "internal", 404},
		{"POST", "/internal/v1/similar/score", `{"kind":"u","query":"","ids":[1],"n":1}`, "internal", 404},
		{"GET", "/partner/v1/budget", "", "partner", 404},
		{"GET", "/partner/v1", "", "partner", 404},
	}
	// expect is the status of a route for a caller: role is the key's
	// role, "" without a key, "bogus" for an invalid one, "cluster" for
	// another instance.
	expect := func(who string, ok int, caller string, open bool) int {
		switch {
		case who == "public":
			return ok
		case caller == "cluster":
			if who == "internal" {
				return ok
			}
			return 403 // NB: a call without a client's role
		case who == "internal":
			return 403
		case caller == "bogus":
			return 401
		case caller == "":
			if open && who != "partner" {
				return ok
			}
			return 401
		case who == "partner":
			if caller == "partner" {
				return ok
			}
			return 403
		case who == "admin":
			if caller == "admin" {
				return ok
			}
			return 403
		}
		if caller == "admin" || caller == "reader" {
			return ok
		}
		return 403
	}
	callers := []struct {
		name, caller string
		set          func(*http.Request)
	}{
		{"no key", "", func(*http.Request) {}},
		{"bogus key", "bogus", func(r *http.Request) {
			r.Header.Set("Authorization", "Bearer kappa_0123456789abcdef_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA")
		}},
		{"malformed header", "bogus", func(r *http.Request) { r.Header.Set("Authorization", "Basic "+tokens["admin"]) }},
		{"revoked key", "bogus", func(r *http.Request) { r.Header.Set("Authorization", "Bearer "+tokens["revoked"]) }},
		{"admin key", "admin", func(r *http.Request) { r.Header.Set("Authorization", "Bearer "+tokens["admin"]) }},
		{"reader key", "reader", func(r *http.Request) { r.Header.Set("Authorization", "Bearer "+tokens["reader"]) }},
		{"partner key", "partner", func(r *http.Request) { r.Header.Set("Authorization", "bearer "+tokens["partner"]) }},
		{"reader cookie", "reader", func(r *http.Request) { r.AddCookie(&http.Cookie{Name: "kappa_key", Value: tokens["reader"]}) }},
		{"cluster", "cluster", func(r *http.Request) { cl.Sign(r, "") }},
		{"other cluster", "bogus cluster", func(r *http.Request) { newCluster(t, "another cluster's secret, 32 b..").Sign(r, keys.Admin) }},
	}
	for _, open := range []bool{false, true} {
		h := guarded(t, &fakePlacement{store: newFanStore(t)}, ks, cl, open)
		mode := map[bool]string{false: "closed", true: "open"}[open]
		for _, c := range callers {
			for _, rt := range routes {
				want := expect(rt.who, rt.ok, c.caller, open)
				switch {
				case c.caller == "bogus cluster" && rt.who != "public":
					want = 403
				case c.name == "reader cookie" && rt.method != "GET" && rt.who != "public" && rt.who != "internal":
					// NB: the cookie counts on GET and HEAD only
					want = expect(rt.who, rt.ok, "", open)
				}
				req := httptest.NewRequest(rt.method, rt.target, strings.NewReader(rt.body))
				c.set(req)
				rec := httptest.NewRecorder()
				h.ServeHTTP(rec, req)
				if rec.Code != want {
					t.Errorf("%s mode, %s: %s %s: %d %s, want %d", mode, c.name, rt.method, rt.target, rec.Code, strings.TrimSpace(rec.Body.String()), want)
				}
				if rec.Code == 401 && rec.Header().Get("WWW-Authenticate") == "" {
					t.Errorf("%s mode, %s: %s %s: 401 without WWW-Authenticate", mode, c.name, rt.method, rt.target)
				}
			}
		}
	}
}

// TestFloors reads the fan zones of artist 3 as each role: admins see
// every cell, readers none with fewer than 10 fans and no resolution
// finer than 8, also through another instance that forwards to the
// owner, which applies the floors of the role the forwarder names.
func TestFloors(t *testing.T) {
	ks, tokens := testKeys(t)
	cl := newCluster(t, "the cluster secret, 32 bytes....")
	owner := httptest.NewServer(guarded(t, &fakePlacement{store: newFanStore(t)}, ks, cl, false))
	t.Cleanup(owner.Close)
	other := httptest.NewServer(guarded(t, &fakePlacement{owner: owner.URL}, ks, cl, false))
	t.Cleanup(other.Close)
	stranger := httptest.NewServer(guarded(t, &fakePlacement{owner: owner.URL}, ks, newCluster(t, "another cluster's secret, 32 b.."), false))
	t.Cleanup(stranger.Close)
	zones := `{"artist_id":3,"res":7,"min_fans":%s,"zones":[%s]}`
	all := `{"cell":"` + busy.String() + `","fans":12},{"cell":"` + quiet.String() + `","fans":3}`
	busyOnly := `{"cell":"` + busy.String() + `","fans":12}`
	for _, tc := range []struct {
		key, target string
		status      int
		body        string
	}{
		{"admin", "/v1/artists/3/fan-zones?res=7", 200, strings.Replace(strings.Replace(zones, "%s", "1", 1), "%s", all, 1)},
		{"reader", "/v1/artists/3/fan-zones?res=7", 200, strings.Replace(strings.Replace(zones, "%s", "10", 1), "%s", busyOnly, 1)},
		{"reader", "/v1/artists/3/fan-zones?res=7&min_fans=1", 200, strings.Replace(strings.Replace(zones, "%s", "10", 1), "%s", busyOnly, 1)},
		{"reader", "/v1/artists/3/fan-zones?res=7&min_fans=13", 200, strings.Replace(strings.Replace(zones, "%s", "13", 1), "%s", "", 1)},
		{"reader", "/v1/artists/3/fan-zones?res=9", 403, `{"error":"resolution 9 is finer than --max-public-res 8 allows a non-admin key"}`},
		{"admin", "/v1/artists/3/fan-zones?res=9", 200, `{"artist_id":3,"res":9,"min_fans":1,"zones":[{"cell":"` + lone.String() + `","fans":1}]}`},
		{"reader", "/v1/cells/" + busy.String() + "/fans?artist_id=3", 200, `{"cell":"` + busy.String() + `","res":7,"fans":12}`},
		{"reader", "/v1/cells/" + quiet.String() + "/fans?artist_id=3", 200, `{"cell":"` + quiet.String() + `","res":7,"fans":0,"suppressed":true}`},
		{"reader", "/v1/cells/" + busy.String() + "/fans?artist_id=4", 200, `{"cell":"` + busy.String() + `","res":7,"fans":0,"suppressed":true}`},
		{"admin", "/v1/cells/" + quiet.String() + "/fans?artist_id=3", 200, `{"cell":"` + quiet.String() + `","res":7,"fans":3}`},
		{"reader", "/v1/cells/" + lone.String() + "/fans?artist_id=3", 403, `{"error":"resolution 9 is finer than --max-public-res 8 allows a non-admin key"}`},
	} {
		for _, srv := range []*httptest.Server{owner, other} {
			req, _ := http.NewRequest("GET", srv.URL+tc.target, nil)
			req.Header.Set("Authorization", "Bearer "+tokens[tc.key])
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			var body json.RawMessage
			if err := decodeJSONBody(resp, &body); err != nil {
				t.Fatal(err)
			}
			via := map[*httptest.Server]string{owner: "owner", other: "forwarded"}[srv]
			if resp.StatusCode != tc.status || string(body) != tc.body {
				t.Errorf("%s, %s key: %s: %d %s\nwant %d %s", via, tc.key, tc.target, resp.StatusCode, body, tc.status, tc.body)
			}
		}
	}
	// An instance with another cluster's secret cannot forward: the
	// owner refuses it.
	req, _ := http.NewRequest("GET", stranger.URL+"/v1/artists/3/fan-zones?res=7", nil)
	req.Header.Set("Authorization", "Bearer "+tokens["admin"])
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden {
		t.Fatalf("forwarded with another cluster's secret: %d, want 403", resp.StatusCode)
	}
}

func decodeJSONBody(resp *http.Response, v *json.RawMessage) error {
	defer resp.Body.Close()
	var raw json.RawMessage
	if err := json.NewDecoder(resp.Body).Decode(&raw); err != nil {
		return err
	}
	*v = raw
	return nil
}

// fansOn is the processors of a version with the fan zones on, at the
// default resolutions.
func fansOn(t *testing.T) map[string]processors.Processor {
	t.Helper()
	o := fans.Spec.Options().(*fans.Options)
	o.On = true
	p, err := o.New(processors.Env{Partitions: 1})
	if err != nil {
		t.Fatal(err)
	}
	return map[string]processors.Processor{fans.Spec.Name: p}
}
