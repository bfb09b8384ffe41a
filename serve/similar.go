package serve

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"golang.org/x/sync/errgroup"

	"github.com/kappa-stream/kappa/lsh"
	"github.com/kappa-stream/kappa/processors/similar"
	"github.com/kappa-stream/kappa/state"
)

const (
	defaultSimilarK = 10
	maxSimilarK     = 100
)

// The internal endpoints one instance reads another's partitions of the
// similarity indexes with (scatter and gather). They answer from local
// stores only: 503 when a key's partition is not here.
const (
	pathMembers = "/internal/v1/similar/members"
	pathScore   = "/internal/v1/similar/score"
)

// similarJSON is one answer of a similar endpoint; its id field is
// user_id or song_id.
type similarJSON struct {
	field string
	id    int64
	score float64
}

func (s similarJSON) MarshalJSON() ([]byte, error) {
	b := append(strconv.AppendQuote([]byte{'{'}, s.field), ':')
	b = append(strconv.AppendInt(b, s.id, 10), `,"score":`...)
	b = strconv.AppendFloat(b, s.score, 'g', -1, 64)
	return append(b, '}'), nil
}

// similarResponse is the answer of a similar endpoint:
// {"user_id" or "song_id", "similar": […]}.
type similarResponse struct {
	field   string
	id      int64
	similar []similarJSON
}

func (s similarResponse) MarshalJSON() ([]byte, error) {
	list, err := json.Marshal(s.similar)
	if err != nil {
		return nil, err
	}
	b := append(strconv.AppendQuote([]byte{'{'}, s.field), ':')
	b = append(strconv.AppendInt(b, s.id, 10), `,"similar":`...)
	return append(append(b, list...), '}'), nil
}

// similarItems serves GET /v1/users/{id}/similar?k= and
// GET /v1/songs/{id}/similar?k=: the k users (songs) most similar to the
// given one, best first.
func (s *Server) similarItems(kind similar.Kind, field string) read {
	return func(w http.ResponseWriter, r *http.Request, v version) {
		if v.similar() == nil {
			writeError(w, http.StatusNotFound, "the similarity indexes are off in version "+v.name+" (kappa up, process or replay --similar turns them on)")
			return
		}
		id, err := parseID(r.PathValue("id"), field)
		if err != nil {
			writeError(w, http.StatusBadRequest, err.Error())
			return
		}
		k := defaultSimilarK
		if q := r.URL.Query().Get("k"); q != "" {
			if k, err = strconv.Atoi(q); err != nil || k < 1 || k > maxSimilarK {
				writeError(w, http.StatusBadRequest, "k must be an integer in 1.."+strconv.Itoa(maxSimilarK))
				return
			}
		}
		what := field + " " + strconv.FormatInt(id, 10)
		loc := v.Rollups.Locate(similar.ItemKey(nil, kind, id))
		var item []byte
		var found bool
		switch {
		case loc.Store != nil:
			item, found, err = v.similar().Item(loc.Store, kind, id)
			loc.Release()
		case loc.Owner != "" && r.Header.Get(forwardedHeader) == "":
			s.forward(w, r, loc.Owner, v.name, what)
			return
		default:
			unavailable(w, "the partition of "+what+" is rebalancing or restoring; retry")
			return
		}
		if err != nil {
			s.cfg.Logger.Error("similar query failed", "path", r.URL.Path, "err", err)
			writeError(w, http.StatusInternalServerError, "query failed")
			return
		}
		if !found {
			why := "has no listens"
			if kind == similar.Songs {
				why = "has no feature vector (topic song-features)"
			}
			writeError(w, http.StatusNotFound, what+" "+why+" in version "+v.name)
			return
		}
		ans, err := v.similar().Similar(r.Context(), source{s: s, v: v}, kind, id, item, k)
		if err != nil {
			if uerr, ok := errors.AsType[unavailableError](err); ok {
				unavailable(w, string(uerr))
				return
			}
			s.cfg.Logger.Error("similar query failed", "path", r.URL.Path, "err", err)
			writeError(w, http.StatusInternalServerError, "query failed")
			return
		}
		out := make([]similarJSON, len(ans))
		for i, a := range ans {
			out[i] = similarJSON{field: field, id: a.ID, score: a.Score}
		}
		writeJSON(w, http.StatusOK, similarResponse{field: field, id: id, similar: out})
	}
}

// unavailableError is a read of a partition that is not servable right
// now: the answer is 503 with Retry-After.
type unavailableError string

func (e unavailableError) Error() string { return string(e) }

// source reads the similarity indexes of a version across the instances:
// local partitions from their stores, others with the internal endpoints
// of their owners, in parallel.
type source struct {
	s *Server
	v version
}

// split locates keys: local[i] is the store of key i when it is here
// (each to be released), and the others are grouped by their owner's base
// URL. A key whose partition is nowhere servable is an unavailableError.
func (src source) split(n int, key func(i int) []byte) (local []Location, remote map[string][]int, err error) {
	local, remote = make([]Location, n), map[string][]int{}
	for i := range n {
		loc := src.v.Rollups.Locate(key(i))
		switch {
		case loc.Store != nil:
			local[i] = loc
		case loc.Owner != "":
			remote[loc.Owner] = append(remote[loc.Owner], i)
		default:
			release(local)
			return nil, nil, unavailableError("a partition of the similarity index is rebalancing or restoring; retry")
		}
	}
	return local, remote, nil
}

// stores are the stores of locs, nil where a location has none.
func stores(locs []Location) []*state.Store {
	out := make([]*state.Store, len(locs))
	for i, l := range locs {
		out[i] = l.Store
	}
	return out
}

// release releases the stores of locs.
func release(locs []Location) {
	for _, l := range locs {
		if l.Store != nil {
			l.Release()
		}
	}
}

type membersRequest struct {
	Kind    string   `json:"kind"`
	Buckets []string `json:"buckets"`
	Limit   int      `json:"limit"`
}

type membersResponse struct {
	Members [][]int64 `json:"members"`
}

func (src source) Members(ctx context.Context, k similar.Kind, buckets []lsh.Bucket, limit int) ([][]int64, error) {
	local, remote, err := src.split(len(buckets), func(i int) []byte { return similar.BucketKey(nil, k, buckets[i]) })
	if err != nil {
		return nil, err
	}
	out, err := src.v.similar().MembersStores(stores(local), k, buckets, limit)
	release(local)
	if err != nil {
		return nil, err
	}
	g, gctx := errgroup.WithContext(ctx)
	for owner, idx := range remote {
		goSafe(g, func() error {
			req := membersRequest{Kind: string(rune(k)), Limit: limit}
			for _, i := range idx {
				req.Buckets = append(req.Buckets, bucketString(buckets[i]))
			}
			var resp membersResponse
			if err := src.call(gctx, owner, pathMembers, req, &resp); err != nil {
				return err
			}
			if len(resp.Members) != len(idx) {
				return fmt.Errorf("%s%s: %d member lists for %d buckets", owner, pathMembers, len(resp.Members), len(idx))
			}
			for j, i := range idx {
				out[i] = resp.Members[j]
			}
			return nil
		})
	}
	return out, g.Wait()
}

type scoreRequest struct {
	Kind  string  `json:"kind"`
	Query []byte  `json:"query"`
	IDs   []int64 `json:"ids"`
	N     int     `json:"n"`
}

type scoredJSON struct {
	ID    int64   `json:"id"`
	Score float64 `json:"score"`
}

type scoreResponse struct {
	Scored []scoredJSON `json:"scored"`
}

func (src source) Score(ctx context.Context, k similar.Kind, query []byte, ids []int64, n int) ([]lsh.Scored, error) {
	local, remote, err := src.split(len(ids), func(i int) []byte { return similar.ItemKey(nil, k, ids[i]) })
	if err != nil {
		return nil, err
	}
	out, err := src.v.similar().ScoreStores(stores(local), k, query, ids, n)
	release(local)
	if err != nil {
		return nil, err
	}
	results := make(chan []lsh.Scored, len(remote))
	g, gctx := errgroup.WithContext(ctx)
	for owner, idx := range remote {
		goSafe(g, func() error {
			req := scoreRequest{Kind: string(rune(k)), Query: query, N: n}
			for _, i := range idx {
				req.IDs = append(req.IDs, ids[i])
			}
			var resp scoreResponse
			if err := src.call(gctx, owner, pathScore, req, &resp); err != nil {
				return err
			}
			got := make([]lsh.Scored, len(resp.Scored))
			for i, sc := range resp.Scored {
				got[i] = lsh.Scored{ID: sc.ID, Score: sc.Score}
			}
			results <- got
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	close(results)
	for got := range results {
		out = append(out, got...)
	}
	return out, nil
}

// call posts req to an internal endpoint of owner and decodes the answer
// into resp; an owner that cannot answer is an unavailableError.
func (src source) call(ctx context.Context, owner, path string, req, resp any) error {
	body, err := json.Marshal(req)
	if err != nil {
		return err
	}
	target := strings.TrimSuffix(owner, "/") + path + "?version=" + url.QueryEscape(src.v.name)
	hr, err := http.NewRequestWithContext(ctx, http.MethodPost, target, bytes.NewReader(body))
	if err != nil {
		return unavailableError("the owner of a partition has a bad address " + owner + "; retry")
	}
	hr.Header.Set("Content-Type", "application/json")
	hr.Header.Set(forwardedHeader, "1")
	r, err := src.s.peers.Do(hr)
	if err != nil {
		if uerr, ok := errors.AsType[*url.Error](err); ok {
			err = uerr.Err
		}
		return unavailableError("the owner of a partition at " + owner + " did not answer (" + err.Error() + "); retry")
	}
	defer r.Body.Close()
	if r.StatusCode != http.StatusOK {
		var e struct {
			Error string `json:"error"`
		}
		_ = json.NewDecoder(r.Body).Decode(&e)
		return unavailableError(fmt.Sprintf("the owner of a partition at %s answered %d (%s); retry", owner, r.StatusCode, e.Error))
	}
	return json.NewDecoder(r.Body).Decode(resp)
}

func bucketString(b lsh.Bucket) string {
	return strconv.FormatUint(uint64(b.Table), 10) + ":" + strconv.FormatUint(b.Hash, 16)
}

func parseBucket(s string) (lsh.Bucket, error) {
	t, h, ok := strings.Cut(s, ":")
	table, err1 := strconv.ParseUint(t, 10, 16)
	hash, err2 := strconv.ParseUint(h, 16, 64)
	if !ok || err1 != nil || err2 != nil {
		return lsh.Bucket{}, badRequest("bad bucket " + strconv.Quote(s) + ": want table:hash")
	}
	return lsh.Bucket{Table: uint16(table), Hash: hash}, nil
}

func parseKind(s string) (similar.Kind, error) {
	for _, k := range []similar.Kind{similar.Users, similar.Songs} {
		if s == string(rune(k)) {
			return k, nil
		}
	}
	return 0, badRequest("kind must be u or s")
}

// local locates the keys of an internal request, which must all be in
// this instance's stores: the stores, in key order, each to be released.
func (s *Server) local(v version, keys [][]byte) ([]Location, error) {
	locs, remote, err := source{s: s, v: v}.split(len(keys), func(i int) []byte { return keys[i] })
	if err == nil && len(remote) > 0 {
		release(locs)
		err = unavailableError("a partition of the similarity index is not here (any more); retry")
	}
	return locs, err
}

// Caps of the internal requests: far above what an instance sends (a
// query reads at most a few hundred buckets, PerBucket+1 members of each,
// and scores some 25,000 candidates for at most 100 answers), so that a
// bad request cannot make an instance read or score without bound.
const (
	maxInternalKeys  = 100_000
	maxInternalLimit = 65_536
	maxInternalN     = 10_000
)

// goSafe runs f in g, turning a panic into an error: a bug in one
// scatter-gather call fails its query, never the process.
func goSafe(g *errgroup.Group, f func() error) {
	g.Go(func() (err error) {
		defer func() {
			if v := recover(); v != nil {
				err = fmt.Errorf("serve: scatter-gather call panicked: %v", v)
			}
		}()
		return f()
	})
}

// internalMembers serves POST /internal/v1/similar/members.
func (s *Server) internalMembers(w http.ResponseWriter, r *http.Request, v version) {
	var req membersRequest
	if !s.decodeInternal(w, r, v, &req) {
		return
	}
	kind, err := parseKind(req.Kind)
	buckets := make([]lsh.Bucket, len(req.Buckets))
	keys := make([][]byte, len(req.Buckets))
	for i, b := range req.Buckets {
		if err == nil {
			buckets[i], err = parseBucket(b)
			keys[i] = similar.BucketKey(nil, kind, buckets[i])
		}
	}
	if err == nil && (req.Limit < 1 || req.Limit > maxInternalLimit) {
		err = badRequest("limit must be 1…" + strconv.Itoa(maxInternalLimit))
	}
	if err == nil && len(req.Buckets) > maxInternalKeys {
		err = badRequest("at most " + strconv.Itoa(maxInternalKeys) + " buckets")
	}
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	locs, err := s.local(v, keys)
	if err != nil {
		unavailable(w, err.Error())
		return
	}
	members, err := v.similar().MembersStores(stores(locs), kind, buckets, req.Limit)
	release(locs)
	resp := membersResponse{Members: members}
	if err != nil {
		s.cfg.Logger.Error("similar members failed", "err", err)
		writeError(w, http.StatusInternalServerError, "query failed")
		return
	}
	writeJSON(w, http.StatusOK, resp)
}

// internalScore serves POST /internal/v1/similar/score.
func (s *Server) internalScore(w http.ResponseWriter, r *http.Request, v version) {
	var req scoreRequest
	if !s.decodeInternal(w, r, v, &req) {
		return
	}
	kind, err := parseKind(req.Kind)
	if err != nil || req.N < 1 || req.N > maxInternalN || len(req.IDs) > maxInternalKeys {
		writeError(w, http.StatusBadRequest, fmt.Sprintf("kind must be u or s, n 1…%d, at most %d ids", maxInternalN, maxInternalKeys))
		return
	}
	// NB: scoring no ids checks the query alone: a malformed one is the
	// caller's error, not a failed query.
	if _, err := v.similar().ScoreStores(nil, kind, req.Query, nil, 1); err != nil {
		writeError(w, http.StatusBadRequest, "bad query: "+err.Error())
		return
	}
	keys := make([][]byte, len(req.IDs))
	for i, id := range req.IDs {
		keys[i] = similar.ItemKey(nil, kind, id)
	}
	locs, err := s.local(v, keys)
	if err != nil {
		unavailable(w, err.Error())
		return
	}
	got, err := v.similar().ScoreStores(stores(locs), kind, req.Query, req.IDs, req.N)
	release(locs)
	var resp scoreResponse
	for _, sc := range got {
		resp.Scored = append(resp.Scored, scoredJSON{ID: sc.ID, Score: sc.Score})
	}
	if err != nil {
		s.cfg.Logger.Error("similar score failed", "err", err)
		writeError(w, http.StatusInternalServerError, "query failed")
		return
	}
	writeJSON(w, http.StatusOK, resp)
}

// decodeInternal reads the JSON body of an internal request; false when
// it answered an error.
func (s *Server) decodeInternal(w http.ResponseWriter, r *http.Request, v version, req any) bool {
	if v.similar() == nil {
		writeError(w, http.StatusNotFound, "the similarity indexes are off in version "+v.name)
		return false
	}
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 8<<20)).Decode(req); err != nil {
		writeError(w, http.StatusBadRequest, "bad request body: "+err.Error())
		return false
	}
	return true
}
