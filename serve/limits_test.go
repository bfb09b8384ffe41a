package serve

import (
	"bytes"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"golang.org/x/sync/errgroup"
)

// TestProtectPanics: a panicking handler answers 500 with a log line
// naming its route, and the server goes on.
func TestProtectPanics(t *testing.T) {
	var logs bytes.Buffer
	mux := http.NewServeMux()
	mux.HandleFunc("GET /boom/{id}", func(http.ResponseWriter, *http.Request) { panic("bug") })
	mux.HandleFunc("GET /ok", func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusOK) })
	h := Protect(mux, Limits{}, slog.New(slog.NewTextHandler(&logs, nil)))
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/boom/12345", nil))
	if rec.Code != http.StatusInternalServerError {
		t.Fatalf("panic answered %d", rec.Code)
	}
	if l := logs.String(); !strings.Contains(l, "panicked") || !strings.Contains(l, "GET /boom/{id}") || strings.Contains(l, "12345") {
		t.Fatalf("log %q: want the panic and the route, not the id", l)
	}
	rec = httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/ok", nil))
	if rec.Code != http.StatusOK {
		t.Fatalf("after the panic: %d", rec.Code)
	}
}

// TestProtectLimits holds requests in their handler: past the concurrent
// requests or the ingest bytes in flight the answer is 429 with
// Retry-After, while /readyz still answers.
func TestProtectLimits(t *testing.T) {
	hold := make(chan struct{})
	var entered sync.WaitGroup
	mux := http.NewServeMux()
	block := func(w http.ResponseWriter, _ *http.Request) {
		entered.Done()
		<-hold
		w.WriteHeader(http.StatusAccepted)
	}
	mux.HandleFunc("GET /slow", block)
	mux.HandleFunc("POST /v1/listens", block)
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusOK) })
	h := Protect(mux, Limits{MaxConcurrent: 3, MaxIngestBytes: 20 << 20}, nil)

	call := func(method, path string, size int64) *httptest.ResponseRecorder {
		req := httptest.NewRequest(method, path, nil)
		req.ContentLength = size
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		return rec
	}
	var g errgroup.Group
	entered.Add(2)
	g.Go(func() error { call(http.MethodPost, "/v1/listens", 16<<20); return nil })
	g.Go(func() error { call(http.MethodGet, "/slow", 0); return nil })
	entered.Wait()
	if rec := call(http.MethodPost, "/v1/listens", 16<<20); rec.Code != http.StatusTooManyRequests || rec.Header().Get("Retry-After") == "" {
		t.Errorf("a second 16 MiB ingest: %d, Retry-After %q; want 429 with it", rec.Code, rec.Header().Get("Retry-After"))
	}
	entered.Add(1)
	g.Go(func() error { call(http.MethodPost, "/v1/listens", 1<<20); return nil })
	entered.Wait()
	if rec := call(http.MethodGet, "/slow", 0); rec.Code != http.StatusTooManyRequests {
		t.Errorf("a fourth request: %d, want 429", rec.Code)
	}
	if rec := call(http.MethodGet, "/readyz", 0); rec.Code != http.StatusOK {
		t.Errorf("/readyz under load: %d", rec.Code)
	}
	close(hold)
	if err := g.Wait(); err != nil {
		t.Fatal(err)
	}
	entered.Add(1)
	if rec := call(http.MethodPost, "/v1/listens", 16<<20); rec.Code != http.StatusAccepted {
		t.Errorf("after the load: %d", rec.Code)
	}
}

// TestGoSafe: a panic in a scatter-gather call is its error.
func TestGoSafe(t *testing.T) {
	var g errgroup.Group
	goSafe(&g, func() error { panic("bug") })
	goSafe(&g, func() error { return nil })
	if err := g.Wait(); err == nil || !strings.Contains(err.Error(), "panicked") {
		t.Fatalf("Wait: %v", err)
	}
	var g2 errgroup.Group
	want := errors.New("x")
	goSafe(&g2, func() error { return want })
	if err := g2.Wait(); !errors.Is(err, want) {
		t.Fatalf("Wait: %v", err)
	}
}

// TestHTTPServerSettings: the server has every timeout and the header
// limit.
func TestHTTPServerSettings(t *testing.T) {
	s := NewHTTPServer(http.NotFoundHandler(), Limits{}, slog.New(slog.DiscardHandler))
	if s.ReadTimeout <= 0 || s.WriteTimeout <= 0 || s.IdleTimeout <= 0 || s.ReadHeaderTimeout <= 0 || s.MaxHeaderBytes != 64<<10 {
		t.Fatalf("server %+v", s)
	}
}

// TestProtectStreams: live event streams have a bound of their own and
// take no request slot, so open streams never hold the API back.
func TestProtectStreams(t *testing.T) {
	release := make(chan struct{})
	entered := make(chan struct{}, 4)
	h := Protect(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		entered <- struct{}{}
		<-release
	}), Limits{MaxConcurrent: 1, MaxStreams: 2}, nil)
	serve := func(path string) *httptest.ResponseRecorder {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
		return rec
	}
	done := make(chan *httptest.ResponseRecorder, 3)
	for _, path := range []string{"/v1/songs/1/live/events", "/v1/songs/2/live/events", "/v1/songs/1/plays"} {
		go func() { done <- serve(path) }()
		<-entered // NB: each is in its handler before the next starts
	}
	if rec := serve("/v1/songs/3/live/events"); rec.Code != http.StatusTooManyRequests || rec.Header().Get("Retry-After") == "" {
		t.Errorf("a third stream past MaxStreams 2: %d, want 429 with Retry-After", rec.Code)
	}
	if rec := serve("/v1/songs/1/plays"); rec.Code != http.StatusTooManyRequests {
		t.Errorf("a second request past MaxConcurrent 1: %d, want 429", rec.Code)
	}
	close(release)
	for range 3 {
		if rec := <-done; rec.Code != http.StatusOK {
			t.Errorf("an admitted request: %d", rec.Code)
		}
	}
}
