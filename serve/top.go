package serve

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"strings"

	"golang.org/x/sync/errgroup"

	"github.com/kappa-stream/kappa/events"
	"github.com/kappa-stream/kappa/processors/rollups"
	"github.com/kappa-stream/kappa/processors/topk"
	"github.com/kappa-stream/kappa/state"
	"github.com/kappa-stream/kappa/topology"
)

const defaultTopK = 10

// pathTop is the internal endpoint one instance reads the top-K of
// another's stage-2 partitions with (scatter and gather). It answers from
// local stores only: 503 when a partition asked for is not here.
const pathTop = "/internal/v1/top"

// topRoutes registers the top-K endpoints.
func (s *Server) topRoutes() {
	s.mux.HandleFunc("GET /v1/top/artists", s.versioned(s.top(rollups.Artist)))
	s.mux.HandleFunc("GET /v1/top/songs", s.versioned(s.top(rollups.Song)))
	s.mux.HandleFunc("POST "+pathTop, s.versioned(s.internalTop))
}

// topItemJSON is one entry of a top answer.
type topItemJSON struct {
	SongID   *int64 `json:"song_id,omitempty"`
	ArtistID *int64 `json:"artist_id,omitempty"`
	// Title and ArtistName are the catalog's, when it knows the id.
	Title      string `json:"title,omitempty"`
	ArtistName string `json:"artist_name,omitempty"`
	Plays      int64  `json:"plays"`
	Streams    int64  `json:"streams"`
}

type topResponse struct {
	// ArtistID is the artist whose songs are ranked, when filtered.
	ArtistID *int64        `json:"artist_id,omitempty"`
	From     string        `json:"from"`
	To       string        `json:"to"`
	Country  string        `json:"country,omitempty"`
	By       string        `json:"by"`
	Top      []topItemJSON `json:"top"`
}

// top serves GET /v1/top/artists and GET /v1/top/songs: the k ids with
// the most plays or streams over an inclusive day range, exact, merged
// from the top k of every stage-2 partition, here or on their owners.
func (s *Server) top(e rollups.Entity) read {
	return func(w http.ResponseWriter, r *http.Request, v version) {
		partitions, artistSongs := v.top()
		if partitions == 0 {
			writeError(w, http.StatusNotFound, "top-K is off in version "+v.name+" (kappa up, process or replay --top-k turns it on)")
			return
		}
		q, artist, err := parseTopQuery(r, e)
		if err != nil {
			writeError(w, http.StatusBadRequest, err.Error())
			return
		}
		if artist != 0 {
			if !artistSongs {
				writeError(w, http.StatusNotFound, "the artists' songs are not counted in version "+v.name+" (kappa up, process or replay --top-k-artist-songs counts them)")
				return
			}
			s.artistSongs(w, r, v, q, artist)
			return
		}
		items, err := s.scatterTop(r.Context(), v, q)
		if err != nil {
			s.topFailed(w, r, err)
			return
		}
		s.writeTop(w, q, 0, items)
	}
}

// artistSongs answers the top songs of one artist from the store of the
// artist's partition, here or forwarded to its owner.
func (s *Server) artistSongs(w http.ResponseWriter, r *http.Request, v version, q topk.Query, artist int64) {
	key := rollups.PartitionKey(nil, rollups.Artist, artist)
	s.routed(w, r, v, key, "artist_id "+strconv.FormatInt(artist, 10), func(store *state.Store) {
		items, err := topk.ArtistSongs(store, artist, q)
		if err != nil {
			s.topFailed(w, r, err)
			return
		}
		s.writeTop(w, q, artist, items)
	})
}

// writeTop writes the answer to q (of the songs of artist, when not 0),
// with the catalog's names.
func (s *Server) writeTop(w http.ResponseWriter, q topk.Query, artist int64, items []topk.Item) {
	out := topResponse{From: dayString(q.From), To: dayString(q.To), Country: q.Country.String(),
		By: byName(q.By), Top: make([]topItemJSON, len(items))}
	if artist != 0 {
		out.ArtistID = &artist
	}
	for i, it := range items {
		o := &out.Top[i]
		o.Plays, o.Streams = it.Plays, it.Streams
		if q.Entity == rollups.Song {
			o.SongID = &items[i].ID
			o.Title, o.ArtistName = s.songNames(it.ID)
		} else {
			o.ArtistID = &items[i].ID
			o.ArtistName = s.artistName(it.ID)
		}
	}
	writeJSON(w, http.StatusOK, out)
}

// topFailed answers a failed top query: 503 for a partition that is not
// servable now, 500 otherwise.
func (s *Server) topFailed(w http.ResponseWriter, r *http.Request, err error) {
	if uerr, ok := errors.AsType[unavailableError](err); ok {
		unavailable(w, string(uerr))
		return
	}
	s.cfg.Logger.Error("top query failed", "path", r.URL.Path, "err", err)
	writeError(w, http.StatusInternalServerError, "query failed")
}

func byName(b topk.By) string {
	if b == topk.Streams {
		return "streams"
	}
	return "plays"
}

// parseTopQuery reads the parameters of a top query, and the artist_id
// of top songs (0: none).
func parseTopQuery(r *http.Request, e rollups.Entity) (q topk.Query, artist int64, err error) {
	q = topk.Query{Entity: e, K: defaultTopK}
	params := r.URL.Query()
	if q.From, err = parseDay(params, "from"); err != nil {
		return q, 0, err
	}
	if q.To, err = parseDay(params, "to"); err != nil {
		return q, 0, err
	}
	if q.From > q.To {
		return q, 0, badRequest("from must not be after to")
	}
	if k := params.Get("k"); k != "" {
		if q.K, err = strconv.Atoi(k); err != nil || q.K < 1 || q.K > topk.MaxK {
			return q, 0, badRequest("k must be an integer in 1.." + strconv.Itoa(topk.MaxK))
		}
	}
	switch by := params.Get("by"); by {
	case "", "plays":
		q.By = topk.Plays
	case "streams":
		q.By = topk.Streams
	default:
		return q, 0, badRequest("by must be plays or streams, not " + strconv.Quote(by))
	}
	if c := params.Get("country"); c != "" {
		country, ok := events.ParseCountry(c)
		if !ok {
			return q, 0, badRequest("country must be an ISO 3166-1 alpha-2 code, not " + strconv.Quote(c))
		}
		q.Country = country
	}
	if params.Has("artist_id") {
		if e != rollups.Song {
			return q, 0, badRequest("artist_id filters top songs only")
		}
		if artist, err = parseID(params.Get("artist_id"), "artist_id"); err != nil {
			return q, 0, err
		}
	}
	return q, artist, nil
}

// partitionKey returns a rollups partition key that routes to partition
// p of n: that of the first artist id that does.
func partitionKey(p int32, n int) []byte {
	var key []byte
	for id := int64(1); ; id++ {
		key = rollups.PartitionKey(key[:0], rollups.Artist, id)
		if topology.KeyPartition(key, n) == p {
			return key
		}
	}
}

// scatterTop asks every stage-2 partition of v for its top q.K, the local
// ones from their stores and the others from their owners (one request
// per owner), and merges the answers.
func (s *Server) scatterTop(ctx context.Context, v version, q topk.Query) ([]topk.Item, error) {
	n, _ := v.top()
	var local []Location
	defer func() { release(local) }()
	remote := map[string][]int32{}
	for p := range int32(n) {
		loc := v.Rollups.Locate(partitionKey(p, n))
		switch {
		case loc.Store != nil:
			local = append(local, loc)
		case loc.Owner != "":
			remote[loc.Owner] = append(remote[loc.Owner], p)
		default:
			return nil, unavailableError("a partition of the top-K indexes is rebalancing or restoring; retry")
		}
	}
	answers := make([][]topk.Item, 0, len(remote)+1)
	mine, err := topLocal(local, q)
	if err != nil {
		return nil, err
	}
	answers = append(answers, mine)
	results := make(chan []topk.Item, len(remote))
	g, gctx := errgroup.WithContext(ctx)
	src := source{s: s, v: v}
	for owner, parts := range remote {
		g.Go(func() error {
			var resp topInternalResponse
			if err := src.call(gctx, owner, pathTop, newTopRequest(q, parts), &resp); err != nil {
				return err
			}
			got := make([]topk.Item, len(resp.Top))
			for i, it := range resp.Top {
				got[i] = topk.Item{ID: it.ID, Plays: it.Plays, Streams: it.Streams}
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
		answers = append(answers, got)
	}
	return topk.Merge(q, answers...), nil
}

// topLocal merges the answers of the stores of locs to q.
func topLocal(locs []Location, q topk.Query) ([]topk.Item, error) {
	answers := make([][]topk.Item, len(locs))
	g := errgroup.Group{}
	for i, loc := range locs {
		g.Go(func() error {
			var err error
			answers[i], err = topk.Top(loc.Store, q)
			return err
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	return topk.Merge(q, answers...), nil
}

// topRequest asks an instance for the merged top of some of its
// partitions.
type topRequest struct {
	Entity     string  `json:"entity"` // "artist" or "song"
	By         string  `json:"by"`
	From       int32   `json:"from"`
	To         int32   `json:"to"`
	Country    string  `json:"country,omitempty"`
	K          int     `json:"k"`
	Partitions []int32 `json:"partitions"`
}

type topInternalItem struct {
	ID      int64 `json:"id"`
	Plays   int64 `json:"plays"`
	Streams int64 `json:"streams"`
}

type topInternalResponse struct {
	Top []topInternalItem `json:"top"`
}

func newTopRequest(q topk.Query, parts []int32) topRequest {
	entity := "song"
	if q.Entity == rollups.Artist {
		entity = "artist"
	}
	return topRequest{Entity: entity, By: byName(q.By), From: q.From, To: q.To, Country: q.Country.String(), K: q.K, Partitions: parts}
}

// query is the request's query; an error is a bad request.
func (req topRequest) query() (topk.Query, error) {
	q := topk.Query{From: req.From, To: req.To, K: req.K}
	switch req.Entity {
	case "song":
		q.Entity = rollups.Song
	case "artist":
		q.Entity = rollups.Artist
	default:
		return q, badRequest("entity must be song or artist")
	}
	switch req.By {
	case "plays":
		q.By = topk.Plays
	case "streams":
		q.By = topk.Streams
	default:
		return q, badRequest("by must be plays or streams")
	}
	if req.Country != "" {
		c, ok := events.ParseCountry(req.Country)
		if !ok {
			return q, badRequest("bad country " + strconv.Quote(req.Country))
		}
		q.Country = c
	}
	if err := q.Validate(); err != nil {
		return q, badRequest(strings.TrimPrefix(err.Error(), "topk: "))
	}
	return q, nil
}

// internalTop serves POST /internal/v1/top: the merged top of the asked
// partitions, which must all be here.
func (s *Server) internalTop(w http.ResponseWriter, r *http.Request, v version) {
	partitions, _ := v.top()
	if partitions == 0 {
		writeError(w, http.StatusNotFound, "top-K is off in version "+v.name)
		return
	}
	var req topRequest
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<20)).Decode(&req); err != nil {
		writeError(w, http.StatusBadRequest, "bad request body: "+err.Error())
		return
	}
	q, err := req.query()
	for _, p := range req.Partitions {
		if err == nil && (p < 0 || int(p) >= partitions) {
			err = badRequest("partition " + strconv.Itoa(int(p)) + " out of range")
		}
	}
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	keys := make([][]byte, len(req.Partitions))
	for i, p := range req.Partitions {
		keys[i] = partitionKey(p, partitions)
	}
	locs, err := s.local(v, keys)
	if err != nil {
		unavailable(w, "a partition of the top-K indexes is not here (any more); retry")
		return
	}
	items, err := topLocal(locs, q)
	release(locs)
	if err != nil {
		s.topFailed(w, r, err)
		return
	}
	resp := topInternalResponse{Top: make([]topInternalItem, len(items))}
	for i, it := range items {
		resp.Top[i] = topInternalItem{ID: it.ID, Plays: it.Plays, Streams: it.Streams}
	}
	writeJSON(w, http.StatusOK, resp)
}
