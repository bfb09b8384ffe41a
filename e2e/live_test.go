package e2e

import (
	"encoding/json"
	"maps"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/kappa-stream/kappa/generate"
)

// liveKey is one song's window, by its start in Unix ms.
type liveKey struct{ song, start int64 }

type liveCount struct {
	plays int64
	users map[int64]bool
}

// liveModel counts the valid lines per song and window of size — what
//
//	SELECT song_id, ts - ts % size, count(*), count(DISTINCT user_id)
//	FROM listens WHERE valid GROUP BY 1, 2
//
// returns — with the e2e parser, not kappa's.
func liveModel(t testing.TB, d *dataset, size time.Duration) map[liveKey]*liveCount {
	t.Helper()
	out := map[liveKey]*liveCount{}
	ms := size.Milliseconds()
	for l, ts := range d.valid(t) {
		at := ts.UnixMilli()
		k := liveKey{l.SongID, at - at%ms}
		c := out[k]
		if c == nil {
			c = &liveCount{users: map[int64]bool{}}
			out[k] = c
		}
		c.plays++
		c.users[l.UserID] = true
	}
	return out
}

// liveAnswer is the body of GET /v1/songs/{id}/live.
type liveAnswer struct {
	SongID    int64   `json:"song_id"`
	Window    string  `json:"window"`
	Watermark *string `json:"watermark"`
	Windows   []struct {
		Start     time.Time `json:"start"`
		End       time.Time `json:"end"`
		Plays     int64     `json:"plays"`
		Listeners int64     `json:"listeners"`
	} `json:"windows"`
}

// liveFinal is a record of kappa.<v>.live-final.
type liveFinal struct {
	SongID    int64     `json:"song_id"`
	Window    string    `json:"window"`
	Start     time.Time `json:"start"`
	End       time.Time `json:"end"`
	Plays     int64     `json:"plays"`
	Listeners int64     `json:"listeners"`
}

// within2 reports whether an estimate of distinct users is within 2%.
func within2(got int64, want int) bool {
	d := float64(got - int64(want))
	return d <= 0.02*float64(want) && -d <= 0.02*float64(want)
}

// checkLiveAnswer compares a song's answer of every kept window with the model:
// windows of the size, newest first and back to back, each with the
// model's plays and listeners within 2% (none for a window the model
// lacks), and covering every window of the model.
func checkLiveAnswer(t testing.TB, a liveAnswer, window string, song int64, m map[liveKey]*liveCount) {
	t.Helper()
	size, err := time.ParseDuration(window)
	if err != nil {
		t.Fatal(err)
	}
	if a.Window != window || a.Watermark == nil || len(a.Windows) == 0 {
		t.Fatalf("song %d: %d windows of %q, watermark %v; want %q windows and a watermark", song, len(a.Windows), a.Window, a.Watermark, window)
	}
	played := 0
	for i, w := range a.Windows {
		if w.End.Sub(w.Start) != size || (i > 0 && !w.End.Equal(a.Windows[i-1].Start)) {
			t.Fatalf("song %d: window %d is %s–%s, not the %s before the one before", song, i, w.Start, w.End, window)
		}
		want := m[liveKey{song, w.Start.UnixMilli()}]
		if want == nil {
			want = &liveCount{}
		} else {
			played++
		}
		if w.Plays != want.plays || !within2(w.Listeners, len(want.users)) {
			t.Errorf("song %d %s window %s: %d plays %d listeners; want %d plays, %d listeners ± 2%%",
				song, window, w.Start, w.Plays, w.Listeners, want.plays, len(want.users))
		}
	}
	inModel := 0
	for k := range m {
		if k.song == song {
			inModel++
		}
	}
	if played != inModel {
		t.Errorf("song %d: %d %s windows with plays in the answer, %d in the model", song, played, window, inModel)
	}
}

// TestLiveDrop produces a stream with a live drop (5,000 users start a
// new song within one minute, over normal traffic) into `kappa up` with
// 1-minute and 1-hour windows, and checks the live answers of every song
// and the final windows on kappa.v1.live-final against counts made here:
// plays exact, listeners within 2%, every closed window emitted once.
// The grace (15 min) is above the generator's largest lateness (10 min),
// so no listen is late.
func TestLiveDrop(t *testing.T) {
	const n = 60_000
	cfg := testConfig(n)
	cfg.Span = 6 * time.Hour
	g, err := generate.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	drop, ok := g.Drop()
	if !ok {
		t.Fatal("the dataset has no live drop")
	}
	d := generateDataset(t, cfg)
	kafka, httpAddr := freeAddr(t), freeAddr(t)
	startKappa(t, "up.log", "up", "--data", t.TempDir(), "--kafka-addr", kafka, "--http", httpAddr,
		"--live-windows", "1m,1h", "--live-grace", "15m")
	waitReady(t, httpAddr)
	produceWithKappa(t, kafka, d.writeLines(t, "listens.jsonl", 0, n, false))
	waitCaughtUp(t, kafka, n, 2*time.Minute, httpAddr)
	c := newClient(httpAddr)
	const grace = 15 * time.Minute
	if late, err := metricSum(httpAddr, "kappa_live_late_total"); err != nil || late != 0 {
		t.Fatalf("%g listens late for their live window (err %v); want none within the grace", late, err)
	}

	// The drop song, minute by minute.
	minutes := liveModel(t, d, time.Minute)
	var a liveAnswer
	if _, err := c.getJSON("/v1/songs/"+itoa(drop.SongID)+"/live?window=1m&last=1000", &a); err != nil {
		t.Fatal(err)
	}
	checkLiveAnswer(t, a, "1m", drop.SongID, minutes)
	dropMinute := minutes[liveKey{drop.SongID, drop.Window.UnixMilli()}]
	if dropMinute == nil || dropMinute.plays != int64(drop.Listeners) || len(dropMinute.users) != drop.Listeners {
		t.Fatalf("the model's drop minute %+v, want %d plays by as many users", dropMinute, drop.Listeners)
	}
	t.Logf("drop song %d: its minute %s has %d plays", drop.SongID, drop.Window.Format(time.TimeOnly), dropMinute.plays)

	// Every song, hour by hour; the watermark of each song's partition
	// says which windows must have closed.
	hours := liveModel(t, d, time.Hour)
	bySong := map[int64]bool{}
	for k := range hours {
		bySong[k.song] = true
	}
	closed := map[string]map[liveKey]bool{"1m": {}, "1h": {}}
	for _, song := range slices.Sorted(maps.Keys(bySong)) {
		var a liveAnswer
		if _, err := c.getJSON("/v1/songs/"+itoa(song)+"/live?window=1h&last=49", &a); err != nil {
			t.Fatal(err)
		}
		checkLiveAnswer(t, a, "1h", song, hours)
		wm, err := time.Parse(time.RFC3339Nano, *a.Watermark)
		if err != nil {
			t.Fatal(err)
		}
		for size, m := range map[string]map[liveKey]*liveCount{"1m": minutes, "1h": hours} {
			step := time.Minute
			if size == "1h" {
				step = time.Hour
			}
			for k := range m {
				if k.song == song && !time.UnixMilli(k.start).Add(step+grace).After(wm) {
					closed[size][k] = true
				}
			}
		}
	}

	// The final windows: each closed one exactly once, with its counts.
	seen := map[string]map[liveKey]bool{"1m": {}, "1h": {}}
	for _, rec := range readCommitted(t, kafka, "kappa.v1.live-final") {
		var f liveFinal
		if err := json.Unmarshal(rec.Value, &f); err != nil {
			t.Fatalf("final record %s: %v", rec.Value, err)
		}
		if string(rec.Key) != strconv.FormatInt(f.SongID, 10) {
			t.Fatalf("final record with key %q for song %d", rec.Key, f.SongID)
		}
		k := liveKey{f.SongID, f.Start.UnixMilli()}
		m := minutes
		if f.Window == "1h" {
			m = hours
		}
		if seen[f.Window][k] {
			t.Fatalf("final %s window %s of song %d emitted twice", f.Window, f.Start, f.SongID)
		}
		seen[f.Window][k] = true
		want := m[k]
		if want == nil || f.Plays != want.plays || !within2(f.Listeners, len(want.users)) {
			t.Errorf("final %s window %s of song %d: %d plays %d listeners; want %+v", f.Window, f.Start, f.SongID, f.Plays, f.Listeners, want)
		}
	}
	for size, ks := range closed {
		missing := 0
		for k := range ks {
			if !seen[size][k] {
				missing++
			}
		}
		if missing > 0 || len(ks) == 0 {
			t.Errorf("%s windows: %d closed by the watermark, %d of them not emitted", size, len(ks), missing)
		}
		t.Logf("%s windows: %d closed and emitted, %d emitted in all", size, len(ks), len(seen[size]))
	}
}
