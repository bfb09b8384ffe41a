package serve

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"slices"
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
func newStore(t *testing.T) *state.Store {
	t.Helper()
	s, err := state.Open("db", state.WithFS(vfs.NewMem()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	users := rollups.NewUserTask("deltas", 4)
	var dec events.Decoder
	var l events.Listen
	for _, line := range testListens {
		if err := dec.Decode([]byte(line), &l); err != nil {
			t.Fatal(err)
		}
		users.Add(&l)
	}
	var deltas topology.Output
	if err := users.Prepare(&deltas); err != nil {
		t.Fatal(err)
	}
	agg := rollups.NewAggregateTask(s)
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

func newServer(t *testing.T, p Placement, log *fakeLog) *Server {
	t.Helper()
	srv, err := New(Config{
		Version: "v1",
		Rollups: p,
		Ready:   func(context.Context) (bool, error) { return true, nil },
		Produce: log.produce,
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
			`{"error":"version \"v2\" is not served here (serving v1)"}`, nil},
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
