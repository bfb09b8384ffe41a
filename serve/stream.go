package serve

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"time"

	"github.com/kappa-stream/kappa/processors/live"
)

// Timing of the live event streams.
const (
	// streamTick is how often a song's windows are read for its streams:
	// an update reaches a viewer at most this long after the windows
	// changed (plus the delivery).
	streamTick = 250 * time.Millisecond
	// streamHeartbeat is the longest a stream stays silent: a comment
	// line keeps proxies from closing it and lets the client notice a
	// dead connection.
	streamHeartbeat = 15 * time.Second
	// streamRetry is the reconnection delay the stream asks clients for.
	streamRetry = 2 * time.Second
	// streamWriteTimeout bounds one write of a frame to a stream.
	streamWriteTimeout = 30 * time.Second
	// streamReadTimeout bounds one read of the windows.
	streamReadTimeout = 5 * time.Second
	// maxFeeds bounds the sets of windows streamed at once (each is read
	// every tick, whatever its viewers): past it, a stream of another
	// set is refused with 503.
	maxFeeds = 4096
)

// hub coalesces the live event streams: all the streams of the same
// windows (version, song, window size, count) share one feed, whose
// goroutine reads the windows once per tick, through the same handler
// as GET /v1/songs/{id}/live (so a song owned by another instance is
// read there), and hands each changed answer to every stream. Ten
// thousand viewers of one song cost one read per tick, not ten
// thousand.
type hub struct {
	// read answers the GET /v1/songs/{id}/live request of a feed.
	read http.HandlerFunc
	tick time.Duration
	// heartbeat is streamHeartbeat (shorter in tests).
	heartbeat time.Duration

	mu    sync.Mutex
	feeds map[streamKey]*feed

	// closing is closed by Server.CloseStreams.
	closing   chan struct{}
	closeOnce sync.Once
}

// streamKey names the windows of a feed.
type streamKey struct {
	version string
	song    int64
	window  string
	last    int
}

func newHub(read http.HandlerFunc, tick time.Duration) *hub {
	return &hub{read: read, tick: tick, heartbeat: streamHeartbeat, feeds: make(map[streamKey]*feed), closing: make(chan struct{})}
}

// CloseStreams ends every live event stream and refuses new ones (503),
// so that a graceful shutdown of the HTTP server (which waits for open
// requests) need not wait for them: register it with
// http.Server.RegisterOnShutdown. Clients reconnect elsewhere or later.
func (s *Server) CloseStreams() {
	s.hub.closeOnce.Do(func() { close(s.hub.closing) })
}

// event is one message of a stream: the answer (or error) of one read.
type event struct {
	// id is the event's id, the Unix time in milliseconds of the read
	// that found the change, increasing within a feed; a client that
	// reconnects with it as Last-Event-ID and is still current gets
	// nothing until the next change.
	id string
	// name is "windows" for an answer, "error" for an error.
	name string
	data []byte
	// frame is the event as sent, encoded once for every stream.
	frame []byte
}

// newEvent is the event of one read, with its frame.
func newEvent(id int64, name string, data []byte) *event {
	ev := &event{id: strconv.FormatInt(id, 10), name: name, data: data}
	ev.frame = make([]byte, 0, len(data)+len(ev.id)+len(name)+24)
	ev.frame = append(ev.frame, "id: "...)
	ev.frame = append(ev.frame, ev.id...)
	ev.frame = append(ev.frame, "\nevent: "...)
	ev.frame = append(ev.frame, name...)
	ev.frame = append(ev.frame, "\ndata: "...)
	ev.frame = append(ev.frame, data...)
	ev.frame = append(ev.frame, "\n\n"...)
	return ev
}

// feed is the shared state of the streams of one set of windows.
type feed struct {
	key  streamKey
	stop chan struct{}
	// done is closed when the feed's goroutine has returned.
	done chan struct{}

	mu sync.Mutex
	// subs are the streams; each channel holds at most the latest
	// event it has not written yet.
	subs map[chan *event]struct{}
	cur  *event // the latest event, nil before the first read
}

// errTooManyFeeds is join's error past maxFeeds.
var errTooManyFeeds = errors.New("serve: too many live windows streamed at once; retry")

// join subscribes a stream to the feed of k, starting the feed when it
// is the first (errTooManyFeeds when there are maxFeeds already). The
// channel receives the current event first unless its id is lastID.
func (h *hub) join(k streamKey, lastID string) (*feed, chan *event, error) {
	ch := make(chan *event, 1)
	h.mu.Lock()
	defer h.mu.Unlock()
	f, ok := h.feeds[k]
	if !ok {
		if len(h.feeds) >= maxFeeds {
			return nil, nil, errTooManyFeeds
		}
		f = &feed{key: k, stop: make(chan struct{}), done: make(chan struct{}), subs: make(map[chan *event]struct{})}
		h.feeds[k] = f
		go h.run(f)
	}
	f.mu.Lock()
	f.subs[ch] = struct{}{}
	if f.cur != nil && f.cur.id != lastID {
		ch <- f.cur
	}
	f.mu.Unlock()
	return f, ch, nil
}

// leave unsubscribes ch; the last stream to leave stops the feed.
func (h *hub) leave(f *feed, ch chan *event) {
	h.mu.Lock()
	defer h.mu.Unlock()
	f.mu.Lock()
	delete(f.subs, ch)
	empty := len(f.subs) == 0
	f.mu.Unlock()
	if empty {
		delete(h.feeds, f.key)
		close(f.stop)
	}
}

// run reads the feed's windows every tick until the feed stops, and
// publishes each answer that differs from the last.
func (h *hub) run(f *feed) {
	defer close(f.done)
	t := time.NewTicker(h.tick)
	defer t.Stop()
	var last []byte
	var lastID int64
	for {
		status, body := h.readOnce(f.key)
		if !bytes.Equal(body, last) {
			last = body
			id := max(time.Now().UnixMilli(), lastID+1)
			lastID = id
			name := "windows"
			if status != http.StatusOK {
				name = "error"
			}
			f.publish(newEvent(id, name, bytes.TrimRight(body, "\n")))
		}
		select {
		case <-f.stop:
			return
		case <-t.C:
		}
	}
}

// publish makes ev the current event and hands it to every stream,
// replacing an event a slow stream has not written yet.
func (f *feed) publish(ev *event) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.cur = ev
	for ch := range f.subs {
		select {
		case ch <- ev:
		default:
			// NB: only publish sends, under f.mu, so after draining the
			// stale event the send cannot block.
			select {
			case <-ch:
			default:
			}
			ch <- ev
		}
	}
}

// readOnce answers the feed's request with the hub's reader.
func (h *hub) readOnce(k streamKey) (int, []byte) {
	ctx, cancel := context.WithTimeout(context.Background(), streamReadTimeout)
	defer cancel()
	id := strconv.FormatInt(k.song, 10)
	q := url.Values{}
	q.Set("version", k.version)
	q.Set("window", k.window)
	q.Set("last", strconv.Itoa(k.last))
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "/v1/songs/"+id+"/live?"+q.Encode(), nil)
	if err != nil {
		return http.StatusInternalServerError, []byte(`{"error":"bad stream request"}`)
	}
	req.SetPathValue("id", id)
	rec := &recorder{header: make(http.Header), status: http.StatusOK}
	h.read(rec, req)
	return rec.status, rec.body.Bytes()
}

// recorder is the http.ResponseWriter of a feed's reads.
type recorder struct {
	header http.Header
	status int
	body   bytes.Buffer
}

func (r *recorder) Header() http.Header         { return r.header }
func (r *recorder) Write(b []byte) (int, error) { return r.body.Write(b) }
func (r *recorder) WriteHeader(status int)      { r.status = status }

// liveEvents serves GET /v1/songs/{id}/live/events?window=&last=: a
// server-sent event stream of the song's windows. Each event named
// "windows" carries the answer GET /v1/songs/{id}/live gives for the
// same parameters, sent when it changes (first at once, unless the
// client's Last-Event-ID is still current); an event named "error"
// carries the error answer while the windows cannot be read; a comment
// line is sent after 15 s of silence.
func (s *Server) liveEvents(w http.ResponseWriter, r *http.Request, v version) {
	if v.live() == nil {
		writeError(w, http.StatusNotFound, "live windows are off in version "+v.name+" (--live-windows off)")
		return
	}
	song, size, last, err := parseLiveQuery(r, v.live())
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	k := streamKey{version: v.name, song: song, window: live.FormatWindow(size), last: last}
	select {
	case <-s.hub.closing:
		unavailable(w, "the server is shutting down")
		return
	default:
	}
	f, ch, err := s.hub.join(k, r.Header.Get("Last-Event-ID"))
	if err != nil {
		unavailable(w, err.Error())
		return
	}
	defer s.hub.leave(f, ch)
	rc := http.NewResponseController(w)
	// NB: a stream outlives the server's WriteTimeout; each write gets a
	// deadline of its own instead, so a client that stopped reading is
	// dropped.
	_ = rc.SetWriteDeadline(time.Now().Add(streamWriteTimeout))
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-cache")
	w.Header().Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	if _, err := w.Write([]byte("retry: " + strconv.FormatInt(streamRetry.Milliseconds(), 10) + "\n\n")); err != nil {
		return
	}
	if err := rc.Flush(); err != nil {
		return
	}

	beat := time.NewTimer(s.hub.heartbeat)
	defer beat.Stop()
	heartbeat := []byte(": heartbeat\n\n")
	for {
		var frame []byte
		select {
		case <-r.Context().Done():
			return
		case <-s.hub.closing:
			return
		case ev := <-ch:
			frame = ev.frame
		case <-beat.C:
			frame = heartbeat
		}
		_ = rc.SetWriteDeadline(time.Now().Add(streamWriteTimeout))
		if _, err := w.Write(frame); err != nil {
			return
		}
		if err := rc.Flush(); err != nil {
			return
		}
		beat.Reset(s.hub.heartbeat)
	}
}
