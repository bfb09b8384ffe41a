package e2e

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestDashboards runs the browser tests of the dashboards
// (web/test/browser.mjs: playwright-core driving Debian's chromium)
// against `kappa up` with generated data: 30 days of listens, the
// catalog's names, fan zones, and listens of one song produced through
// the API while the live view is open. The script compares every number
// a page shows with the API answer the page received, and fails the
// test on any failed check. With KAPPA_SCREENSHOTS=1 it writes the
// README's screenshots into docs/screenshots.
func TestDashboards(t *testing.T) {
	if _, err := exec.LookPath("node"); err != nil {
		t.Fatal("node is missing: the dashboards' browser tests need it (scripts/test-deps.sh lists what make test installs)")
	}
	for _, p := range []string{"/usr/bin/chromium", "../web/node_modules/playwright-core", "../web/node_modules/@axe-core/playwright"} {
		if _, err := os.Stat(p); err != nil {
			t.Fatalf("%s is missing: run scripts/test-deps.sh (make test-deps): %v", p, err)
		}
	}

	const n = 40_000
	today := time.Now().UTC().Truncate(24 * time.Hour)
	cfg := testConfig(n)
	cfg.LiveDrop = false
	cfg.Start = today.AddDate(0, 0, -30)
	cfg.Span = 30*24*time.Hour - time.Minute // the listens end just before today
	d := generateDataset(t, cfg)

	kafka, httpAddr := freeAddr(t), freeAddr(t)
	args := []string{"up", "--data", t.TempDir(), "--kafka-addr", kafka, "--http", httpAddr, "--fan-zones"}
	// NB: the top-K endpoints (GET /v1/top/…, artist_id= for an
	// artist's songs).
	args = append(args, "--top-k", "--top-k-artist-songs")
	startKappa(t, "up.log", args...)
	waitReady(t, httpAddr)
	runKappa(t, 0, "generate", "--catalog", "--seed", itoa(cfg.Seed), "--users", itoa(int64(cfg.Users)),
		"--artists", itoa(int64(cfg.Artists)), "--songs", itoa(int64(cfg.Songs)), "--events", itoa(n), "--brokers", kafka)
	produceWithKappa(t, kafka, d.writeLines(t, "listens.jsonl", 0, n, false))
	waitCaughtUp(t, kafka, n, 3*time.Minute, httpAddr)

	// The artist with the most plays, its two most played songs.
	artists := map[int64]int{}
	songs := map[int64]map[int64]int{}
	for l := range d.valid(t) {
		artists[l.ArtistID]++
		if songs[l.ArtistID] == nil {
			songs[l.ArtistID] = map[int64]int{}
		}
		songs[l.ArtistID][l.SongID]++
	}
	var artist int64
	for a, c := range artists {
		if c > artists[artist] || (c == artists[artist] && a < artist) {
			artist = a
		}
	}
	var song, second int64
	for s, c := range songs[artist] {
		switch {
		case song == 0 || c > songs[artist][song] || (c == songs[artist][song] && s < song):
			song, second = s, song
		case second == 0 || c > songs[artist][second] || (c == songs[artist][second] && s < second):
			second = s
		}
	}
	if second == 0 {
		t.Fatalf("artist %d has one song; the test needs two", artist)
	}
	// The names reach the API once the catalog view has them.
	waitFor(t, time.Minute, "the catalog's name of artist "+itoa(artist), func() (bool, string) {
		var a struct {
			ArtistName string `json:"artist_name"`
		}
		_, err := newClient(httpAddr).getJSON("/v1/artists/"+itoa(artist)+"/plays?from="+today.Format(time.DateOnly)+"&to="+today.Format(time.DateOnly), &a)
		return err == nil && a.ArtistName != "", fmt.Sprint(a, err)
	})

	checkSearch(t, httpAddr, cfg)

	// Listens of the live song, now, until the script ends.
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { produceLive(ctx, t, httpAddr, artist, second) })
	defer func() {
		cancel()
		wg.Wait()
	}()

	shots := t.TempDir()
	if os.Getenv("KAPPA_SCREENSHOTS") == "1" {
		shots, _ = filepath.Abs("../docs/screenshots")
	}
	script := exec.CommandContext(ctx, "node", "test/browser.mjs")
	script.Dir = "../web"
	script.Env = append(os.Environ(),
		"KAPPA_URL=http://"+httpAddr,
		"ARTIST="+itoa(artist), "SONG="+itoa(song), "LIVE_SONG="+itoa(second),
		"FROM="+cfg.Start.Format(time.DateOnly), "TO="+today.AddDate(0, 0, -1).Format(time.DateOnly),
		"SHOTS="+shots)
	var out bytes.Buffer
	script.Stdout, script.Stderr = &out, &out
	err := script.Run()
	for line := range strings.Lines(out.String()) {
		if strings.HasPrefix(line, "FAIL") || strings.HasPrefix(line, "NOTE") {
			t.Log(strings.TrimSpace(line))
		}
	}
	if err != nil {
		t.Fatalf("the browser tests failed (%v):\n%s", err, out.String())
	}
	if !strings.Contains(out.String(), " passed, 0 failed") {
		t.Fatalf("the browser tests printed no summary:\n%s", out.String())
	}
	t.Log(strings.TrimSpace(out.String()[strings.LastIndex(strings.TrimSpace(out.String()), "\n")+1:]))
}

// produceLive posts two listens of song (by artist) a second, timed now,
// until ctx ends.
func produceLive(ctx context.Context, t *testing.T, httpAddr string, artist, song int64) {
	tick := time.NewTicker(500 * time.Millisecond)
	defer tick.Stop()
	for user := int64(1_000_000); ctx.Err() == nil; user++ {
		body := fmt.Sprintf(`{"user_id":%d,"song_id":%d,"artist_id":%d,"ts":%d,"ms_played":40000,"country":"SE"}`,
			user, song, artist, time.Now().UnixMilli())
		req, _ := http.NewRequestWithContext(ctx, http.MethodPost, "http://"+httpAddr+"/v1/listens", strings.NewReader(body))
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode != http.StatusAccepted {
				t.Errorf("POST /v1/listens: %d", resp.StatusCode)
			}
		} else if ctx.Err() == nil {
			t.Errorf("POST /v1/listens: %v", err)
		}
		select {
		case <-ctx.Done():
		case <-tick.C:
		}
	}
}
