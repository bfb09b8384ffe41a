package auth

import (
	"encoding/json"
	"errors"
	"html/template"
	"net/http"
	"strings"

	"github.com/kappa-stream/kappa/keys"
)

// The login routes and the cookie they set.
const (
	loginPath  = "/login"
	logoutPath = "/logout"
	// cookieName holds the key a browser logged in with (HttpOnly,
	// SameSite=Strict, Secure over TLS; it ends with the browser
	// session). Honoured on GET and HEAD only.
	cookieName = "kappa_key"
)

var loginTmpl = template.Must(template.New("login").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>kappa: log in</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>body{font-family:sans-serif;max-width:28rem;margin:4rem auto;padding:0 1rem}
input{width:100%;box-sizing:border-box;padding:.5rem;margin:.5rem 0}p.e{color:#b00}</style></head>
<body><h1>kappa</h1>
{{if .Message}}<p class="e" role="alert">{{.Message}}</p>{{end}}
<form method="post" action="/login">
<label for="key">API key (kappa keys create --role reader)</label>
<input id="key" name="key" type="password" autocomplete="current-password" required autofocus>
<input type="hidden" name="next" value="{{.Next}}">
<input type="submit" value="Log in">
</form></body></html>
`))

// loginPage writes the login form with status, leading to next after a
// login, with msg above it.
func loginPage(w http.ResponseWriter, status int, next, msg string) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = loginTmpl.Execute(w, struct{ Next, Message string }{safeNext(next), msg})
}

// safeNext is next when it is a path of this site, else "/".
func safeNext(next string) string {
	if !strings.HasPrefix(next, "/") || strings.HasPrefix(next, "//") || strings.ContainsAny(next, "\\\r\n") {
		return "/"
	}
	return next
}

// login serves GET /login (the form) and POST /login (form fields key
// and next): a valid key is set as the cookie and the browser sent to
// next (303); an invalid one gets the form again with 401. A client
// that does not ask for HTML gets {"role"} or a JSON error instead.
func (h *Handler) login(w http.ResponseWriter, r *http.Request) {
	switch r.Method {
	case http.MethodGet, http.MethodHead:
		loginPage(w, http.StatusOK, r.URL.Query().Get("next"), "")
		return
	case http.MethodPost:
	default:
		w.Header().Set("Allow", "GET, HEAD, POST")
		writeError(w, http.StatusMethodNotAllowed, "use GET or POST on /login")
		return
	}
	if !h.synced(w) {
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, 4<<10)
	page := strings.Contains(r.Header.Get("Accept"), "text/html")
	if err := r.ParseForm(); err != nil {
		writeError(w, http.StatusBadRequest, "bad login form")
		return
	}
	token := strings.TrimSpace(r.PostForm.Get("key"))
	next := safeNext(r.PostForm.Get("next"))
	k, err := h.cfg.Keys.Verify(token)
	if err != nil {
		msg := "unknown API key"
		if errors.Is(err, keys.ErrRevoked) {
			msg = "revoked API key"
		}
		if page {
			loginPage(w, http.StatusUnauthorized, next, msg)
		} else {
			writeError(w, http.StatusUnauthorized, msg)
		}
		return
	}
	http.SetCookie(w, &http.Cookie{Name: cookieName, Value: token, Path: "/",
		HttpOnly: true, Secure: r.TLS != nil, SameSite: http.SameSiteStrictMode})
	w.Header().Set("Cache-Control", "no-store")
	if page {
		http.Redirect(w, r, next, http.StatusSeeOther)
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"role": string(k.Role), "next": next})
}

// logout clears the cookie and sends a browser to the login page.
func logout(w http.ResponseWriter, r *http.Request) {
	http.SetCookie(w, &http.Cookie{Name: cookieName, Value: "", Path: "/", MaxAge: -1,
		HttpOnly: true, Secure: r.TLS != nil, SameSite: http.SameSiteStrictMode})
	http.Redirect(w, r, loginPath, http.StatusSeeOther)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func writeError(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, map[string]string{"error": msg})
}
