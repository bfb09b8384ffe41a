package serve

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"go.opentelemetry.io/otel/metric/noop"

	"github.com/kappa-stream/kappa/processors"
	"github.com/kappa-stream/kappa/processors/registry"
)

// allOnServer serves version v1 with every registered processor on, all
// of its keys in one store of rollups (the others' tables empty).
func allOnServer(t testing.TB) *Server {
	t.Helper()
	cfg := registry.NewConfig()
	on := map[string]bool{}
	for _, s := range cfg.Specs() {
		if s.Name == "example" {
			continue
		}
		on[s.Name] = true
	}
	// NB: every option whose JSON name is a processor's switch.
	raw, err := json.Marshal(map[string]bool{"fan_zones": true, "similar": true})
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(raw, &cfg); err != nil {
		t.Fatal(err)
	}
	env := processors.Env{Version: "v1", Repartition: "r", Partitions: 4,
		Topic: func(s string) string { return "kappa.v1." + s }, Logger: slog.New(slog.DiscardHandler),
		MeterProvider: noop.NewMeterProvider()}
	b := &Backend{Rollups: &fakePlacement{store: newStore(t)}, Processors: map[string]processors.Processor{}}
	for i, s := range cfg.Specs() {
		o := cfg.Options(i)
		if !o.Enabled() {
			continue
		}
		p, err := o.New(env)
		if err != nil {
			t.Fatal(err)
		}
		b.Processors[s.Name] = p
	}
	srv, err := New(Config{
		Versions: fixedVersions{"v1", map[string]*Backend{"v1": b}},
		Ready:    func(context.Context) (bool, error) { return true, nil },
		Produce:  (&fakeLog{}).produce,
		Status:   func() any { return map[string]int{"ok": 1} },
		Metrics:  http.NotFoundHandler(),
	})
	if err != nil {
		t.Fatal(err)
	}
	return srv
}

var fuzzMethods = []string{http.MethodGet, http.MethodPost, http.MethodPut, http.MethodDelete, http.MethodHead, "PATCH", "OPTIONS"}

// FuzzRoutes sends any method, path, query string and body to every
// route: the answer is never a 500 and never a panic.
func FuzzRoutes(f *testing.F) {
	for _, seed := range []struct {
		m           byte
		path, query string
		body        []byte
	}{
		{0, "/v1/songs/7/plays", "from=2026-03-01&to=2026-03-02&by=country", nil},
		{0, "/v1/artists/3/plays", "from=2026-03-01&to=9999-12-31&country=gb", nil},
		{0, "/v1/songs/7/live", "window=1m&last=1000000", nil},
		{0, "/v1/artists/3/fan-zones", "res=7&min_fans=-1&limit=99999999", nil},
		{0, "/v1/cells/872a1072bffffff/fans", "artist_id=3", nil},
		{0, "/v1/users/1/similar", "k=10", nil},
		{0, "/v1/songs/7/similar", "k=0", nil},
		{1, "/v1/listens", "", []byte(`{"user_id":1,"song_id":7,"artist_id":3,"ts":"2026-03-01T10:00:00Z"}`)},
		{1, "/v1/listens", "", []byte(`[{"user_id":1},`)},
		{1, pathMembers, "version=v1", []byte(`{"kind":"u","buckets":["1:ff"],"limit":257}`)},
		{1, pathMembers, "", []byte(`{"kind":"u","buckets":["x"],"limit":-1}`)},
		{1, pathScore, "", []byte(`{"kind":"u","query":"AAAA","ids":[1,2],"n":5}`)},
		{1, pathScore, "", []byte(`{"kind":"s","query":null,"ids":[],"n":100000000}`)},
		{0, "/readyz", "", nil},
		{0, "/v1/status", "", nil},
		{0, "/v1/songs/7/plays", "version=v9&from=x", nil},
	} {
		f.Add(seed.m, seed.path, seed.query, seed.body)
	}
	srv := allOnServer(f)
	f.Fuzz(func(t *testing.T, m byte, path, query string, body []byte) {
		method := fuzzMethods[int(m)%len(fuzzMethods)]
		if !strings.HasPrefix(path, "/") {
			path = "/" + path
		}
		req, err := http.NewRequest(method, "http://kappa"+path+"?"+query, bytes.NewReader(body))
		if err != nil {
			return
		}
		rec := httptest.NewRecorder()
		srv.ServeHTTP(rec, req)
		if rec.Code >= 500 && rec.Code != http.StatusServiceUnavailable {
			t.Fatalf("%s %s?%s (%q): %d %s", method, path, query, body, rec.Code, rec.Body)
		}
	})
}

// TestInternalBadInput: malformed or unbounded requests to the internal
// endpoints answer 400.
func TestInternalBadInput(t *testing.T) {
	srv := allOnServer(t)
	for _, tc := range []struct{ path, body string }{
		{pathMembers, `{"kind":"u","buckets":["1:ff"],"limit":100000000}`},
		{pathMembers, `{"kind":"u","buckets":["1:ff"],"limit":0}`},
		{pathMembers, `{"kind":"x","buckets":[],"limit":1}`},
		{pathMembers, `{"kind":"u","buckets":["nope"],"limit":1}`},
		{pathMembers, fmt.Sprintf(`{"kind":"u","buckets":[%s"1:1"],"limit":1}`, strings.Repeat(`"1:1",`, maxInternalKeys))},
		{pathMembers, `not json`},
		{pathScore, `{"kind":"u","query":"AAAA","ids":[1],"n":5}`},
		{pathScore, `{"kind":"s","query":"AAAA","ids":[1],"n":5}`},
		{pathScore, `{"kind":"s","query":null,"ids":[1],"n":5}`},
		{pathScore, `{"kind":"u","query":null,"ids":[1],"n":100000000}`},
		{pathScore, fmt.Sprintf(`{"kind":"u","query":null,"ids":[%s1],"n":1}`, strings.Repeat("1,", maxInternalKeys))},
	} {
		status, body := do(t, srv, http.MethodPost, tc.path, tc.body)
		if status != http.StatusBadRequest {
			t.Errorf("POST %s %.80s: %d %s, want 400", tc.path, tc.body, status, body)
		}
	}
}
