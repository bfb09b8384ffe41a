package serve

import (
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
)

// peer is one instance's API on a real HTTP server. It records each
// request it gets as its Kappa-Forwarded header and request URI.
type peer struct {
	place *fakePlacement
	srv   *httptest.Server

	mu       sync.Mutex
	requests []string
}

func startPeer(t *testing.T, place *fakePlacement) *peer {
	t.Helper()
	p := &peer{place: place}
	api := newServer(t, place, &fakeLog{})
	p.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p.mu.Lock()
		p.requests = append(p.requests, r.Header.Get(forwardedHeader)+" "+r.URL.RequestURI())
		p.mu.Unlock()
		api.ServeHTTP(w, r)
	}))
	t.Cleanup(p.srv.Close)
	return p
}

func (p *peer) seen() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.requests)
}

func TestRouting(t *testing.T) {
	const (
		target = "/v1/songs/7/plays?from=2026-03-01&to=2026-03-31"
		// forwarded is target as forwarded: it names the version read.
		forwarded = target + "&version=v1"
		answer    = `{"song_id":7,"from":"2026-03-01","to":"2026-03-31","plays":2,"streams":1,"rows":[{"day":"2026-03-01","plays":1,"streams":1},{"day":"2026-03-02","plays":1,"streams":0}]}`
	)
	gone := httptest.NewServer(http.NotFoundHandler())
	gone.Close()
	for _, tc := range []struct {
		name string
		// a and b are the placements of instance a, which is asked,
		// and of instance b; owner "b" and "a" stand for their URLs.
		a, b       *fakePlacement
		status     int
		body       string // the answer, or a part of an error
		retryAfter string
		// seenA and seenB are the requests each instance must get.
		seenA, seenB []string
		// releasesA and releasesB are the stores each must release.
		releasesA, releasesB int
	}{
		{name: "local", a: &fakePlacement{store: newStore(t)},
			status: 200, body: answer,
			seenA: []string{" " + target}, releasesA: 1},
		{name: "forwarded to the owner", a: &fakePlacement{owner: "b"}, b: &fakePlacement{store: newStore(t)},
			status: 200, body: answer,
			seenA: []string{" " + target}, seenB: []string{"1 " + forwarded}, releasesB: 1},
		{name: "owners disagree: one hop, then 503", a: &fakePlacement{owner: "b"}, b: &fakePlacement{owner: "a"},
			status: 503, retryAfter: "1", body: `{"error":"the partition of song_id 7 is moving between instances; retry"}`,
			seenA: []string{" " + target}, seenB: []string{"1 " + forwarded}},
		{name: "rebalancing", a: &fakePlacement{},
			status: 503, retryAfter: "1", body: `{"error":"the partition of song_id 7 is rebalancing or restoring; retry"}`,
			seenA: []string{" " + target}},
		{name: "owner restoring: its 503 is relayed", a: &fakePlacement{owner: "b"}, b: &fakePlacement{},
			status: 503, retryAfter: "1", body: `{"error":"the partition of song_id 7 is rebalancing or restoring; retry"}`,
			seenA: []string{" " + target}, seenB: []string{"1 " + forwarded}},
		{name: "owner unreachable", a: &fakePlacement{owner: gone.URL},
			status: 503, retryAfter: "1", body: "the owner of song_id 7 at " + gone.URL + " did not answer (dial tcp",
			seenA: []string{" " + target}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.b == nil {
				tc.b = &fakePlacement{}
			}
			a, b := startPeer(t, tc.a), startPeer(t, tc.b)
			for _, p := range []*fakePlacement{tc.a, tc.b} {
				switch p.owner {
				case "a":
					p.owner = a.srv.URL
				case "b":
					p.owner = b.srv.URL + "/"
				}
			}
			resp, err := http.Get(a.srv.URL + target)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			raw, err := io.ReadAll(resp.Body)
			if err != nil {
				t.Fatal(err)
			}
			body := strings.TrimSpace(string(raw))
			if resp.StatusCode != tc.status || !strings.Contains(body, tc.body) {
				t.Fatalf("got %d %s\nwant %d with %s", resp.StatusCode, body, tc.status, tc.body)
			}
			if ct, ra := resp.Header.Get("Content-Type"), resp.Header.Get("Retry-After"); ct != "application/json" || ra != tc.retryAfter {
				t.Errorf("Content-Type %q, Retry-After %q; want application/json, %q", ct, ra, tc.retryAfter)
			}
			for _, c := range []struct {
				name     string
				p        *peer
				seen     []string
				releases int
			}{{"a", a, tc.seenA, tc.releasesA}, {"b", b, tc.seenB, tc.releasesB}} {
				if got := c.p.seen(); !slices.Equal(got, c.seen) {
					t.Errorf("instance %s got requests %q, want %q", c.name, got, c.seen)
				}
				if _, releases := c.p.place.counts(); releases != c.releases {
					t.Errorf("instance %s released %d stores, want %d", c.name, releases, c.releases)
				}
			}
		})
	}
}
