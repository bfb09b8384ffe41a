package e2e

import (
	"bytes"
	"cmp"
	"encoding/json"
	"maps"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// partnerAnswer is a /partner/v1 listeners answer (CONTRACT.md).
type partnerAnswer struct {
	From, To, By string
	Rows         []struct {
		Day   string  `json:"day"`
		Value float64 `json:"value"`
		CI    struct {
			Lo, Hi, Alpha float64
		} `json:"ci"`
	} `json:"rows"`
	Epsilon float64 `json:"epsilon"`
	Charged bool    `json:"charged"`
}

// TestPartnerListeners runs the partner API on the real binary with
// generated load: the noisy distinct listeners per song and closed day
// fall within their confidence intervals of the exact bounded counts at
// about the stated rate (computed here from the raw lines: each user's
// first 8 songs of a day, in log order, minus the listens that came after
// their day closed in their partition); a repeated request gets the same
// answer uncharged; an open day is 422; a reader key is refused; a
// spent lifetime budget refuses new releases but still answers the ones
// drawn.
func TestPartnerListeners(t *testing.T) {
	const n = 60_000
	d := generateDataset(t, testConfig(n))
	kafka, httpAddr := freeAddr(t), freeAddr(t)
	startKappa(t, "up.log", "up", "--data", t.TempDir(), "--kafka-addr", kafka, "--http", httpAddr, "--dp", "--live-windows", "off")
	waitReady(t, httpAddr)
	produceWithKappa(t, kafka, d.writeLines(t, "listens.jsonl", 0, n, false))
	waitCaughtUp(t, kafka, n, 2*time.Minute, httpAddr)

	// The exact bounded listeners per (song, day).
	const maxItems, partitions = 8, 12
	grace := 10 * time.Minute
	route := kgo.StickyKeyPartitioner(nil).ForTopic("listens")
	streamTime := map[int32]time.Time{}
	kept := map[string][]int64{} // user|day → songs kept, in order
	listeners := map[int64]map[string]map[int64]bool{}
	for i, line := range d.lines {
		if d.bad[i] {
			continue
		}
		l, ts, err := parseRaw(line)
		if err != nil {
			t.Fatal(err)
		}
		p := int32(route.Partition(&kgo.Record{Key: d.keys[i]}, partitions))
		day := ts.UTC().Format("2006-01-02")
		dayEnd := ts.UTC().Truncate(24 * time.Hour).Add(24 * time.Hour)
		late := !streamTime[p].Before(dayEnd.Add(grace))
		if ts.After(streamTime[p]) {
			streamTime[p] = ts
		}
		if late {
			continue
		}
		k := itoa(l.UserID) + "|" + day
		if !slices.Contains(kept[k], l.SongID) {
			if len(kept[k]) == maxItems {
				continue
			}
			kept[k] = append(kept[k], l.SongID)
		}
		if listeners[l.SongID] == nil {
			listeners[l.SongID] = map[string]map[int64]bool{}
		}
		if listeners[l.SongID][day] == nil {
			listeners[l.SongID][day] = map[int64]bool{}
		}
		listeners[l.SongID][day][l.UserID] = true
	}
	// The days before the last are closed (the last holds the log's
	// largest event time).
	lastClosed := d.model.maxDay
	if t0, err := time.Parse("2006-01-02", lastClosed); err == nil {
		lastClosed = t0.AddDate(0, 0, -1).Format("2006-01-02")
	}
	songs := slices.Collect(maps.Keys(listeners))
	slices.SortFunc(songs, func(a, b int64) int { return cmp.Compare(len(listeners[b]), len(listeners[a])) })
	fresh := songs[80:83] // NB: no request draws their releases before the budget test
	songs = songs[:80]

	partner := createKey(t, kafka, "partner", "coverage", "--epsilon-budget", "100")
	base := "http://" + httpAddr
	var rows, inside int
	for _, song := range songs {
		path := "/partner/v1/songs/" + itoa(song) + "/listeners?from=" + d.model.minDay + "&to=" + lastClosed + "&by=day"
		status, body := call(t, "GET", base+path, "", partner)
		if status != 200 {
			t.Fatalf("%s: %d %s", path, status, body)
		}
		var a partnerAnswer
		if err := json.Unmarshal([]byte(body), &a); err != nil {
			t.Fatalf("%s: %v: %s", path, err, body)
		}
		if !a.Charged || a.Epsilon <= 0 {
			t.Fatalf("%s: the first answer is not charged: %s", path, body)
		}
		for _, r := range a.Rows {
			want := float64(len(listeners[song][r.Day]))
			rows++
			if r.CI.Lo <= want && want <= r.CI.Hi {
				inside++
			}
		}
		status, again := call(t, "GET", base+path, "", partner)
		var b partnerAnswer
		if err := json.Unmarshal([]byte(again), &b); status != 200 || err != nil || b.Charged || !reflect.DeepEqual(a.Rows, b.Rows) {
			t.Fatalf("%s asked again: %d %s\nfirst: %s", path, status, again, body)
		}
	}
	// NB: 95% intervals; below 85% of several hundred rows is far out
	// of chance.
	if rows < 100 || float64(inside) < 0.85*float64(rows) {
		t.Fatalf("%d of %d rows within their confidence interval of the exact bounded count", inside, rows)
	}
	t.Logf("%d of %d rows within their 95%% confidence interval of the exact bounded count", inside, rows)

	open := "/partner/v1/songs/" + itoa(songs[0]) + "/listeners?from=" + d.model.maxDay + "&to=" + d.model.maxDay
	if status, body := call(t, "GET", base+open, "", partner); status != 422 {
		t.Errorf("an open day: %d %s, want 422", status, body)
	}
	reader := createKey(t, kafka, "reader", "reader")
	if status, _ := call(t, "GET", base+open, "", reader); status != 403 {
		t.Errorf("a reader key on the partner API: %d, want 403", status)
	}

	small := createKey(t, kafka, "partner", "small", "--epsilon-budget", "1")
	ask := func(song int64) (int, string) {
		return call(t, "GET", base+"/partner/v1/songs/"+itoa(song)+"/listeners?from="+d.model.minDay+"&to="+d.model.minDay, "", small)
	}
	// NB: two new releases of 0.5 spend the budget of 1.
	for _, song := range fresh[:2] {
		if status, body := ask(song); status != 200 || !bytes.Contains([]byte(body), []byte(`"charged":true`)) {
			t.Fatalf("within the budget: %d %s", status, body)
		}
	}
	if status, body := ask(fresh[2]); status != 403 {
		t.Fatalf("a new release past the lifetime budget: %d %s, want 403", status, body)
	}
	if status, body := ask(fresh[0]); status != 200 {
		t.Fatalf("a release drawn before the budget ran out: %d %s, want 200", status, body)
	}
	if status, body := ask(songs[0]); status != 200 || !bytes.Contains([]byte(body), []byte(`"charged":false`)) {
		t.Fatalf("a release another key drew: %d %s, want 200 uncharged", status, body)
	}
}
