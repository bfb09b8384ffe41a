package serve

import (
	"errors"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/kappa-stream/kappa/state"
)

// forwardedHeader marks a request that one instance forwarded to the
// owner of its key. A request carrying it is answered from a local store
// or with 503, never forwarded again: when two instances disagree about
// who owns a partition (a rebalance is under way), a request bounces at
// most once instead of looping.
const forwardedHeader = "Kappa-Forwarded"

// forwardTimeout bounds a forwarded request, from connecting to the owner
// to reading its whole answer.
const forwardTimeout = 5 * time.Second

// routed answers r for the state of key, described to the client as what
// (e.g. "song_id 7"). When p has key's store here, read answers from it
// (and writes the response), and the store is released afterwards, also
// when read fails or panics. When another instance owns key, r is
// forwarded there. Otherwise the partition is rebalancing or restoring,
// and the answer is 503 with Retry-After.
func (s *Server) routed(w http.ResponseWriter, r *http.Request, v version, key []byte, what string, read func(*state.Store)) {
	loc := v.Rollups.Locate(key)
	switch {
	case loc.Store != nil:
		defer loc.Release()
		read(loc.Store)
	case loc.Owner != "" && r.Header.Get(forwardedHeader) == "":
		s.forward(w, r, loc.Owner, v.name, what)
	case loc.Owner != "":
		unavailable(w, "the partition of "+what+" is moving between instances; retry")
	default:
		unavailable(w, "the partition of "+what+" is rebalancing or restoring; retry")
	}
}

// forward relays r to the instance at base URL owner, reading version v
// there too (also when the owner serves another version by now), and
// copies the answer's status, Content-Type, Retry-After and body back.
// The routed endpoints are GETs, so no request body is relayed.
func (s *Server) forward(w http.ResponseWriter, r *http.Request, owner, v, what string) {
	u := *r.URL
	q := u.Query()
	q.Set("version", v)
	u.RawQuery = q.Encode()
	target := strings.TrimSuffix(owner, "/") + u.RequestURI()
	req, err := http.NewRequestWithContext(r.Context(), r.Method, target, nil)
	if err != nil {
		s.cfg.Logger.Error("bad owner URL", "owner", owner, "path", r.URL.Path, "err", err)
		unavailable(w, "the owner of "+what+" has a bad address "+owner+"; retry")
		return
	}
	req.Header.Set(forwardedHeader, "1")
	// NB: the owner authenticates the request's key again.
	if a := r.Header.Get("Authorization"); a != "" {
		req.Header.Set("Authorization", a)
	}
	resp, err := s.peers.Do(req)
	if err != nil {
		s.cfg.Logger.Warn("forwarding to the owner failed", "owner", owner, "path", r.URL.Path, "err", err)
		// NB: the *url.Error repeats the method and the URL.
		if uerr, ok := errors.AsType[*url.Error](err); ok {
			err = uerr.Err
		}
		unavailable(w, "the owner of "+what+" at "+owner+" did not answer ("+err.Error()+"); retry")
		return
	}
	defer resp.Body.Close()
	for _, h := range []string{"Content-Type", "Retry-After"} {
		if v := resp.Header.Get(h); v != "" {
			w.Header().Set(h, v)
		}
	}
	w.WriteHeader(resp.StatusCode)
	if _, err := io.Copy(w, resp.Body); err != nil {
		s.cfg.Logger.Warn("relaying the owner's answer failed", "owner", owner, "path", r.URL.Path, "err", err)
	}
}

// unavailable answers 503 with Retry-After: 1.
func unavailable(w http.ResponseWriter, msg string) {
	w.Header().Set("Retry-After", "1")
	writeError(w, http.StatusServiceUnavailable, msg)
}
