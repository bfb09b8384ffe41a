package serve

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/kappa-stream/kappa/processors/rollups"
	"github.com/kappa-stream/kappa/state"
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

func newTestServer(t *testing.T, log *fakeLog) *Server {
	t.Helper()
	s, err := state.Open("db", state.WithFS(vfs.NewMem()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	task := rollups.NewTask()
	for _, l := range []string{
		`{"user_id":1,"song_id":7,"artist_id":3,"ts":"2026-03-01T10:00:00Z","ms_played":31000,"country":"GB"}`,
		`{"user_id":2,"song_id":7,"artist_id":3,"ts":"2026-03-02T10:00:00Z"}`,
	} {
		if err := task.Process([]byte(l)); err != nil {
			t.Fatal(err)
		}
	}
	b := s.NewBatch()
	if err := task.Flush(b); err != nil {
		t.Fatal(err)
	}
	if err := b.Commit(false); err != nil {
		t.Fatal(err)
	}
	srv, err := New(Config{
		Version: "v1",
		Rollups: rollups.NewReader(s),
		Ready:   func(context.Context) (bool, error) { return true, nil },
		Produce: log.produce,
	})
	if err != nil {
		t.Fatal(err)
	}
	return srv
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
	srv := newTestServer(t, &fakeLog{})
	for _, tc := range []struct {
		target string
		status int
		body   string
	}{
		{"/v1/songs/7/plays?from=2026-03-01&to=2026-03-31", 200,
			`{"song_id":7,"from":"2026-03-01","to":"2026-03-31","plays":2,"streams":1,"rows":[{"day":"2026-03-01","plays":1,"streams":1},{"day":"2026-03-02","plays":1,"streams":0}]}`},
		{"/v1/songs/7/plays?from=2026-03-01&to=2026-03-31&by=country", 200,
			`{"song_id":7,"from":"2026-03-01","to":"2026-03-31","plays":2,"streams":1,"rows":[{"country":null,"plays":1,"streams":0},{"country":"GB","plays":1,"streams":1}]}`},
		{"/v1/artists/3/plays?from=2026-03-02&to=2026-03-02&country=gb", 200,
			`{"artist_id":3,"from":"2026-03-02","to":"2026-03-02","country":"GB","plays":0,"streams":0,"rows":[]}`},
		{"/v1/songs/8/plays?from=2026-03-01&to=2026-03-31&version=v1", 200,
			`{"song_id":8,"from":"2026-03-01","to":"2026-03-31","plays":0,"streams":0,"rows":[]}`},
		{"/v1/songs/7/plays?from=2026-03-01&to=2026-03-31&version=v2", 404,
			`{"error":"version \"v2\" is not served here (serving v1)"}`},
		{"/v1/songs/7/plays?from=2026-03-01", 400, `{"error":"to is required (YYYY-MM-DD)"}`},
		{"/v1/songs/7/plays?from=1969-12-31&to=2026-03-01", 400,
			`{"error":"from must be a date YYYY-MM-DD from 1970-01-01 on, not \"1969-12-31\""}`},
		{"/v1/songs/x/plays?from=2026-03-01&to=2026-03-01", 400,
			`{"error":"song_id must be an integer in 1..9223372036854775807"}`},
		{"/v1/nope", 404, `{"error":"no such endpoint: GET /v1/nope"}`},
		{"/readyz", 200, `{"ready":true,"version":"v1"}`},
		{"/healthz", 200, `{"status":"ok"}`},
	} {
		t.Run(tc.target, func(t *testing.T) {
			status, body := do(t, srv, http.MethodGet, tc.target, "")
			if status != tc.status || body != tc.body {
				t.Fatalf("got %d %s\nwant %d %s", status, body, tc.status, tc.body)
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
