package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"

	"github.com/kappa-stream/kappa/generate"
)

// TestCatalog feeds the generator's messy catalog feed (every kind of mess
// of a third-party feed) through `kappa generate --catalog` into a kappa
// instance, and checks: the versioned table's current versions equal the
// generator's clean catalog (the truth it made the mess from, not kappa's
// rules); every record that cannot be used is in catalog.rejects with a
// reason; plays answers carry the songs' titles and artists' names; a bad
// batch shows, then `kappa catalog rollback` restores every song it
// touched; `kappa catalog reconcile` finds no difference on the clean
// source and the planted ones on a doctored copy.
func TestCatalog(t *testing.T) {
	const n = 20_000
	cfg := testConfig(n)
	d := generateDataset(t, cfg)
	g, err := generate.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	feed := g.CatalogFeed()
	b := startBroker(t, t.TempDir(), "127.0.0.1:0")
	kafka := b.Addr()
	createTopics(t, kafka)
	in := newInstance(t, kafka, "a")
	in.start(t)
	produceWithKappa(t, kafka, d.writeLines(t, "all.jsonl", 0, n, false))

	genFlags := []string{"generate", "--catalog", "--seed", itoa(cfg.Seed), "--users", itoa(int64(cfg.Users)),
		"--artists", itoa(int64(cfg.Artists)), "--songs", itoa(int64(cfg.Songs)), "--events", itoa(n),
		"--scenario", "live-drop", "--live-drop-listeners", itoa(int64(cfg.LiveDropListeners))}
	source := filepath.Join(t.TempDir(), "feed.jsonl")
	runKappa(t, 0, append(genFlags, "--out", source)...)
	written, err := os.ReadFile(source)
	if err != nil {
		t.Fatal(err)
	}
	if want := append(bytes.Join(feed.Lines, []byte("\n")), '\n'); !bytes.Equal(written, want) {
		t.Fatal("kappa generate --catalog --out wrote another feed than the generator's")
	}
	runKappa(t, 0, append(genFlags, "--brokers", kafka)...)
	t.Logf("feed: %d records, mess: %v", len(feed.Lines), feed.Mess)

	want := cleanTable(feed, nil)
	waitTable(t, kafka, want)
	checkRejects(t, kafka, feed)
	waitCaughtUp(t, kafka, n, 2*time.Minute, in.http)
	checkNames(t, newClient(in.http), d, want)

	// A bad batch, then its rollback.
	runKappa(t, 0, append(genFlags, "--brokers", kafka, "--bad-batch")...)
	bad := cleanTable(feed, feed.Bad)
	waitTable(t, kafka, bad)
	checkNames(t, newClient(in.http), d, bad)
	out := runKappa(t, 0, "catalog", "rollback", "--brokers", kafka, "--batch", feed.BadBatch)
	if !strings.Contains(out, "entities restored to their last good version") {
		t.Errorf("rollback output: %s", out)
	}
	waitTable(t, kafka, want)
	checkNames(t, newClient(in.http), d, want)

	// The bad batch again (newer than the current versions, so accepted),
	// then a rollback of everything accepted since just before it.
	before := time.Now().UTC().Format(time.RFC3339Nano)
	runKappa(t, 0, append(genFlags, "--brokers", kafka, "--bad-batch")...)
	waitTable(t, kafka, bad)
	if out := runKappa(t, 0, "catalog", "rollback", "--brokers", kafka, "--to", before); !strings.Contains(out, "versions accepted after "+before) {
		t.Errorf("rollback --to output: %s", out)
	}
	waitTable(t, kafka, want)

	// Reconciliation: clean, then with planted differences.
	if out := runKappa(t, 0, "catalog", "reconcile", "--brokers", kafka, "--source", source); !strings.Contains(out, "the table matches the source") {
		t.Errorf("reconcile of the clean source: %s", out)
	}
	doctored := filepath.Join(t.TempDir(), "doctored.jsonl")
	var lines []string
	for i, l := range feed.Lines {
		switch key := feed.Keys[i]; key {
		case "artist:1":
			// dropped: the table has an entity the source does not
		case "song:2":
			lines = append(lines, strings.Replace(string(l), `"title":"`, `"title":"Planted `, 1))
		default:
			lines = append(lines, string(l))
		}
	}
	lines = append(lines, `{"batch":"planted","kind":"song","song_id":999999,"title":"Planted","artist_id":1,"updated":"2026-11-30T00:00:00Z"}`)
	if err := os.WriteFile(doctored, []byte(strings.Join(lines, "\n")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	out, code := runKappaCode(t, "catalog", "reconcile", "--brokers", kafka, "--source", doctored)
	for _, w := range []string{`missing from the table +1\n +song:999999: "Planted" by artist 1`,
		`extra in the table +1\n +artist:1: "`, `differing +1\n +song:2: table "[^"]+" by artist \d+ \(version \d+, batch [^)]+\), source "Planted `} {
		if !regexp.MustCompile(w).MatchString(out) {
			t.Errorf("reconcile of the doctored source does not match %s:\n%s", w, out)
		}
	}
	if code != 1 {
		t.Errorf("reconcile of the doctored source: exit %d, want 1", code)
	}
}

// entry is an entity's current state: a song's title and artist, an
// artist's name.
type entry struct {
	title  string
	artist int64
	name   string
}

// cleanTable is the generator's clean catalog, with the records of extra
// (valid records of a later batch) applied over it.
func cleanTable(f *generate.Feed, extra [][]byte) map[string]entry {
	out := map[string]entry{}
	for id, s := range f.Songs {
		out["song:"+itoa(id)] = entry{title: s.Title, artist: s.ArtistID}
	}
	for id, name := range f.Artists {
		out["artist:"+itoa(id)] = entry{name: name}
	}
	for _, l := range extra {
		var r struct {
			SongID int64  `json:"song_id"`
			Title  string `json:"title"`
		}
		if err := json.Unmarshal(l, &r); err == nil {
			e := out["song:"+itoa(r.SongID)]
			e.title = r.Title
			out["song:"+itoa(r.SongID)] = e
		}
	}
	return out
}

// readCatalogTable reads the table topic: every entity's current version
// (the last one not rolled back), decoded here from its JSON.
func readCatalogTable(t testing.TB, kafka string) map[string]entry {
	t.Helper()
	out := map[string]entry{}
	for _, r := range readCommitted(t, kafka, "kappa.catalog-table") {
		var e struct {
			Versions []struct {
				Title      string `json:"title"`
				ArtistID   int64  `json:"artist_id"`
				Name       string `json:"name"`
				RolledBack string `json:"rolled_back"`
			} `json:"versions"`
		}
		if err := json.Unmarshal(r.Value, &e); err != nil {
			t.Fatalf("table value of %s: %v", r.Key, err)
		}
		delete(out, string(r.Key))
		for i := len(e.Versions) - 1; i >= 0; i-- {
			if v := e.Versions[i]; v.RolledBack == "" {
				out[string(r.Key)] = entry{title: v.Title, artist: v.ArtistID, name: v.Name}
				break
			}
		}
	}
	return out
}

// waitTable waits until the table's current versions are want.
func waitTable(t testing.TB, kafka string, want map[string]entry) {
	t.Helper()
	waitFor(t, 2*time.Minute, "the catalog table to hold the clean catalog", func() (bool, string) {
		got := readCatalogTable(t, kafka)
		var diffs []string
		for k, w := range want {
			if g, ok := got[k]; !ok || g != w {
				diffs = append(diffs, fmt.Sprintf("%s: %+v, want %+v", k, g, w))
			}
		}
		for k := range got {
			if _, ok := want[k]; !ok {
				diffs = append(diffs, k+" is extra")
			}
		}
		if len(diffs) > 3 {
			diffs = append(diffs[:3], fmt.Sprintf("… %d in all", len(diffs)))
		}
		return len(diffs) == 0, strings.Join(diffs, "; ")
	})
}

// checkRejects checks that catalog.rejects holds exactly the records the
// feed's mess cannot be used for, each with a reason and its record.
func checkRejects(t testing.TB, kafka string, f *generate.Feed) {
	t.Helper()
	want := f.Mess["first record without a title"] + f.Mess["conflicting artist_id"] +
		f.Mess["rename, then an older record late"] + f.Mess["garbage"]
	reasons := map[string]int{}
	adm := newAdmin(t, kafka)
	waitFor(t, time.Minute, "the rejects", func() (bool, string) {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		ends, err := adm.ListEndOffsets(ctx, "catalog.rejects")
		if err != nil {
			return false, err.Error()
		}
		var total int64
		ends.Each(func(o kadm.ListedOffset) { total += o.Offset })
		return total >= int64(want), fmt.Sprintf("%d of %d", total, want)
	})
	recs := readCommitted(t, kafka, "catalog.rejects")
	for _, r := range recs {
		var rej struct {
			Reason string          `json:"reason"`
			Source string          `json:"source"`
			Record json.RawMessage `json:"record"`
			Raw    string          `json:"raw"`
		}
		if err := json.Unmarshal(r.Value, &rej); err != nil || rej.Reason == "" || rej.Source == "" || (rej.Record == nil && rej.Raw == "") {
			t.Fatalf("reject %s: %s (%v)", r.Key, r.Value, err)
		}
		for _, kind := range []string{"needs a title", "conflicting artist_id", "out of order", "malformed"} {
			if strings.Contains(rej.Reason, kind) {
				reasons[kind]++
			}
		}
	}
	if len(recs) != want {
		t.Errorf("%d rejects, want %d (reasons %v)", len(recs), want, reasons)
	}
	if reasons["needs a title"] != f.Mess["first record without a title"] || reasons["conflicting artist_id"] != f.Mess["conflicting artist_id"] ||
		reasons["out of order"] != f.Mess["rename, then an older record late"] || reasons["malformed"] != f.Mess["garbage"] {
		t.Errorf("reject reasons %v, mess %v", reasons, f.Mess)
	}
}

// checkNames checks that the plays answers of a sample of songs and
// artists carry the catalog's names.
func checkNames(t testing.TB, c *client, d *dataset, want map[string]entry) {
	t.Helper()
	m := d.model
	checked := 0
	for id := range m.songs {
		if checked == 200 {
			break
		}
		checked++
		s := want["song:"+itoa(id)]
		artist := want["artist:"+itoa(s.artist)].name
		var a struct {
			Title      string `json:"title"`
			ArtistName string `json:"artist_name"`
		}
		waitFor(t, time.Minute, "the names of song "+itoa(id), func() (bool, string) {
			if _, err := c.getJSON("/v1/songs/"+itoa(id)+"/plays?from="+m.minDay+"&to="+m.maxDay, &a); err != nil {
				return false, err.Error()
			}
			return a.Title == s.title && a.ArtistName == artist, fmt.Sprintf("%q by %q, want %q by %q", a.Title, a.ArtistName, s.title, artist)
		})
	}
	for id := range m.artists {
		var a struct {
			ArtistName string `json:"artist_name"`
		}
		if _, err := c.getJSON("/v1/artists/"+itoa(id)+"/plays?from="+m.minDay+"&to="+m.maxDay, &a); err != nil {
			t.Fatal(err)
		}
		if w := want["artist:"+itoa(id)].name; a.ArtistName != w {
			t.Fatalf("artist %d: artist_name %q, want %q", id, a.ArtistName, w)
		}
	}
}
