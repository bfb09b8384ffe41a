package serve

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/kappa-stream/kappa/events"
	"github.com/kappa-stream/kappa/processors/rollups"
	"github.com/kappa-stream/kappa/state"
	"github.com/kappa-stream/kappa/topology"
)

type fakeLog struct {
	users  []int64
	values []string
	err    error
}

func (f *fakeLog) produce(_ context.Context, users []int64, values [][]byte) error {
	if f.err != nil {
		return f.err
	}
	f.users = append(f.users, users...)
	for _, v := range values {
		f.values = append(f.values, string(v))
	}
	return nil
}

// fakePlacement locates every key in store when it is set, else at
// owner. It records the keys it was asked for and counts releases.
type fakePlacement struct {
	store *state.Store
	owner string

	mu       sync.Mutex
	keys     []string
	releases int
}

func (f *fakePlacement) Locate(key []byte) Location {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.keys = append(f.keys, string(key))
	if f.store == nil {
		return Location{Owner: f.owner}
	}
	return Location{Store: f.store, Release: func() {
		f.mu.Lock()
		defer f.mu.Unlock()
		f.releases++
	}}
}

// counts returns the keys located so far and the releases.
func (f *fakePlacement) counts() ([]string, int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.keys), f.releases
}

// testListens are the listens in the store of newStore.
var testListens = []string{
	`{"user_id":1,"song_id":7,"artist_id":3,"ts":"2026-03-01T10:00:00Z","ms_played":31000,"country":"GB"}`,
	`{"user_id":2,"song_id":7,"artist_id":3,"ts":"2026-03-02T10:00:00Z"}`,
}

// newStore returns an in-memory store with the rollups of testListens,
// run through both stages as the topology would.
func newStore(t testing.TB) *state.Store {
	t.Helper()
	s, err := state.Open("db", state.WithFS(vfs.NewMem()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	users := rollups.NewStage1("deltas", 4)
	var dec events.Decoder
	var l events.Listen
	for _, line := range testListens {
		if err := dec.Decode([]byte(line), &l); err != nil {
			t.Fatal(err)
		}
		if err := users.Add(&l); err != nil {
			t.Fatal(err)
		}
	}
	var deltas topology.Output
	if err := users.Prepare(&deltas, false); err != nil {
		t.Fatal(err)
	}
	agg := rollups.NewStage2(s, nil)
	for _, rec := range deltas.Records() {
		if err := agg.Process(rec); err != nil {
			t.Fatal(err)
		}
	}
	var changes topology.Output
	if err := agg.Prepare(&changes); err != nil {
		t.Fatal(err)
	}
	b := s.NewBatch()
	for k, v := range changes.Changes() {
		if err := b.Set(k, v); err != nil {
			t.Fatal(err)
		}
	}
	if err := b.Commit(false); err != nil {
		t.Fatal(err)
	}
	return s
}

// fixedVersions serves the versions of backends; the others are unknown.
type fixedVersions struct {
	serving  string
	backends map[string]*Backend
}

func (f fixedVersions) Serving() string { return f.serving }

func (f fixedVersions) Backend(v string) (*Backend, error) {
	b, ok := f.backends[v]
	if v == "v9" {
		return nil, fmt.Errorf("%w: v9 starts", ErrStarting)
	}
	if !ok {
		return nil, errors.New("version " + strconv.Quote(v) + " does not run here")
	}
	return b, nil
}

// newServer serves version v1 from p.
func newServer(t *testing.T, p Placement, log *fakeLog) *Server {
	t.Helper()
	return newVersionsServer(t, fixedVersions{"v1", map[string]*Backend{"v1": {Rollups: p}}}, log)
}

func newVersionsServer(t *testing.T, vs Versions, log *fakeLog) *Server {
	t.Helper()
	srv, err := New(Config{
		Versions: vs,
		Ready:    func(context.Context) (bool, error) { return true, nil },
		Produce:  log.produce,
	})
	if err != nil {
		t.Fatal(err)
	}
	return srv
}

func newTestServer(t *testing.T, log *fakeLog) *Server {
	t.Helper()
	return newServer(t, &fakePlacement{store: newStore(t)}, log)
}

func do(t *testing.T, h http.Handler, method, target, body string) (int, string) {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(method, target, strings.NewReader(body)))
	if ct := rec.Header().Get("Content-Type"); ct != "application/json" && rec.Code != http.StatusMethodNotAllowed {
		t.Errorf("%s %s: Content-Type %q", method, target, ct)
	}
	return rec.Code, strings.TrimSpace(rec.Body.String())
}

func TestPlays(t *testing.T) {
	place := &fakePlacement{store: newStore(t)}
	srv := newServer(t, place, &fakeLog{})
	song7 := rollups.PartitionKey(nil, rollups.Song, 7)
	for _, tc := range []struct {
		target string
		status int
		body   string
		// key is the partition key the request must locate (and
		// release) once; nil: it must touch no store.
		key []byte
	}{
		{"/v1/songs/7/plays?from=2026-03-01&to=2026-03-31", 200,
			`{"song_id":7,"from":"2026-03-01","to":"2026-03-31","plays":2,"streams":1,"rows":[{"day":"2026-03-01","plays":1,"streams":1},{"day":"2026-03-02","plays":1,"streams":0}]}`, song7},
		{"/v1/songs/7/plays?from=2026-03-01&to=2026-03-31&by=country", 200,
			`{"song_id":7,"from":"2026-03-01","to":"2026-03-31","plays":2,"streams":1,"rows":[{"country":null,"plays":1,"streams":0},{"country":"GB","plays":1,"streams":1}]}`, song7},
		{"/v1/artists/3/plays?from=2026-03-02&to=2026-03-02&country=gb", 200,
			`{"artist_id":3,"from":"2026-03-02","to":"2026-03-02","country":"GB","plays":0,"streams":0,"rows":[]}`,
			rollups.PartitionKey(nil, rollups.Artist, 3)},
		{"/v1/songs/8/plays?from=2026-03-01&to=2026-03-31&version=v1", 200,
			`{"song_id":8,"from":"2026-03-01","to":"2026-03-31","plays":0,"streams":0,"rows":[]}`,
			rollups.PartitionKey(nil, rollups.Song, 8)},
		{"/v1/songs/7/plays?from=2026-03-01&to=2026-03-31&version=v2", 404,
			`{"error":"version \"v2\" does not run here"}`, nil},
		{"/v1/songs/7/plays?from=2026-03-01", 400, `{"error":"to is required (YYYY-MM-DD)"}`, nil},
		{"/v1/songs/7/plays?from=1969-12-31&to=2026-03-01", 400,
			`{"error":"from must be a date YYYY-MM-DD from 1970-01-01 on, not \"1969-12-31\""}`, nil},
		{"/v1/songs/x/plays?from=2026-03-01&to=2026-03-01", 400,
			`{"error":"song_id must be an integer in 1..9223372036854775807"}`, nil},
		{"/v1/nope", 404, `{"error":"no such endpoint: GET /v1/nope"}`, nil},
		{"/readyz", 200, `{"ready":true,"version":"v1"}`, nil},
		{"/healthz", 200, `{"status":"ok"}`, nil},
	} {
		t.Run(tc.target, func(t *testing.T) {
			keysBefore, releasesBefore := place.counts()
			status, body := do(t, srv, http.MethodGet, tc.target, "")
			if status != tc.status || body != tc.body {
				t.Fatalf("got %d %s\nwant %d %s", status, body, tc.status, tc.body)
			}
			keys, releases := place.counts()
			located, released := keys[len(keysBefore):], releases-releasesBefore
			want, wantReleased := []string{string(tc.key)}, 1
			if tc.key == nil {
				want, wantReleased = []string{}, 0
			}
			if !slices.Equal(located, want) || released != wantReleased {
				t.Fatalf("located %q and released %d stores, want %q and %d", located, released, want, wantReleased)
			}
		})
	}
}

// TestVersions reads the serving version without version=, either one
// with it, and says that processors a version does not run are off.
func TestVersions(t *testing.T) {
	v1 := &fakePlacement{store: newStore(t)}
	v2 := &fakePlacement{store: newStore(t)}
	vs := fixedVersions{"v2", map[string]*Backend{"v1": {Rollups: v1}, "v2": {Rollups: v2}}}
	srv := newVersionsServer(t, vs, &fakeLog{})
	for _, tc := range []struct {
		target string
		status int
		body   string
		from   *fakePlacement
	}{
		{"/v1/songs/7/plays?from=2026-03-01&to=2026-03-01", 200, `"plays":1`, v2},
		{"/v1/songs/7/plays?from=2026-03-01&to=2026-03-01&version=v2", 200, `"plays":1`, v2},
		{"/v1/songs/7/plays?from=2026-03-01&to=2026-03-01&version=v1", 200, `"plays":1`, v1},
		{"/v1/songs/7/plays?from=2026-03-01&to=2026-03-01&version=v3", 404, `{"error":"version \"v3\" does not run here"}`, nil},
		{"/v1/songs/7/plays?from=2026-03-01&to=2026-03-01&version=v9", 503, `{"error":"serve: version starting: v9 starts"}`, nil},
		{"/v1/songs/7/live", 404, `{"error":"live windows are off in version v2 (--live-windows off)"}`, nil},
		{"/v1/artists/3/fan-zones?res=7&version=v1", 404, `fan zones are off in version v1`, nil},
		{"/v1/cells/872a1072bffffff/fans?artist_id=3", 404, `fan zones are off in version v2`, nil},
		{"/readyz", 200, `{"ready":true,"version":"v2"}`, nil},
	} {
		t.Run(tc.target, func(t *testing.T) {
			before1, _ := v1.counts()
			before2, _ := v2.counts()
			status, body := do(t, srv, http.MethodGet, tc.target, "")
			if status != tc.status || !strings.Contains(body, tc.body) {
				t.Fatalf("got %d %s\nwant %d with %s", status, body, tc.status, tc.body)
			}
			after1, _ := v1.counts()
			after2, _ := v2.counts()
			read1, read2 := len(after1) > len(before1), len(after2) > len(before2)
			if read1 != (tc.from == v1) || read2 != (tc.from == v2) {
				t.Fatalf("read v1: %t, v2: %t", read1, read2)
			}
		})
	}
}

func TestIngest(t *testing.T) {
	valid := `{"user_id":5,"song_id":1,"artist_id":1,"ts":1772323200000}`
	for _, tc := range []struct {
		name     string
		body     string
		produce  error
		status   int
		accepted int
		rejected int
	}{
		{"json lines", valid + "\n\n" + `{"user_id":0}` + "\n" + valid + "\n", nil, 202, 2, 1},
		{"array", "[" + valid + `, {"song_id":1}, 7]`, nil, 202, 1, 2},
		{"empty", "", nil, 202, 0, 0},
		{"many lines", strings.Repeat(valid+"\r\n", 5000), nil, 202, 5000, 0},
		{"broken array", "[" + valid, nil, 400, 0, 0},
		{"log down", valid, errors.New("broker unreachable"), 503, 0, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			log := &fakeLog{err: tc.produce}
			status, body := do(t, newTestServer(t, log), http.MethodPost, "/v1/listens", tc.body)
			if status != tc.status {
				t.Fatalf("status %d, want %d: %s", status, tc.status, body)
			}
			if status != 202 {
				return
			}
			var got ingestResponse
			if err := json.Unmarshal([]byte(body), &got); err != nil {
				t.Fatal(err)
			}
			if got.Accepted != tc.accepted || got.Rejected != tc.rejected || len(got.Errors) != tc.rejected {
				t.Fatalf("response %s, want %d accepted, %d rejected", body, tc.accepted, tc.rejected)
			}
			if len(log.values) != tc.accepted {
				t.Fatalf("%d listens produced, want %d", len(log.values), tc.accepted)
			}
			for i, u := range log.users {
				if u != 5 || log.values[i] != valid {
					t.Fatalf("produced user %d %s", u, log.values[i])
				}
			}
		})
	}
}

// fakeNames knows song 7 ("Hello" by "Adele") and artist 3.
type fakeNames struct{}

func (fakeNames) Song(id int64) (string, string, bool) {
	if id == 7 {
		return "Hello", "Adele", true
	}
	return "", "", false
}

func (fakeNames) Artist(id int64) (string, bool) { return "Adele", id == 3 }

func TestNames(t *testing.T) {
	srv, err := New(Config{
		Versions: fixedVersions{"v1", map[string]*Backend{"v1": {Rollups: &fakePlacement{store: newStore(t)}}}},
		Ready:    func(context.Context) (bool, error) { return true, nil },
		Names:    fakeNames{},
	})
	if err != nil {
		t.Fatal(err)
	}
	for target, want := range map[string]string{
		"/v1/songs/7/plays?from=2026-03-01&to=2026-03-01":   `{"song_id":7,"title":"Hello","artist_name":"Adele","from":"2026-03-01"`,
		"/v1/songs/8/plays?from=2026-03-01&to=2026-03-01":   `{"song_id":8,"from":"2026-03-01"`,
		"/v1/artists/3/plays?from=2026-03-01&to=2026-03-01": `{"artist_id":3,"artist_name":"Adele","from":"2026-03-01"`,
		"/v1/artists/4/plays?from=2026-03-01&to=2026-03-01": `{"artist_id":4,"from":"2026-03-01"`,
	} {
		if status, body := do(t, srv, http.MethodGet, target, ""); status != 200 || !strings.HasPrefix(body, want) {
			t.Errorf("%s: %d %s\nwant %s…", target, status, body, want)
		}
	}
}
