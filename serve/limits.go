package serve

import (
	"fmt"
	"log/slog"
	"net/http"
	"runtime/debug"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
)

// Limits bound what the HTTP server holds at once. Zero fields take the
// defaults.
type Limits struct {
	// MaxStreams is the most live event streams open at once (default
	// 20,000); they do not count in MaxConcurrent.
	MaxStreams int
	// MaxConcurrent is the most requests handled at once (default 512);
	// past it the answer is 429 with Retry-After. /healthz and /readyz
	// are not counted: a probe must answer under any load.
	MaxConcurrent int
	// MaxIngestBytes is the most bytes of POST /v1/listens bodies in
	// flight (default 64 MiB): a body counts with its Content-Length, or
	// the 16 MiB maximum when it has none; past it the answer is 429.
	MaxIngestBytes int64
	// RetryAfter is the Retry-After of a 429 (default 1 s).
	RetryAfter time.Duration
	// ReadTimeout bounds reading a request, body included (default 60 s:
	// a 16 MiB body at 300 KiB/s); WriteTimeout writing the answer
	// (default 60 s); IdleTimeout a kept-alive connection's wait for its
	// next request (default 120 s); ReadHeaderTimeout the headers
	// (default 10 s).
	ReadTimeout, WriteTimeout, IdleTimeout, ReadHeaderTimeout time.Duration
	// MaxHeaderBytes bounds the request headers (default 64 KiB).
	MaxHeaderBytes int
}

func (l *Limits) setDefaults() {
	if l.MaxConcurrent <= 0 {
		l.MaxConcurrent = 512
	}
	if l.MaxStreams <= 0 {
		l.MaxStreams = 20_000
	}
	if l.MaxIngestBytes <= 0 {
		l.MaxIngestBytes = 64 << 20
	}
	if l.RetryAfter <= 0 {
		l.RetryAfter = time.Second
	}
	for _, d := range []struct {
		p   *time.Duration
		def time.Duration
	}{{&l.ReadTimeout, time.Minute}, {&l.WriteTimeout, time.Minute}, {&l.IdleTimeout, 2 * time.Minute}, {&l.ReadHeaderTimeout, 10 * time.Second}} {
		if *d.p <= 0 {
			*d.p = d.def
		}
	}
	if l.MaxHeaderBytes <= 0 {
		l.MaxHeaderBytes = 64 << 10
	}
}

// NewHTTPServer is the http.Server of the API: h behind Protect, with
// the timeouts and header limit of lim.
func NewHTTPServer(h http.Handler, lim Limits, logger *slog.Logger) *http.Server {
	lim.setDefaults()
	return &http.Server{
		Handler:           Protect(h, lim, logger),
		ReadTimeout:       lim.ReadTimeout,
		WriteTimeout:      lim.WriteTimeout,
		IdleTimeout:       lim.IdleTimeout,
		ReadHeaderTimeout: lim.ReadHeaderTimeout,
		MaxHeaderBytes:    lim.MaxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
	}
}

// Protect wraps h: at most lim.MaxConcurrent requests at once and
// lim.MaxIngestBytes of ingest bodies in flight (429 with Retry-After
// past them), and a panic answers 500 with a log line (the method and
// route pattern, never the path's ids) instead of crashing the process.
func Protect(h http.Handler, lim Limits, logger *slog.Logger) http.Handler {
	lim.setDefaults()
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	p := &protect{h: h, lim: lim, logger: logger, slots: make(chan struct{}, lim.MaxConcurrent),
		retryAfter: strconv.Itoa(max(int(lim.RetryAfter/time.Second), 1))}
	return p
}

type protect struct {
	h          http.Handler
	lim        Limits
	logger     *slog.Logger
	slots      chan struct{}
	ingest     atomic.Int64
	streams    atomic.Int64
	retryAfter string
}

// isStream reports whether r asks for a song's live event stream.
func isStream(r *http.Request) bool {
	return r.Method == http.MethodGet && strings.HasSuffix(r.URL.Path, "/live/events")
}

func (p *protect) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	defer func() {
		if v := recover(); v != nil {
			if v == http.ErrAbortHandler {
				panic(v)
			}
			p.logger.Error("http handler panicked", "method", r.Method, "route", r.Pattern,
				"panic", fmt.Sprint(v), "stack", string(debug.Stack()))
			writeError(w, http.StatusInternalServerError, "internal error")
		}
	}()
	if r.URL.Path == "/healthz" || r.URL.Path == "/readyz" {
		p.h.ServeHTTP(w, r)
		return
	}
	if isStream(r) {
		// NB: an event stream lasts as long as its page is open and
		// costs a write of a frame the hub encoded once per tick, so
		// streams have a bound of their own instead of a slot each.
		if p.streams.Add(1) > int64(p.lim.MaxStreams) {
			p.streams.Add(-1)
			p.busy(w, "too many event streams open")
			return
		}
		defer p.streams.Add(-1)
		p.h.ServeHTTP(w, r)
		return
	}
	select {
	case p.slots <- struct{}{}:
		defer func() { <-p.slots }()
	default:
		p.busy(w, "too many requests at once")
		return
	}
	if r.Method == http.MethodPost && r.URL.Path == "/v1/listens" {
		n := r.ContentLength
		if n < 0 || n > maxIngestBody {
			n = maxIngestBody
		}
		if p.ingest.Add(n) > p.lim.MaxIngestBytes {
			p.ingest.Add(-n)
			p.busy(w, "too many listens in flight")
			return
		}
		defer p.ingest.Add(-n)
	}
	p.h.ServeHTTP(w, r)
}

func (p *protect) busy(w http.ResponseWriter, why string) {
	w.Header().Set("Retry-After", p.retryAfter)
	writeError(w, http.StatusTooManyRequests, why+"; retry")
}
