package auth

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/kappa-stream/kappa/keys"
)

// The headers of instance-to-instance calls. Clients cannot set them:
// Handler drops them from a request without a valid cluster credential.
const (
	// clusterHeader carries the credential: <unix seconds>.<hex HMAC>.
	clusterHeader = "Kappa-Cluster"
	// roleHeader is the role of the client the calling instance serves.
	roleHeader = "Kappa-Role"
	// forwardedHeader marks a request forwarded to its key's owner
	// (serve's, repeated here because only a peer may send it).
	forwardedHeader = "Kappa-Forwarded"
)

// clusterSkew is how far a credential's time may be from the clock of
// the instance that checks it.
const clusterSkew = 5 * time.Minute

// MinSecret is the shortest cluster secret accepted, in bytes.
const MinSecret = 16

// Cluster is the credential instances of one cluster call each other
// with: a secret they all share (never sent), from which each call
// carries an HMAC-SHA256 over its time, method, path, query and the
// role of the client it is made for. Clients cannot mint it without the
// secret; a captured one is good for the same request line only (not
// the body), within five minutes. Safe for concurrent use.
type Cluster struct {
	secret []byte
	now    func() time.Time
}

// NewCluster returns the credential of the cluster sharing secret (at
// least MinSecret bytes; surrounding white space is not part of it).
func NewCluster(secret []byte) (*Cluster, error) {
	s := []byte(strings.TrimSpace(string(secret)))
	if len(s) < MinSecret {
		return nil, errors.New("auth: the cluster secret must have at least 16 bytes (e.g. openssl rand -hex 32)")
	}
	return &Cluster{secret: s, now: time.Now}, nil
}

func (c *Cluster) mac(ts string, r *http.Request, role string) []byte {
	h := hmac.New(sha256.New, c.secret)
	for _, s := range []string{"kappa-cluster", ts, r.Method, r.URL.Path, r.URL.RawQuery, role} {
		h.Write([]byte(s))
		h.Write([]byte{'\n'})
	}
	return h.Sum(nil)
}

// Sign sets the credential and role headers of r, a call to another
// instance on behalf of a client with role (empty: none, for internal
// calls).
func (c *Cluster) Sign(r *http.Request, role keys.Role) {
	ts := strconv.FormatInt(c.now().Unix(), 10)
	if role != "" {
		r.Header.Set(roleHeader, string(role))
	}
	r.Header.Set(clusterHeader, ts+"."+hex.EncodeToString(c.mac(ts, r, string(role))))
}

// check verifies r's credential: whether it carries one, and whether it
// is valid (the role it names, empty for none).
func (c *Cluster) check(r *http.Request) (present bool, role keys.Role, err error) {
	v := r.Header.Get(clusterHeader)
	if v == "" {
		return false, "", nil
	}
	ts, sig, ok := strings.Cut(v, ".")
	got, herr := hex.DecodeString(sig)
	secs, terr := strconv.ParseInt(ts, 10, 64)
	if !ok || herr != nil || terr != nil {
		return true, "", errors.New("malformed cluster credential")
	}
	role = keys.Role(r.Header.Get(roleHeader))
	if !hmac.Equal(got, c.mac(ts, r, string(role))) {
		return true, "", errors.New("bad cluster credential (do all instances share the same cluster secret?)")
	}
	if d := c.now().Sub(time.Unix(secs, 0)); d > clusterSkew || d < -clusterSkew {
		return true, "", errors.New("expired cluster credential (are the instances' clocks " + d.Round(time.Second).String() + " apart?)")
	}
	if role != "" {
		if _, err := keys.ParseRole(string(role)); err != nil {
			return true, "", err
		}
	}
	return true, role, nil
}

// Transport wraps base (nil: http.DefaultTransport) to sign every call
// with the cluster credential, for the role of the request's context
// (RoleOf): the client a forwarded request or a scatter-gather call is
// made for.
func (c *Cluster) Transport(base http.RoundTripper) http.RoundTripper {
	if base == nil {
		base = http.DefaultTransport
	}
	return signer{c: c, base: base}
}

type signer struct {
	c    *Cluster
	base http.RoundTripper
}

func (s signer) RoundTrip(r *http.Request) (*http.Response, error) {
	role, _ := RoleOf(r.Context())
	r = r.Clone(r.Context())
	s.c.Sign(r, role)
	return s.base.RoundTrip(r)
}
