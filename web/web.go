// Package web is kappa's dashboards: the TypeScript sources in src/,
// bundled by esbuild (npm run build) into dist/, which is committed and
// embedded in the binary, so that `go build` needs no node. Handler
// serves them: every page route answers the index (never cached, so a
// new binary's assets are picked up at once), the assets answer under
// their content-hashed names (cached forever). Nothing is loaded from
// another host.
package web

import (
	"embed"
	"fmt"
	"io/fs"
	"net/http"
	"path"
	"strings"
)

//go:embed dist
var dist embed.FS

// Cache-Control values.
const (
	cacheImmutable = "public, max-age=31536000, immutable"
	cacheNone      = "no-cache"
)

// csp allows the page its own origin only: scripts, styles, data and
// connections (the API and its event streams); images from data: URLs
// (the favicon) and blobs (CSV exports are downloaded, not loaded).
const csp = "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; " +
	"connect-src 'self'; object-src 'none'; base-uri 'self'; frame-ancestors 'none'; form-action 'self'"

// Handler serves the dashboards. It is safe for concurrent use.
type Handler struct {
	index  []byte
	assets fs.FS
}

// New returns the handler of the embedded build.
func New() (*Handler, error) {
	return newHandler(dist)
}

func newHandler(fsys fs.FS) (*Handler, error) {
	root, err := fs.Sub(fsys, "dist")
	if err != nil {
		return nil, fmt.Errorf("web: %w", err)
	}
	index, err := fs.ReadFile(root, "index.html")
	if err != nil {
		return nil, fmt.Errorf("web: the build has no index.html (run make web): %w", err)
	}
	assets, err := fs.Sub(root, "assets")
	if err != nil {
		return nil, fmt.Errorf("web: %w", err)
	}
	return &Handler{index: index, assets: assets}, nil
}

// ServeHTTP answers GET and HEAD: /assets/<name> with the asset (404
// when there is none), any other path with the index, whose script
// routes it (the server mounts the handler on the page routes only).
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	w.Header().Set("X-Content-Type-Options", "nosniff")
	if name, ok := strings.CutPrefix(r.URL.Path, "/assets/"); ok {
		h.asset(w, r, name)
		return
	}
	w.Header().Set("Content-Security-Policy", csp)
	w.Header().Set("Cache-Control", cacheNone)
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Referrer-Policy", "same-origin")
	w.WriteHeader(http.StatusOK)
	if r.Method == http.MethodGet {
		_, _ = w.Write(h.index)
	}
}

func (h *Handler) asset(w http.ResponseWriter, r *http.Request, name string) {
	if name == "" || strings.Contains(name, "/") || !fs.ValidPath(name) {
		http.NotFound(w, r)
		return
	}
	b, err := fs.ReadFile(h.assets, name)
	if err != nil {
		http.NotFound(w, r)
		return
	}
	switch path.Ext(name) {
	case ".js":
		w.Header().Set("Content-Type", "text/javascript; charset=utf-8")
	case ".css":
		w.Header().Set("Content-Type", "text/css; charset=utf-8")
	default:
		w.Header().Set("Content-Type", http.DetectContentType(b))
	}
	// NB: every asset's name carries its content's hash (build.mjs).
	w.Header().Set("Cache-Control", cacheImmutable)
	w.WriteHeader(http.StatusOK)
	if r.Method == http.MethodGet {
		_, _ = w.Write(b)
	}
}
