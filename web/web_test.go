package web

import (
	"bytes"
	"compress/gzip"
	"io"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// assetNames are the assets index.html references.
func assetNames(t *testing.T, index []byte) []string {
	t.Helper()
	m := regexp.MustCompile(`/assets/([A-Za-z0-9_.-]+)`).FindAllSubmatch(index, -1)
	if len(m) != 2 {
		t.Fatalf("index.html references %d assets, want the script and the stylesheet", len(m))
	}
	var out []string
	for _, x := range m {
		out = append(out, string(x[1]))
	}
	return out
}

func TestHandler(t *testing.T) {
	h, err := New()
	if err != nil {
		t.Fatal(err)
	}
	get := func(method, target string) *httptest.ResponseRecorder {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(method, target, nil))
		return rec
	}
	index, err := fs.ReadFile(dist, "dist/index.html")
	if err != nil {
		t.Fatal(err)
	}
	for _, page := range []string{"/", "/top", "/artists/3", "/artists/3/fan-zones", "/songs/7", "/songs/7/live?x=1"} {
		rec := get(http.MethodGet, page)
		if rec.Code != 200 || rec.Header().Get("Cache-Control") != "no-cache" ||
			rec.Header().Get("Content-Type") != "text/html; charset=utf-8" || !bytes.Equal(rec.Body.Bytes(), index) {
			t.Errorf("%s: %d %q %q, %d bytes; want the index, not cached", page, rec.Code, rec.Header().Get("Cache-Control"), rec.Header().Get("Content-Type"), rec.Body.Len())
		}
		if csp := rec.Header().Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'self'") {
			t.Errorf("%s: Content-Security-Policy %q", page, csp)
		}
	}
	for _, name := range assetNames(t, index) {
		rec := get(http.MethodGet, "/assets/"+name)
		want, _ := fs.ReadFile(dist, "dist/assets/"+name)
		if rec.Code != 200 || rec.Header().Get("Cache-Control") != "public, max-age=31536000, immutable" || !bytes.Equal(rec.Body.Bytes(), want) || len(want) == 0 {
			t.Errorf("/assets/%s: %d %q, %d bytes", name, rec.Code, rec.Header().Get("Cache-Control"), rec.Body.Len())
		}
		wantType := map[string]string{".js": "text/javascript; charset=utf-8", ".css": "text/css; charset=utf-8"}[filepath.Ext(name)]
		if ct := rec.Header().Get("Content-Type"); ct != wantType {
			t.Errorf("/assets/%s: Content-Type %q, want %q", name, ct, wantType)
		}
		if head := get(http.MethodHead, "/assets/"+name); head.Code != 200 || head.Body.Len() != 0 {
			t.Errorf("HEAD /assets/%s: %d with %d bytes", name, head.Code, head.Body.Len())
		}
		for _, enc := range []string{"gzip", "br, gzip;q=0.8", "GZIP"} {
			req := httptest.NewRequest(http.MethodGet, "/assets/"+name, nil)
			req.Header.Set("Accept-Encoding", enc)
			zrec := httptest.NewRecorder()
			h.ServeHTTP(zrec, req)
			zr, err := gzip.NewReader(zrec.Body)
			if err != nil || zrec.Header().Get("Content-Encoding") != "gzip" || zrec.Header().Get("Vary") != "Accept-Encoding" {
				t.Fatalf("/assets/%s with Accept-Encoding %q: %v %q", name, enc, err, zrec.Header())
			}
			if got, err := io.ReadAll(zr); err != nil || !bytes.Equal(got, want) {
				t.Errorf("/assets/%s gzipped: not the asset (%v)", name, err)
			}
		}
		req := httptest.NewRequest(http.MethodGet, "/assets/"+name, nil)
		req.Header.Set("Accept-Encoding", "gzip;q=0, br")
		plain := httptest.NewRecorder()
		h.ServeHTTP(plain, req)
		if plain.Header().Get("Content-Encoding") != "" || !bytes.Equal(plain.Body.Bytes(), want) {
			t.Errorf("/assets/%s: gzipped although refused", name)
		}
	}
	for _, bad := range []string{"/assets/", "/assets/nope.js", "/assets/../index.html", "/assets/a/b.js", "/assets/.."} {
		if rec := get(http.MethodGet, bad); rec.Code != 404 {
			t.Errorf("%s: %d, want 404", bad, rec.Code)
		}
	}
	if rec := get(http.MethodPost, "/"); rec.Code != http.StatusMethodNotAllowed {
		t.Errorf("POST /: %d, want 405", rec.Code)
	}
}

// TestNoOutsideURL: no embedded file names another host; the only URLs
// allowed are XML namespace names, which are never fetched.
func TestNoOutsideURL(t *testing.T) {
	namespaces := map[string]bool{
		"http://www.w3.org/2000/svg":           true,
		"http://www.w3.org/1999/xhtml":         true,
		"http://www.w3.org/1999/xlink":         true,
		"http://www.w3.org/XML/1998/namespace": true,
	}
	url := regexp.MustCompile(`(?i)(https?:)?//[a-z0-9-]+(\.[a-z0-9-]+)+[^\s"'<>)\x60]*`)
	n := 0
	err := fs.WalkDir(dist, "dist", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		n++
		b, err := fs.ReadFile(dist, p)
		if err != nil {
			return err
		}
		for _, u := range url.FindAll(b, -1) {
			if !namespaces[string(u)] {
				t.Errorf("%s names an outside URL: %s", p, u)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if n < 3 {
		t.Fatalf("%d embedded files, want the index, the script and the stylesheet", n)
	}
}

// TestBuildUpToDate rebuilds the sources and compares the result with
// the committed (embedded) build: a change to src/ without `make web`
// fails here. It needs node and the packages of package-lock.json
// (scripts/test-deps.sh installs them).
func TestBuildUpToDate(t *testing.T) {
	if _, err := os.Stat("node_modules/esbuild"); err != nil {
		t.Fatalf("web/node_modules is missing: run scripts/test-deps.sh (or npm ci in web/): %v", err)
	}
	out := t.TempDir()
	cmd := exec.Command("node", "build.mjs", out)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("node build.mjs: %v\n%s", err, b)
	}
	built := map[string][]byte{}
	err := filepath.WalkDir(out, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(out, p)
		built[filepath.ToSlash(rel)], err = os.ReadFile(p)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	embedded := map[string][]byte{}
	err = fs.WalkDir(dist, "dist", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		embedded[strings.TrimPrefix(p, "dist/")], err = fs.ReadFile(dist, p)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	for name, b := range built {
		if e, ok := embedded[name]; !ok || !bytes.Equal(e, b) {
			t.Errorf("dist/%s is not the build of the sources: run make web and commit web/dist", name)
		}
	}
	for name := range embedded {
		if _, ok := built[name]; !ok {
			t.Errorf("dist/%s is not in the build of the sources: run make web and commit web/dist", name)
		}
	}
}

// TestTypeCheck runs the TypeScript compiler over the sources (esbuild
// strips the types without checking them).
func TestTypeCheck(t *testing.T) {
	if _, err := os.Stat("node_modules/typescript"); err != nil {
		t.Fatalf("web/node_modules is missing: run scripts/test-deps.sh (or npm ci in web/): %v", err)
	}
	if b, err := exec.Command("npx", "--no-install", "tsc", "--noEmit", "-p", ".").CombinedOutput(); err != nil {
		t.Fatalf("tsc: %v\n%s", err, b)
	}
}
