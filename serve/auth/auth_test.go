package auth

import (
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/kappa-stream/kappa/keys"
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

// echo answers 200 with the role of the request and the headers only a
// peer may send.
var echo = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
	role, _ := RoleOf(r.Context())
	w.Write([]byte(string(role) + "|" + r.Header.Get(forwardedHeader) + "|" + r.Header.Get(roleHeader)))
})

func newHandler(t *testing.T, open bool) (*Handler, *Cluster, map[keys.Role]string) {
	t.Helper()
	ks, tokens := fakeKeys{}, map[keys.Role]string{}
	for _, r := range []keys.Role{keys.Admin, keys.Reader, keys.Partner} {
		tok, k, err := keys.New(r, "", time.Now())
		if err != nil {
			t.Fatal(err)
		}
		ks[tok], tokens[r] = k, tok
	}
	cl, err := NewCluster([]byte("  0123456789abcdef0123456789abcdef\n"))
	if err != nil {
		t.Fatal(err)
	}
	h, err := New(Config{Keys: ks, Cluster: cl, Open: open}, echo)
	if err != nil {
		t.Fatal(err)
	}
	return h, cl, tokens
}

func serve(h http.Handler, r *http.Request) *httptest.ResponseRecorder {
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, r)
	return rec
}

func TestNewCluster(t *testing.T) {
	if _, err := NewCluster([]byte(" short secret   \n")); err == nil {
		t.Fatal("a 12-byte secret was accepted")
	}
}

// TestClusterCredential checks the credential of calls between
// instances: the role they name reaches the handler; a credential of
// another secret, another path or method, another role, or too old is
// refused.
func TestClusterCredential(t *testing.T) {
	h, cl, _ := newHandler(t, false)
	other, err := NewCluster([]byte("fedcba9876543210fedcba9876543210"))
	if err != nil {
		t.Fatal(err)
	}
	signed := func(c *Cluster, method, path string, role keys.Role) *http.Request {
		r := httptest.NewRequest(method, path, nil)
		c.Sign(r, role)
		r.Header.Set(forwardedHeader, "1")
		return r
	}
	for _, tc := range []struct {
		name   string
		r      *http.Request
		status int
		body   string
	}{
		{"forwarded for a reader", signed(cl, "GET", "/v1/songs/7/plays", keys.Reader), 200, "reader|1|reader"},
		{"internal", signed(cl, "POST", "/internal/v1/similar/score", ""), 200, "|1|"},
		{"forwarded for a reader to an admin route", signed(cl, "GET", "/v1/status", keys.Reader), 403, ""},
		{"forwarded without a role", signed(cl, "GET", "/v1/songs/7/plays", ""), 403, ""},
		{"another cluster", signed(other, "POST", "/internal/v1/similar/score", ""), 403, ""},
		{"role changed", func() *http.Request {
			r := signed(cl, "GET", "/v1/status", keys.Reader)
			r.Header.Set(roleHeader, string(keys.Admin))
			return r
		}(), 403, ""},
		{"path changed", func() *http.Request {
			r := signed(cl, "POST", "/internal/v1/similar/members", "")
			r.URL.Path = "/internal/v1/similar/score"
			return r
		}(), 403, ""},
		{"query changed", func() *http.Request {
			r := signed(cl, "GET", "/v1/status?version=v1", keys.Admin)
			r.URL.RawQuery = "version=v2"
			return r
		}(), 403, ""},
		{"method changed", func() *http.Request {
			r := signed(cl, "GET", "/internal/v1/similar/score", "")
			r.Method = "POST"
			return r
		}(), 403, ""},
		{"expired", func() *http.Request {
			old := &Cluster{secret: cl.secret, now: func() time.Time { return time.Now().Add(-6 * time.Minute) }}
			return signed(old, "POST", "/internal/v1/similar/score", "")
		}(), 403, ""},
		{"malformed", func() *http.Request {
			r := httptest.NewRequest("POST", "/internal/v1/similar/score", nil)
			r.Header.Set(clusterHeader, "yesterday.deadbeef")
			return r
		}(), 403, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rec := serve(h, tc.r)
			if rec.Code != tc.status || (tc.body != "" && rec.Body.String() != tc.body) {
				t.Fatalf("%d %s, want %d %s", rec.Code, rec.Body, tc.status, tc.body)
			}
		})
	}
}

// TestTransport signs a call with the role of the request's context.
func TestTransport(t *testing.T) {
	h, cl, _ := newHandler(t, false)
	srv := httptest.NewServer(h)
	defer srv.Close()
	hc := &http.Client{Transport: cl.Transport(nil)}
	req, _ := http.NewRequestWithContext(WithRole(t.Context(), keys.Reader), "GET", srv.URL+"/v1/songs/7/plays?x=1", nil)
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 200 || string(b) != "reader||reader" {
		t.Fatalf("%d %s, want 200 reader||reader", resp.StatusCode, b)
	}
	if req.Header.Get(clusterHeader) != "" {
		t.Fatal("the transport changed the caller's request")
	}
}

// TestClientCannotPose drops the headers only peers send from a
// client's request.
func TestClientCannotPose(t *testing.T) {
	h, _, tokens := newHandler(t, false)
	r := httptest.NewRequest("GET", "/v1/songs/7/plays", nil)
	r.Header.Set("Authorization", "Bearer "+tokens[keys.Reader])
	r.Header.Set(forwardedHeader, "1")
	r.Header.Set(roleHeader, "admin")
	if rec := serve(h, r); rec.Code != 200 || rec.Body.String() != "reader||" {
		t.Fatalf("%d %s, want 200 reader||", rec.Code, rec.Body)
	}
}

// TestLogin logs in with the form and reads with the cookie it sets.
func TestLogin(t *testing.T) {
	h, _, tokens := newHandler(t, false)
	form := func(key, next string) *http.Request {
		r := httptest.NewRequest("POST", "/login", strings.NewReader(url.Values{"key": {key}, "next": {next}}.Encode()))
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		r.Header.Set("Accept", "text/html")
		return r
	}
	// The form, and a page of the UI without a key: the form with 401.
	if rec := serve(h, httptest.NewRequest("GET", "/login?next=/top", nil)); rec.Code != 200 || !strings.Contains(rec.Body.String(), `name="next" value="/top"`) {
		t.Fatalf("GET /login: %d %s", rec.Code, rec.Body)
	}
	page := httptest.NewRequest("GET", "/artists/3?from=2026-03-01", nil)
	page.Header.Set("Accept", "text/html,application/xhtml+xml")
	if rec := serve(h, page); rec.Code != 401 || !strings.Contains(rec.Body.String(), `value="/artists/3?from=2026-03-01"`) {
		t.Fatalf("a UI page without a key: %d %s", rec.Code, rec.Body)
	}
	for _, tc := range []struct {
		key, next, location string
		status              int
	}{
		{tokens[keys.Reader], "/artists/3", "/artists/3", 303},
		{tokens[keys.Reader], "//evil.example/", "/", 303},
		{tokens[keys.Reader], "https://evil.example/", "/", 303},
		{"kappa_0123456789abcdef_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", "/", "", 401},
		{"", "/", "", 401},
	} {
		rec := serve(h, form(tc.key, tc.next))
		if rec.Code != tc.status || rec.Header().Get("Location") != tc.location {
			t.Fatalf("login to %q: %d, Location %q, want %d %q", tc.next, rec.Code, rec.Header().Get("Location"), tc.status, tc.location)
		}
		cookies := rec.Result().Cookies()
		if tc.status != 303 {
			if len(cookies) != 0 {
				t.Fatalf("a failed login set %v", cookies)
			}
			continue
		}
		if len(cookies) != 1 || !cookies[0].HttpOnly || cookies[0].SameSite != http.SameSiteStrictMode || cookies[0].Value != tc.key {
			t.Fatalf("login set %v", cookies)
		}
		get := httptest.NewRequest("GET", "/v1/songs/7/plays", nil)
		get.AddCookie(cookies[0])
		if rec := serve(h, get); rec.Code != 200 || rec.Body.String() != "reader||" {
			t.Fatalf("GET with the cookie: %d %s", rec.Code, rec.Body)
		}
		// NB: an admin's cookie must not ingest from another site's form.
		post := httptest.NewRequest("POST", "/v1/listens", nil)
		post.AddCookie(cookies[0])
		if rec := serve(h, post); rec.Code != 401 {
			t.Fatalf("POST with the cookie: %d %s, want 401", rec.Code, rec.Body)
		}
	}
	// A script gets JSON.
	r := httptest.NewRequest("POST", "/login", strings.NewReader("key="+url.QueryEscape(tokens[keys.Partner])))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if rec := serve(h, r); rec.Code != 200 || strings.TrimSpace(rec.Body.String()) != `{"next":"/","role":"partner"}` {
		t.Fatalf("scripted login: %d %s", rec.Code, rec.Body)
	}
	if rec := serve(h, httptest.NewRequest("GET", "/logout", nil)); rec.Code != 303 || !strings.Contains(rec.Header().Get("Set-Cookie"), "Max-Age=0") {
		t.Fatalf("logout: %d %v", rec.Code, rec.Header())
	}
}

// TestWaitsForKeys answers 503 until the keys are read, but to
// liveness probes.
func TestWaitsForKeys(t *testing.T) {
	_, cl, _ := newHandler(t, true)
	synced := make(chan struct{})
	h, err := New(Config{Keys: fakeKeys{}, Cluster: cl, Open: true, Synced: synced}, echo)
	if err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{"/v1/songs/7/plays", "/readyz", "/healthz"} {
		want := map[string]int{"/v1/songs/7/plays": 503, "/readyz": 503, "/healthz": 200}[path]
		if rec := serve(h, httptest.NewRequest("GET", path, nil)); rec.Code != want || (want == 503 && rec.Header().Get("Retry-After") != "1") {
			t.Fatalf("%s before the keys: %d %v", path, rec.Code, rec.Header())
		}
	}
	close(synced)
	if rec := serve(h, httptest.NewRequest("GET", "/v1/songs/7/plays", nil)); rec.Code != 200 || rec.Body.String() != "admin||" {
		t.Fatalf("after the keys: %d %s", rec.Code, rec.Body)
	}
}
