package e2e

import (
	"cmp"
	"encoding/json"
	"fmt"
	"maps"
	"math"
	"math/rand/v2"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// oddConfig shapes a dataset unlike the generator's (package generate),
// made here so that nothing in kappa shaped it: plays arrive as synced
// offline plays do.
type oddConfig struct {
	seed     uint64
	users    int
	artists  int
	clusters int // taste clusters, each a pool of poolSize artists
	poolSize int
	taste    float64 // the chance a play is of the user's cluster's pool
	events   int
	start    time.Time
	span     time.Duration // of the arrival clock
	disorder time.Duration // plays come up to this much older than the clock, in random order
	burst    time.Duration // the first tenth of the plays: times uniform over the first burst, in random order
	offline  float64       // the chance a play starts an offline batch: 10–40 plays of 1–4 days before
}

// oddDataset makes the lines of cfg, in log order: a burst in random
// order, then a clock moving through the span with plays out of order by
// up to disorder and offline batches arriving days late; users play
// their cluster's artists with chance taste, else artists of a skewed
// global popularity (weak taste clusters), from homes spread over a
// 10°×20° box (each user a cell of their own at fine resolutions). Times
// are Unix ms or RFC 3339 with milliseconds, in turn.
func oddDataset(t testing.TB, cfg oddConfig) *dataset {
	t.Helper()
	rng := rand.New(rand.NewPCG(cfg.seed, cfg.seed^0x0dd))
	pools := make([][]int64, cfg.clusters)
	for c := range pools {
		for range cfg.poolSize {
			pools[c] = append(pools[c], 1+rng.Int64N(int64(cfg.artists)))
		}
	}
	cluster := make([]int, cfg.users+1)
	homes := make([][2]float64, cfg.users+1)
	for u := range cluster {
		cluster[u] = rng.IntN(cfg.clusters)
		homes[u] = [2]float64{40 + 10*rng.Float64(), 20 * rng.Float64()}
	}
	d := &dataset{model: newModel()}
	t0, span := cfg.start.UnixMilli(), cfg.span.Milliseconds()
	add := func(user, ts int64) {
		artist := 1 + int64(float64(cfg.artists)*math.Pow(rng.Float64(), 2.5))
		if rng.Float64() < cfg.taste {
			p := pools[cluster[user]]
			artist = p[rng.IntN(len(p))]
		}
		song := artist*16 + 1 + rng.Int64N(16)
		tsJSON := strconv.FormatInt(ts, 10)
		if len(d.lines)%2 == 1 {
			tsJSON = `"` + time.UnixMilli(ts).UTC().Format("2006-01-02T15:04:05.000Z07:00") + `"`
		}
		line := fmt.Appendf(nil, `{"user_id":%d,"song_id":%d,"artist_id":%d,"ts":%s,"ms_played":%d,"lat":%.6f,"lng":%.6f}`,
			user, song, artist, tsJSON, rng.Int64N(240_000), homes[user][0], homes[user][1])
		d.lines = append(d.lines, line)
		d.keys = append(d.keys, strconv.AppendInt(nil, user, 10))
		d.bad = append(d.bad, false)
		if err := d.model.add(line); err != nil {
			t.Fatal(err)
		}
	}
	for len(d.lines) < cfg.events/10 {
		add(1+rng.Int64N(int64(cfg.users)), t0+rng.Int64N(cfg.burst.Milliseconds()))
	}
	for len(d.lines) < cfg.events {
		clock := t0 + cfg.burst.Milliseconds() + span*int64(len(d.lines))/int64(cfg.events)
		user := 1 + rng.Int64N(int64(cfg.users))
		if rng.Float64() < cfg.offline {
			back := clock - (24 * time.Hour).Milliseconds() - rng.Int64N((72 * time.Hour).Milliseconds())
			for k := range int64(10 + rng.IntN(31)) {
				if len(d.lines) < cfg.events {
					add(user, back+k*(3*time.Minute).Milliseconds())
				}
			}
			continue
		}
		add(user, clock-rng.Int64N(cfg.disorder.Milliseconds()))
	}
	return d
}

// oddTestConfig is TestOddData's dataset.
func oddTestConfig() oddConfig {
	return oddConfig{
		seed: 25, users: 6_000, artists: 3_000, clusters: 80, poolSize: 20, taste: 0.75,
		events: 150_000, start: time.Date(2026, 4, 1, 0, 0, 0, 0, time.UTC), span: 5 * 24 * time.Hour,
		disorder: 12 * time.Minute, burst: 2 * time.Hour, offline: 0.002,
	}
}

// liveOracle is what the live windows of one size must be: the lateness
// rule applied to the log as it is in Kafka (each partition's records in
// offset order, parsed here), independently of kappa.
type liveOracle struct {
	on   map[liveKey]*liveCount // on-time plays and users per song window
	late int                    // listens late for their window
	// final is the least stream time over the partitions at the end: the
	// windows ending at or before final − grace are closed.
	final int64
}

// newLiveOracle applies the rule to the records of listens (every
// partition's, in offset order within it): a listen counts in its window
// when the largest event time read before it in its partition is below
// the window's end plus grace.
func newLiveOracle(t testing.TB, recs []liveRecord, size, grace time.Duration, partitions int) liveOracle {
	t.Helper()
	o := liveOracle{on: map[liveKey]*liveCount{}, final: math.MaxInt64}
	stream := map[int32]int64{}
	ms, g := size.Milliseconds(), grace.Milliseconds()
	for _, r := range recs {
		st, seen := stream[r.partition]
		start := r.ts - r.ts%ms
		if seen && st >= start+ms+g {
			o.late++
		} else {
			k := liveKey{r.song, start}
			c := o.on[k]
			if c == nil {
				c = &liveCount{users: map[int64]bool{}}
				o.on[k] = c
			}
			c.plays++
			c.users[r.user] = true
		}
		if !seen || r.ts > st {
			stream[r.partition] = r.ts
		}
	}
	if len(stream) != partitions {
		t.Fatalf("listens in %d partitions of %d: a window would never close", len(stream), partitions)
	}
	for _, st := range stream {
		o.final = min(o.final, st)
	}
	return o
}

// liveRecord is a listen as the log holds it.
type liveRecord struct {
	partition      int32
	user, song, ts int64
}

// readListens reads the listens topic back, each partition in offset
// order, parsing the records here.
func readListens(t testing.TB, kafka string) []liveRecord {
	t.Helper()
	var out []liveRecord
	for _, r := range readCommitted(t, kafka, "listens") {
		l, ts, err := parseRaw(r.Value)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, liveRecord{partition: r.Partition, user: l.UserID, song: l.SongID, ts: ts.UnixMilli()})
	}
	return out
}

// finalsOf reads a version's final windows by size and window; a window
// emitted twice fails the test.
func finalsOf(t testing.TB, kafka, version string) map[string]map[liveKey]liveFinal {
	t.Helper()
	out := map[string]map[liveKey]liveFinal{}
	for _, rec := range readCommitted(t, kafka, "kappa."+version+".live-final") {
		var f liveFinal
		if err := json.Unmarshal(rec.Value, &f); err != nil {
			t.Fatalf("final record %s: %v", rec.Value, err)
		}
		if out[f.Window] == nil {
			out[f.Window] = map[liveKey]liveFinal{}
		}
		k := liveKey{f.SongID, f.Start.UnixMilli()}
		if _, dup := out[f.Window][k]; dup {
			t.Fatalf("%s: final %s window %s of song %d emitted twice", version, f.Window, f.Start, f.SongID)
		}
		out[f.Window][k] = f
	}
	return out
}

// checkFinals compares a version's final windows of one size with the
// oracle: exactly the closed windows that have on-time plays, each with
// its plays exact and its listeners within 2%.
func checkFinals(t testing.TB, version, window string, got map[liveKey]liveFinal, o liveOracle, size, grace time.Duration) {
	t.Helper()
	closed, wrong := 0, 0
	for k, c := range o.on {
		if k.start+size.Milliseconds()+grace.Milliseconds() > o.final {
			continue
		}
		closed++
		f, ok := got[k]
		if !ok || f.Plays != c.plays || !within2(f.Listeners, len(c.users)) {
			if wrong++; wrong <= 3 {
				t.Errorf("%s: final %s window %d of song %d: %+v (emitted %t); want %d plays, %d listeners",
					version, window, k.start, k.song, f, ok, c.plays, len(c.users))
			}
		}
	}
	if wrong > 0 || len(got) != closed || closed == 0 {
		t.Errorf("%s: %d final %s windows, %d closed by the rule, %d of them wrong or missing", version, len(got), window, closed, wrong)
	}
}

// TestOddData runs `kappa up` with live windows and similar users over a
// dataset unlike the generator's (oddDataset: random arrival order within
// a 2-hour burst, plays out of order by up to 12 minutes, offline batches
// days late; 6,000 users in weak taste clusters, whose 10th neighbour
// sits at Jaccard 0.26–0.40), then replays the log into v2 and cuts over:
//
//   - live windows: the final windows of v1, and the late metric, equal
//     an oracle that applies the lateness rule to the log as Kafka holds
//     it; the newest windows of the most played songs equal it too; v2's
//     finals and answers equal v1's (a replay gives the same windows);
//   - similar users: scores are the exact Jaccard of the artist sets and
//     recall@10 against brute force, ties counted, is at least 0.97;
//   - fan zones: pages that follow next list every zone of the busiest
//     artist once, in the model's order.
func TestOddData(t *testing.T) {
	const grace = 10 * time.Minute
	sizes := map[string]time.Duration{"1m": time.Minute, "1h": time.Hour}
	d := oddDataset(t, oddTestConfig())
	kafka, httpAddr := freeAddr(t), freeAddr(t)
	startKappa(t, "up.log", "up", "--data", t.TempDir(), "--kafka-addr", kafka, "--http", httpAddr,
		"--live-windows", "1m,1h", "--live-grace", grace.String(), "--similar", "--similar-delay", "1s", "--fan-zones")
	waitReady(t, httpAddr)
	n := int64(len(d.lines))
	produceWithKappa(t, kafka, d.writeLines(t, "odd.jsonl", 0, int(n), false))
	waitCaughtUp(t, kafka, n, 3*time.Minute, httpAddr)
	waitNonePending(t, "v1", 2*time.Minute, []string{httpAddr})

	recs := readListens(t, kafka)
	if int64(len(recs)) != n {
		t.Fatalf("listens holds %d records, %d produced", len(recs), n)
	}
	oracles, late := map[string]liveOracle{}, 0
	for w, size := range sizes {
		oracles[w] = newLiveOracle(t, recs, size, grace, listensPartitions)
		late += oracles[w].late
		t.Logf("%s windows: %d of %d listens late by the rule, %d windows on time", w, oracles[w].late, n, len(oracles[w].on))
	}
	if oracles["1m"].late < int(n)/50 {
		t.Fatalf("only %d listens late for their minute: the data does not test lateness", oracles["1m"].late)
	}
	if got, err := metricSum(httpAddr, "kappa_live_late_total"); err != nil || got != float64(late) {
		t.Errorf("late metric %g (err %v), want %d", got, err, late)
	}
	v1 := finalsOf(t, kafka, "v1")
	for w, size := range sizes {
		checkFinals(t, "v1", w, v1[w], oracles[w], size, grace)
	}
	songs := map[int64]int64{}
	for k, c := range oracles["1h"].on {
		songs[k.song] += c.plays
	}
	top := slices.SortedFunc(maps.Keys(songs), func(a, b int64) int { return int(songs[b] - songs[a]) })[:5]
	answers := map[int64]liveAnswer{}
	c := newClient(httpAddr)
	for _, song := range top {
		var a liveAnswer
		if _, err := c.getJSON("/v1/songs/"+itoa(song)+"/live?window=1m&last=2881", &a); err != nil {
			t.Fatal(err)
		}
		if len(a.Windows) < 2_000 {
			t.Fatalf("song %d: %d windows of 1m, want the retention's 2,881 or about", song, len(a.Windows))
		}
		for _, w := range a.Windows {
			want := oracles["1m"].on[liveKey{song, w.Start.UnixMilli()}]
			if want == nil {
				want = &liveCount{}
			}
			if w.Plays != want.plays || !within2(w.Listeners, len(want.users)) {
				t.Errorf("song %d window %s: %d plays %d listeners, want %d and %d", song, w.Start, w.Plays, w.Listeners, want.plays, len(want.users))
			}
		}
		answers[song] = a
	}
	if status, err := c.getJSON("/v1/songs/1/live?window=1m&last=2882", &struct{}{}); status != 400 {
		t.Errorf("last=2882 of 1m windows kept 48 h: status %d (%v), want 400", status, err)
	}

	checkOddSimilar(t, c, d)
	checkZonePages(t, c, d)

	out := runKappa(t, 5*time.Minute, "replay", "--brokers", kafka, "--from", "earliest", "--cutover")
	t.Logf("replay: %s", out)
	waitVersionCaughtUp(t, kafka, "v2", n, 3*time.Minute, httpAddr)
	v2 := finalsOf(t, kafka, "v2")
	for w := range sizes {
		if !maps.Equal(v1[w], v2[w]) {
			t.Errorf("%s: v2 emitted %d final windows, v1 %d; not the same", w, len(v2[w]), len(v1[w]))
		}
	}
	for _, song := range top {
		var a liveAnswer
		if _, err := c.version("v2").getJSON("/v1/songs/"+itoa(song)+"/live?window=1m&last=2881", &a); err != nil {
			t.Fatal(err)
		}
		if a.Watermark == nil || *a.Watermark != *answers[song].Watermark || fmt.Sprint(a.Windows) != fmt.Sprint(answers[song].Windows) {
			t.Errorf("song %d: v2's 1m windows differ from v1's", song)
		}
	}
}

// checkZonePages lists the fan zones of the artist with the most at
// resolution 9 in pages of 97, following each answer's next, and
// compares them with the model's: every zone once, in order (fans
// descending, then cell).
func checkZonePages(t testing.TB, c *client, d *dataset) {
	t.Helper()
	type zone struct {
		Cell string `json:"cell"`
		Fans int64  `json:"fans"`
	}
	byArtist := map[int64][]zone{}
	for k, n := range fanModel(t, d, 1) {
		if k.res == 9 {
			byArtist[k.artist] = append(byArtist[k.artist], zone{k.cell, n})
		}
	}
	artist := slices.MaxFunc(slices.Collect(maps.Keys(byArtist)), func(a, b int64) int {
		return cmp.Or(cmp.Compare(len(byArtist[a]), len(byArtist[b])), cmp.Compare(b, a))
	})
	want := byArtist[artist]
	slices.SortFunc(want, func(a, b zone) int { return cmp.Or(cmp.Compare(b.Fans, a.Fans), strings.Compare(a.Cell, b.Cell)) })
	var got []zone
	cursor, pages := "", 0
	for {
		var a struct {
			Zones []zone `json:"zones"`
			Next  string `json:"next"`
		}
		path := "/v1/artists/" + itoa(artist) + "/fan-zones?res=9&limit=97"
		if cursor != "" {
			path += "&cursor=" + url.QueryEscape(cursor)
		}
		if _, err := c.getJSON(path, &a); err != nil {
			t.Fatal(err)
		}
		got, pages = append(got, a.Zones...), pages+1
		if a.Next == "" || pages > len(want) {
			break
		}
		cursor = a.Next
	}
	if pages < 2 || !slices.Equal(got, want) {
		t.Errorf("artist %d: %d pages list %d zones; the model has %d (want several pages), first difference at %d",
			artist, pages, len(got), len(want), firstDiff(got, want))
	}
	t.Logf("fan zones of artist %d at res 9: %d pages of up to 97 list all %d", artist, pages, len(want))
	var bad struct{}
	if status, _ := c.getJSON("/v1/artists/"+itoa(artist)+"/fan-zones?res=9&cursor=nope", &bad); status != 400 {
		t.Errorf("a cursor kappa did not give: status %d, want 400", status)
	}
}

// checkOddSimilar asks the similar users of 300 users and checks each
// score against the exact Jaccard of the artist sets, and recall@10
// against brute force (ties counted) ≥ 0.97.
func checkOddSimilar(t testing.TB, c *client, d *dataset) {
	t.Helper()
	m := newSimModel(t)
	for l := range d.valid(t) {
		m.listen(l.UserID, l.ArtistID)
	}
	exact := m.exactUsers()
	rng := rand.New(rand.NewPCG(9, 9))
	users := slices.Sorted(maps.Keys(m.artists))
	hits, want, wrong := 0, 0, 0
	for range 300 {
		q := users[rng.IntN(len(users))]
		sims := exact(q)
		var a similarAnswer
		if _, err := c.getJSON("/v1/users/"+itoa(q)+"/similar?k=10", &a); err != nil {
			t.Fatal(err)
		}
		for _, s := range a.scored() {
			if s.Score != sims[s.ID] {
				if wrong++; wrong <= 3 {
					t.Errorf("user %d: similar user %d scored %g, exact Jaccard %g", q, s.ID, s.Score, sims[s.ID])
				}
			}
		}
		h, w := recallHits(sims, a.scored())
		hits, want = hits+h, want+w
	}
	recall := float64(hits) / float64(want)
	t.Logf("similar users: recall@10 %.4f (%d of %d)", recall, hits, want)
	if recall < 0.97 || wrong > 0 {
		t.Errorf("similar users: recall@10 %.4f, want ≥ 0.97; %d scores not exact", recall, wrong)
	}
}
