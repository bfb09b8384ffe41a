// Package web is kappa's dashboards: the TypeScript sources in src/,
// bundled by esbuild (npm run build) into dist/, which is committed and
// embedded in the binary, so that `go build` needs no node. Handler
// serves them: every page route answers the index (never cached, so a
// new binary's assets are picked up at once), the assets answer under
// their content-hashed names (cached forever). Nothing is loaded from
// another host.
package web

import (
	"bytes"
	"compress/gzip"
	"embed"
	"fmt"
	"io/fs"
	"net/http"
	"path"
	"strconv"
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
	assets map[string]asset
}

// asset is one embedded asset, as is and gzipped.
type asset struct {
	raw, gz []byte
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
	files, err := fs.ReadDir(root, "assets")
	if err != nil {
		return nil, fmt.Errorf("web: %w", err)
	}
	h := &Handler{index: index, assets: make(map[string]asset, len(files))}
	for _, f := range files {
		raw, err := fs.ReadFile(root, "assets/"+f.Name())
		if err != nil {
			return nil, fmt.Errorf("web: %w", err)
		}
		var gz bytes.Buffer
		zw, _ := gzip.NewWriterLevel(&gz, gzip.BestCompression)
		if _, err := zw.Write(raw); err != nil {
			return nil, fmt.Errorf("web: gzip %s: %w", f.Name(), err)
		}
		if err := zw.Close(); err != nil {
			return nil, fmt.Errorf("web: gzip %s: %w", f.Name(), err)
		}
		h.assets[f.Name()] = asset{raw: raw, gz: gz.Bytes()}
	}
	return h, nil
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
	a, ok := h.assets[name]
	if !ok {
		http.NotFound(w, r)
		return
	}
	b := a.raw
	w.Header().Set("Vary", "Accept-Encoding")
	if acceptsGzip(r) {
		b = a.gz
		w.Header().Set("Content-Encoding", "gzip")
	}
	switch path.Ext(name) {
	case ".js":
		w.Header().Set("Content-Type", "text/javascript; charset=utf-8")
	case ".css":
		w.Header().Set("Content-Type", "text/css; charset=utf-8")
	default:
		w.Header().Set("Content-Type", http.DetectContentType(a.raw))
	}
	w.Header().Set("Content-Length", strconv.Itoa(len(b)))
	// NB: every asset's name carries its content's hash (build.mjs).
	w.Header().Set("Cache-Control", cacheImmutable)
	w.WriteHeader(http.StatusOK)
	if r.Method == http.MethodGet {
		_, _ = w.Write(b)
	}
}

// acceptsGzip reports whether the request's Accept-Encoding lists gzip
// (without q=0).
func acceptsGzip(r *http.Request) bool {
	for _, part := range strings.Split(r.Header.Get("Accept-Encoding"), ",") {
		enc, params, _ := strings.Cut(strings.TrimSpace(part), ";")
		if strings.EqualFold(strings.TrimSpace(enc), "gzip") {
			return strings.ReplaceAll(params, " ", "") != "q=0"
		}
	}
	return false
}
