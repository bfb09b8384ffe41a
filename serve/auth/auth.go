// Package auth guards kappa's HTTP API: who asks (an API key of the keys
// package, presented as "Authorization: Bearer <key>" or by the login
// cookie; another instance of the cluster, by the cluster credential)
// and what they may reach.
//
// The routes and the roles that reach them:
//
//	/healthz, /readyz, /login, /logout     anyone, no key needed
//	/internal/…                            instances only (cluster credential); 403 to anything else
//	/partner/v1, /partner/v1/…             partner keys only
//	POST /v1/listens, /v1/status, /v1/users/…, /metrics, /debug/pprof/…
//	                                       admin keys
//	every other path (/v1 reads, the UI)   reader and admin keys
//
// A request without a key is 401; with a key that is malformed, unknown
// or revoked, 401; outside its key's role, 403. In open mode (an
// instance listening on loopback only, or --insecure) a request without
// a key is served as admin, except on /partner/v1; a request that
// presents a key always gets that key's role.
package auth

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"strings"

	"github.com/kappa-stream/kappa/keys"
)

// Verifier looks API keys up. keys.Follower is one. Verify is called
// concurrently, once per request that presents a key.
type Verifier interface {
	// Verify returns the key of token, or keys.ErrUnknown or
	// keys.ErrRevoked.
	Verify(token string) (keys.Key, error)
}

// Config configures a Handler.
type Config struct {
	// Keys verifies the keys requests present (required).
	Keys Verifier
	// Cluster verifies calls from the other instances (required).
	Cluster *Cluster
	// Open serves requests without a key as admin (but /partner/v1,
	// which always needs a partner key).
	Open bool
	// Logger receives rejected cluster credentials (default: discard).
	// Keys are never logged.
	Logger *slog.Logger
	// Synced is closed once Keys knows every key that existed when the
	// instance started (keys.Follower.Synced); until then, requests
	// other than /healthz and /logout answer 503 with Retry-After
	// (default: nil, no wait).
	Synced <-chan struct{}
}

// Handler authenticates and authorizes requests before next sees them,
// with the role in the request's context (RoleOf).
type Handler struct {
	cfg  Config
	next http.Handler
}

// New wraps next.
func New(cfg Config, next http.Handler) (*Handler, error) {
	switch {
	case cfg.Keys == nil:
		return nil, errors.New("auth: no key verifier")
	case cfg.Cluster == nil:
		return nil, errors.New("auth: no cluster credential")
	case next == nil:
		return nil, errors.New("auth: no handler")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	return &Handler{cfg: cfg, next: next}, nil
}

type roleKey struct{}

// WithRole returns ctx carrying the role of the client a request serves.
func WithRole(ctx context.Context, r keys.Role) context.Context {
	return context.WithValue(ctx, roleKey{}, r)
}

// RoleOf is the role of the client a request serves, as Handler set it
// (false when the request did not go through a Handler).
func RoleOf(ctx context.Context) (keys.Role, bool) {
	r, ok := ctx.Value(roleKey{}).(keys.Role)
	return r, ok && r != ""
}

// IsAdmin reports whether the request's client is an admin; false when
// the request did not go through a Handler.
func IsAdmin(ctx context.Context) bool {
	r, _ := RoleOf(ctx)
	return r == keys.Admin
}

// class is who may reach a route.
type class int

const (
	public class = iota
	internal
	partner
	admin
	reader
)

// classify says who may reach the route of path (whatever the method:
// one the route does not take is the API's 405 or 404 behind the check).
func classify(path string) class {
	switch {
	case path == "/healthz" || path == "/readyz" || path == loginPath || path == logoutPath:
		return public
	case strings.HasPrefix(path, "/internal/"):
		return internal
	case path == "/partner/v1" || strings.HasPrefix(path, "/partner/v1/"):
		return partner
	case path == "/v1/listens", path == "/v1/status", path == "/metrics",
		strings.HasPrefix(path, "/v1/users/"), // NB: per-user answers
		path == "/debug/pprof" || strings.HasPrefix(path, "/debug/pprof/"):
		return admin
	}
	return reader
}

// allows reports whether role may reach routes of class c.
func (c class) allows(role keys.Role) bool {
	switch c {
	case partner:
		return role == keys.Partner
	case admin:
		return role == keys.Admin
	case reader:
		return role == keys.Admin || role == keys.Reader
	}
	return false
}

// ServeHTTP implements http.Handler.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch r.URL.Path {
	case loginPath:
		h.login(w, r)
		return
	case logoutPath:
		logout(w, r)
		return
	}
	c := classify(r.URL.Path)
	if c == public {
		// NB: health checks need no credential, and ignore any; an
		// instance that has not read the keys is not ready.
		if r.URL.Path != "/readyz" || h.synced(w) {
			h.next.ServeHTTP(w, r)
		}
		return
	}
	if !h.synced(w) {
		return
	}
	present, role, err := h.cfg.Cluster.check(r)
	if err != nil {
		h.cfg.Logger.Warn("rejected a call with a bad cluster credential", "path", r.URL.Path, "remote", r.RemoteAddr, "err", err)
		deny(w, r, http.StatusForbidden, err.Error())
		return
	}
	if present {
		switch {
		case c == internal:
		case role == "":
			deny(w, r, http.StatusForbidden, "a forwarded request must name its client's role")
			return
		case !c.allows(role):
			deny(w, r, http.StatusForbidden, "this route is not open to "+string(role)+" keys")
			return
		}
		h.next.ServeHTTP(w, r.WithContext(WithRole(r.Context(), role)))
		return
	}
	r.Header.Del(forwardedHeader)
	r.Header.Del(roleHeader)
	if c == internal {
		deny(w, r, http.StatusForbidden, "/internal/ is for the instances of the cluster only")
		return
	}
	token, presented, err := credential(r)
	switch {
	case err != nil:
		unauthorized(w, r, err.Error())
		return
	case presented:
		k, err := h.cfg.Keys.Verify(token)
		if err != nil {
			msg := "unknown API key"
			if errors.Is(err, keys.ErrRevoked) {
				msg = "revoked API key"
			}
			unauthorized(w, r, msg)
			return
		}
		role = k.Role
	case h.cfg.Open && c != partner:
		role = keys.Admin
	default:
		unauthorized(w, r, "an API key is required: Authorization: Bearer <key> (kappa keys create)")
		return
	}
	if !c.allows(role) {
		deny(w, r, http.StatusForbidden, "this route is not open to "+string(role)+" keys")
		return
	}
	h.next.ServeHTTP(w, r.WithContext(WithRole(r.Context(), role)))
}

// synced reports whether the keys have been read; if not, it answers
// 503 with Retry-After.
func (h *Handler) synced(w http.ResponseWriter) bool {
	if h.cfg.Synced != nil {
		select {
		case <-h.cfg.Synced:
		default:
			w.Header().Set("Retry-After", "1")
			writeError(w, http.StatusServiceUnavailable, "starting: reading the API keys")
			return false
		}
	}
	return true
}

// credential is the key r presents: the bearer token of its
// Authorization header, else, on a GET or HEAD, its login cookie.
func credential(r *http.Request) (token string, presented bool, err error) {
	if v := r.Header.Get("Authorization"); v != "" {
		scheme, token, ok := strings.Cut(v, " ")
		if !ok || !strings.EqualFold(scheme, "Bearer") || strings.TrimSpace(token) == "" {
			return "", true, errors.New("the Authorization header must be: Bearer <key>")
		}
		return strings.TrimSpace(token), true, nil
	}
	// NB: the cookie is not honoured for other methods, so that no page
	// of another site can make a browser ingest with its admin cookie.
	if r.Method == http.MethodGet || r.Method == http.MethodHead {
		if c, err := r.Cookie(cookieName); err == nil && c.Value != "" {
			return c.Value, true, nil
		}
	}
	return "", false, nil
}

// unauthorized answers 401: the login page for a browser's page load, a
// JSON error otherwise.
func unauthorized(w http.ResponseWriter, r *http.Request, msg string) {
	w.Header().Set("WWW-Authenticate", `Bearer realm="kappa"`)
	if wantsPage(r) {
		loginPage(w, http.StatusUnauthorized, r.URL.RequestURI(), msg)
		return
	}
	writeError(w, http.StatusUnauthorized, msg)
}

func deny(w http.ResponseWriter, r *http.Request, status int, msg string) {
	if wantsPage(r) && status == http.StatusForbidden {
		loginPage(w, status, r.URL.RequestURI(), msg)
		return
	}
	writeError(w, status, msg)
}

// wantsPage reports whether r is a browser loading a page of the UI.
func wantsPage(r *http.Request) bool {
	return r.Method == http.MethodGet && classify(r.URL.Path) == reader &&
		!strings.HasPrefix(r.URL.Path, "/v1/") && strings.Contains(r.Header.Get("Accept"), "text/html")
}
