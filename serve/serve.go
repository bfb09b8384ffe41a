// Package serve is kappa's HTTP API: the materialized state endpoints of
// CONTRACT.md, health, readiness and metrics. Answers are JSON; errors
// are {"error": "..."} with a 4xx/5xx status.
//
// Any instance answers any key: a Placement says whether the key's store
// is here, on which other instance, or nowhere servable right now. A
// request for another instance's key is forwarded there once; one whose
// partition is rebalancing or restoring gets 503 with Retry-After, never
// an answer from a store that is not current.
package serve

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"time"

	"github.com/kappa-stream/kappa/processors"
	"github.com/kappa-stream/kappa/processors/fans"
	"github.com/kappa-stream/kappa/processors/live"
	"github.com/kappa-stream/kappa/processors/rollups"
	"github.com/kappa-stream/kappa/processors/similar"
	"github.com/kappa-stream/kappa/processors/topk"
)

// Backend is the read side of one topology version.
type Backend struct {
	// Rollups locates the store that answers a plays query, by the
	// rollups.PartitionKey of its song or artist (required). A query
	// whose store is on another instance is forwarded there.
	Rollups Placement
	// Processors are the version's processors, by their registry name;
	// one that is absent is off, and its endpoints answer 404. The live
	// windows (a song's in the store of its rollups key), the fan zones
	// (an artist's in the store of its rollups key) and the similarity
	// indexes (an item's and a bucket's in the stores of their
	// similar.ItemKey and similar.BucketKey) are read here.
	Processors map[string]processors.Processor
}

// live is the configuration of the live windows (its first window size is
// the default of window=), nil when they are off.
func (b *Backend) live() *live.Config { return live.ConfigOf(b.Processors[live.Spec.Name]) }

// fans is the configuration of the fan zones (their resolutions), nil
// when they are off.
func (b *Backend) fans() *fans.Config { return fans.ConfigOf(b.Processors[fans.Spec.Name]) }

// top is the stage-2 partition count a top query reads (0: top-K is
// off) and whether the artists' songs are counted.
func (b *Backend) top() (partitions int, artistSongs bool) {
	_, partitions, artistSongs = topk.Served(b.Processors[topk.Spec.Name])
	return partitions, artistSongs
}

// similar is the hashing of the similarity indexes, nil when they are
// off.
func (b *Backend) similar() *similar.Index {
	return similar.IndexOf(b.Processors[similar.Spec.Name])
}

// ErrStarting marks a Versions.Backend error for a version that is not
// readable here yet but will be (the instance is starting it): the
// answer is 503 with Retry-After instead of 404.
var ErrStarting = errors.New("serve: version starting")

// Versions are the topology versions an instance serves. Its methods are
// called concurrently, once or twice per request.
type Versions interface {
	// Serving is the version that answers requests without version=.
	Serving() string
	// Backend is the read side of version v; an error, shown to the
	// client with 404 (with 503 when it wraps ErrStarting), says why v
	// cannot be read here (unknown, retired, starting).
	Backend(v string) (*Backend, error)
}

// Names looks up the catalog's names; ok is false for ids it does not
// know. Its methods are called concurrently.
type Names interface {
	// Song is a song's title and its artist's name (empty when unknown).
	Song(id int64) (title, artist string, ok bool)
	// Artist is an artist's name.
	Artist(id int64) (name string, ok bool)
}

// Config wires the server to the read sides of the processors.
type Config struct {
	// Versions resolve the version a request reads: its version=, or the
	// serving one (required).
	Versions Versions
	// Names enriches answers with the catalog's names of songs and
	// artists (default: answers carry ids only).
	Names Names
	// Ready reports readiness for /readyz (required).
	Ready func(context.Context) (bool, error)
	// Produce serves POST /v1/listens (default: the endpoint answers 404).
	Produce Produce
	// Metrics serves /metrics (default: 404).
	Metrics http.Handler
	// Status answers GET /v1/status with the instance's own view: its
	// partitions, their progress and restores (default: 404).
	Status func() any
	// Partner serves the partner API, /partner/v1 (default: its
	// endpoints answer 404).
	Partner *Partner
	// Search serves GET /v1/search (default: the endpoint answers 404).
	Search Searcher
	// UI serves the dashboard's pages and assets (default: they answer
	// 404).
	UI http.Handler
	// Logger receives request failures (default: discard).
	Logger *slog.Logger
	// Peers is the transport of the calls to other instances (forwarded
	// requests, scatter-gather), e.g. an auth.Cluster's, which signs them
	// (default: http.DefaultTransport).
	Peers http.RoundTripper
	// Floors are the privacy floors of the fan zones for non-admin
	// clients (default: none, every client sees exact counts).
	Floors *Floors
}

// Validate reports a missing setting.
func (c *Config) Validate() error {
	switch {
	case c.Versions == nil:
		return errors.New("serve: no versions")
	case c.Ready == nil:
		return errors.New("serve: no readiness check")
	case c.Floors != nil:
		return c.Floors.Validate()
	}
	return nil
}

// Server is the API's http.Handler. It is safe for concurrent use.
type Server struct {
	cfg Config
	mux *http.ServeMux
	// peers forwards requests to the instances that own their keys.
	peers *http.Client
	// hub coalesces the live event streams.
	hub *hub
}

// New validates cfg and builds the routes.
func New(cfg Config) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	s := &Server{cfg: cfg, mux: http.NewServeMux(), peers: &http.Client{Timeout: forwardTimeout, Transport: cfg.Peers}}
	s.mux.HandleFunc("GET /v1/songs/{id}/plays", s.versioned(s.plays(rollups.Song, "song_id")))
	s.mux.HandleFunc("GET /v1/artists/{id}/plays", s.versioned(s.plays(rollups.Artist, "artist_id")))
	s.mux.HandleFunc("GET /v1/songs/{id}/live", s.versioned(s.live))
	s.hub = newHub(s.versioned(s.live), streamTick)
	s.mux.HandleFunc("GET /v1/songs/{id}/live/events", s.versioned(s.liveEvents))
	s.mux.HandleFunc("GET /v1/artists/{id}/fan-zones", s.versioned(s.fanZones))
	s.mux.HandleFunc("GET /v1/cells/{cell}/fans", s.versioned(s.cellFans))
	s.mux.HandleFunc("GET /v1/users/{id}/similar", s.versioned(s.similarItems(similar.Users, "user_id")))
	s.mux.HandleFunc("GET /v1/songs/{id}/similar", s.versioned(s.similarItems(similar.Songs, "song_id")))
	s.mux.HandleFunc("POST "+pathMembers, s.versioned(s.internalMembers))
	s.mux.HandleFunc("POST "+pathScore, s.versioned(s.internalScore))
	if cfg.Search != nil {
		s.mux.HandleFunc("GET /v1/search", s.search)
	}
	if cfg.UI != nil {
		for _, p := range uiPatterns() {
			s.mux.Handle(p, cfg.UI)
		}
	}
	s.topRoutes()
	if cfg.Produce != nil {
		s.mux.HandleFunc("POST /v1/listens", s.ingest)
	}
	if cfg.Partner != nil {
		if err := s.partnerRoutes(*cfg.Partner); err != nil {
			return nil, err
		}
	}
	s.mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	s.mux.HandleFunc("GET /readyz", s.readyz)
	if cfg.Status != nil {
		s.mux.HandleFunc("GET /v1/status", func(w http.ResponseWriter, _ *http.Request) {
			writeJSON(w, http.StatusOK, cfg.Status())
		})
	}
	if cfg.Metrics != nil {
		s.mux.Handle("GET /metrics", cfg.Metrics)
	}
	s.mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, "no such endpoint: "+r.Method+" "+r.URL.Path)
	})
	return s, nil
}

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.mux.ServeHTTP(w, r) }

func (s *Server) readyz(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	ready, err := s.cfg.Ready(ctx)
	switch {
	case err != nil:
		w.Header().Set("Retry-After", "1")
		writeError(w, http.StatusServiceUnavailable, "readiness check failed: "+err.Error())
	case !ready:
		w.Header().Set("Retry-After", "1")
		writeError(w, http.StatusServiceUnavailable, "not ready: stores are catching up with the log")
	default:
		writeJSON(w, http.StatusOK, map[string]any{"ready": true, "version": s.cfg.Versions.Serving()})
	}
}

// read is a handler of a state endpoint, given the version it reads.
type read func(w http.ResponseWriter, r *http.Request, v version)

// version is the topology version a request reads.
type version struct {
	name string
	*Backend
}

// versioned resolves the version a request reads (its version=, or the
// serving one) and hands it to h; an unknown or retired version is 404.
func (s *Server) versioned(h read) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		name := r.URL.Query().Get("version")
		if name == "" {
			name = s.cfg.Versions.Serving()
		}
		b, err := s.cfg.Versions.Backend(name)
		switch {
		case errors.Is(err, ErrStarting):
			unavailable(w, err.Error())
			return
		case err != nil:
			writeError(w, http.StatusNotFound, err.Error())
			return
		}
		h(w, r, version{name: name, Backend: b})
	}
}

// badRequest is a client error whose text is shown to the client.
type badRequest string

func (e badRequest) Error() string { return string(e) }

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	_ = enc.Encode(v)
}

func writeError(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, map[string]string{"error": msg})
}
