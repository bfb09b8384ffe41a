package serve

import (
	"bufio"
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kappa-stream/kappa/processors"
	"github.com/kappa-stream/kappa/processors/live"
)

// sseEvent is one parsed server-sent event.
type sseEvent struct{ id, name, data string }

// readEvents parses the events of an SSE body into ch until it ends.
func readEvents(body *bufio.Reader, ch chan<- sseEvent) {
	defer close(ch)
	var ev sseEvent
	for {
		line, err := body.ReadString('\n')
		if err != nil {
			return
		}
		line = strings.TrimSuffix(line, "\n")
		switch {
		case strings.HasPrefix(line, ":"):
			ch <- sseEvent{name: "comment", data: strings.TrimSpace(line[1:])}
		case line == "":
			if ev.name != "" || ev.data != "" {
				ch <- ev
			}
			ev = sseEvent{}
		case strings.HasPrefix(line, "id: "):
			ev.id = line[4:]
		case strings.HasPrefix(line, "event: "):
			ev.name = line[7:]
		case strings.HasPrefix(line, "data: "):
			ev.data = line[6:]
		}
	}
}

// openStream opens an event stream and returns its events.
func openStream(t *testing.T, url, lastID string) <-chan sseEvent {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if lastID != "" {
		req.Header.Set("Last-Event-ID", lastID)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "text/event-stream" {
		cancel()
		t.Fatalf("%s: %d %s", url, resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	ch := make(chan sseEvent, 64)
	go readEvents(bufio.NewReader(resp.Body), ch)
	t.Cleanup(func() {
		cancel()
		resp.Body.Close()
		for range ch {
		}
	})
	return ch
}

func next(t *testing.T, ch <-chan sseEvent) sseEvent {
	t.Helper()
	select {
	case ev, ok := <-ch:
		if !ok {
			t.Fatal("the stream ended")
		}
		return ev
	case <-time.After(10 * time.Second):
		t.Fatal("no event within 10 s")
	}
	return sseEvent{}
}

// TestLiveEvents checks the stream against GET /v1/songs/{id}/live: the
// first event is its answer for the same parameters.
func TestLiveEvents(t *testing.T) {
	o := live.Spec.Options().(*live.Options)
	o.Windows = live.Windows{time.Minute, time.Hour}
	p, err := o.New(processors.Env{Partitions: 1})
	if err != nil {
		t.Fatal(err)
	}
	srv := newVersionsServer(t, fixedVersions{"v1", map[string]*Backend{
		"v1": {Rollups: &fakePlacement{store: newStore(t)}, Processors: map[string]processors.Processor{live.Spec.Name: p}},
		"v2": {Rollups: &fakePlacement{store: newStore(t)}},
	}}, &fakeLog{})
	srv.hub.heartbeat = 20 * time.Millisecond
	ts := httptest.NewServer(srv)
	// NB: Close waits for the streams, which their own cleanups (run
	// before this one) end.
	t.Cleanup(ts.Close)

	for target, want := range map[string]int{
		"/v1/songs/7/live/events?version=v2":       404,
		"/v1/songs/0/live/events":                  400,
		"/v1/songs/7/live/events?window=5m":        400,
		"/v1/songs/7/live/events?last=0":           400,
		"/v1/songs/7/live/events?version=nonesuch": 404,
	} {
		if status, _ := do(t, srv, http.MethodGet, target, ""); status != want {
			t.Errorf("%s: %d, want %d", target, status, want)
		}
	}

	_, want := do(t, srv, http.MethodGet, "/v1/songs/7/live?window=1h&last=3", "")
	stream := openStream(t, ts.URL+"/v1/songs/7/live/events?window=1h&last=3", "")
	ev := next(t, stream)
	for ev.name == "comment" {
		ev = next(t, stream)
	}
	if ev.name != "windows" || ev.data != want || ev.id == "" {
		t.Fatalf("first event %+v, want windows with %s", ev, want)
	}

	// Silence is broken by a heartbeat comment.
	quiet := openStream(t, ts.URL+"/v1/songs/7/live/events?window=1h&last=3", ev.id)
	if ev := next(t, quiet); ev.name != "comment" || ev.data != "heartbeat" {
		t.Fatalf("a stream with the current Last-Event-ID got %+v first, want a heartbeat", ev)
	}

	// CloseStreams ends the open stream and refuses new ones.
	srv.CloseStreams()
	for deadline := time.After(10 * time.Second); ; {
		select {
		case ev, ok := <-stream:
			if !ok {
				break
			}
			if ev.name != "comment" {
				t.Fatalf("after CloseStreams: %+v, want the stream to end", ev)
			}
			continue
		case <-deadline:
			t.Fatal("the stream is still open 10 s after CloseStreams")
		}
		break
	}
	if status, _ := do(t, srv, http.MethodGet, "/v1/songs/7/live/events", ""); status != http.StatusServiceUnavailable {
		t.Fatalf("a new stream after CloseStreams: %d, want 503", status)
	}
}

// TestHubCoalesces runs many streams of the same windows and of another
// song against a reader whose answer changes: each feed is read once per
// tick whatever its streams, and every stream gets every change in order.
func TestHubCoalesces(t *testing.T) {
	var reads sync.Map // song → *atomic.Int64
	var version atomic.Int64
	read := func(w http.ResponseWriter, r *http.Request) {
		n, _ := reads.LoadOrStore(r.PathValue("id"), new(atomic.Int64))
		n.(*atomic.Int64).Add(1)
		writeJSON(w, 200, map[string]any{"song": r.PathValue("id"), "v": version.Load(), "q": r.URL.RawQuery})
	}
	h := newHub(read, 10*time.Millisecond)
	k7 := streamKey{version: "v1", song: 7, window: "1m", last: 60}
	k8 := streamKey{version: "v1", song: 8, window: "1m", last: 60}

	const streams = 50
	type sub struct {
		f  *feed
		ch chan *event
	}
	var subs []sub
	for i := range streams {
		k := k7
		if i%10 == 0 {
			k = k8
		}
		f, ch, err := h.join(k, "")
		if err != nil {
			t.Fatal(err)
		}
		subs = append(subs, sub{f, ch})
	}
	if len(h.feeds) != 2 {
		t.Fatalf("%d feeds for 2 sets of windows", len(h.feeds))
	}
	// Each stream sees versions 0..3 in order (a slow stream may skip
	// one, these read at once and must not).
	for v := int64(0); v < 4; v++ {
		want := `"v":` + strconv.FormatInt(v, 10)
		for i, s := range subs {
			for {
				select {
				case ev := <-s.ch:
					if !strings.Contains(string(ev.data), want) {
						if strings.Contains(string(ev.data), `"v":`+strconv.FormatInt(v-1, 10)) {
							continue
						}
						t.Fatalf("stream %d: %s, want %s", i, ev.data, want)
					}
				case <-time.After(10 * time.Second):
					t.Fatalf("stream %d: no event with %s", i, want)
				}
				break
			}
		}
		version.Add(1)
	}
	// The feeds read at their tick, not per stream: at most one read per
	// tick elapsed (plus the first), whatever the 45 streams of song 7.
	for _, s := range subs {
		h.leave(s.f, s.ch)
	}
	for _, s := range subs[:1] {
		<-s.f.done
	}
	if len(h.feeds) != 0 {
		t.Fatalf("%d feeds left after every stream left", len(h.feeds))
	}
	n7, _ := reads.Load("7")
	n8, _ := reads.Load("8")
	if a, b := n7.(*atomic.Int64).Load(), n8.(*atomic.Int64).Load(); a > 3*b+10 || b > 3*a+10 {
		t.Fatalf("song 7 (45 streams) read %d times, song 8 (5 streams) %d: the reads depend on the streams", a, b)
	}
}

// TestHubLastEventID: a stream that reconnects with the current event's
// id gets nothing until the next change; with an older id, the current
// event at once.
func TestHubLastEventID(t *testing.T) {
	var version atomic.Int64
	h := newHub(func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, 200, map[string]int64{"v": version.Load()})
	}, 5*time.Millisecond)
	k := streamKey{version: "v1", song: 7, window: "1m", last: 10}
	_, first, _ := h.join(k, "")
	cur := <-first
	_, same, _ := h.join(k, cur.id)
	_, older, _ := h.join(k, "1")
	select {
	case ev := <-older:
		if ev.id != cur.id {
			t.Fatalf("older id got %s, want the current %s", ev.id, cur.id)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("a stream with an old Last-Event-ID got nothing")
	}
	select {
	case ev := <-same:
		t.Fatalf("a current stream got %+v before any change", ev)
	default:
	}
	version.Add(1)
	select {
	case ev := <-same:
		if ev.id <= cur.id || string(ev.data) != `{"v":1}` {
			t.Fatalf("after the change: %+v (previous id %s)", ev, cur.id)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no event after the change")
	}
}

// TestHubFeedLimit: past maxFeeds sets of windows, a new set is refused;
// a stream of a set already streamed still joins.
func TestHubFeedLimit(t *testing.T) {
	h := newHub(func(w http.ResponseWriter, _ *http.Request) { writeJSON(w, 200, "x") }, time.Hour)
	type joined struct {
		f  *feed
		ch chan *event
	}
	var all []joined
	for i := range maxFeeds {
		f, ch, err := h.join(streamKey{version: "v1", song: int64(i + 1), window: "1m", last: 1}, "")
		if err != nil {
			t.Fatalf("feed %d: %v", i+1, err)
		}
		all = append(all, joined{f, ch})
	}
	if _, _, err := h.join(streamKey{version: "v1", song: maxFeeds + 1, window: "1m", last: 1}, ""); !errors.Is(err, errTooManyFeeds) {
		t.Fatalf("feed %d: %v, want errTooManyFeeds", maxFeeds+1, err)
	}
	f, ch, err := h.join(streamKey{version: "v1", song: 1, window: "1m", last: 1}, "")
	if err != nil {
		t.Fatalf("a second stream of feed 1: %v", err)
	}
	all = append(all, joined{f, ch})
	for _, j := range all {
		h.leave(j.f, j.ch)
	}
	if len(h.feeds) != 0 {
		t.Fatalf("%d feeds left", len(h.feeds))
	}
}
