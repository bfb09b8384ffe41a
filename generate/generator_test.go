package generate

import (
	"bytes"
	"math"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// generated is one line of a stream with what the generator said of it.
type generated struct {
	line      []byte
	key       string
	malformed bool
	index     int
}

// generate returns the first n lines of cfg's stream.
func generate(t testing.TB, cfg Config, n int) (*Generator, []generated) {
	t.Helper()
	g, err := New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	out := make([]generated, 0, n)
	var buf []byte
	for i := range n {
		var bad bool
		buf, bad = g.Next(buf[:0])
		out = append(out, generated{line: bytes.Clone(buf), key: string(g.Key(nil)), malformed: bad, index: i})
	}
	if g.Count() != n {
		t.Fatalf("Count = %d, want %d", g.Count(), n)
	}
	return g, out
}

func stream(lines []generated) []byte {
	var b bytes.Buffer
	for _, l := range lines {
		b.Write(l.line)
		b.WriteByte(' ')
		b.WriteString(l.key)
		b.WriteByte('\n')
	}
	return b.Bytes()
}

func TestDeterminism(t *testing.T) {
	base := Config{Users: 5_000, Events: 20_000, MalformedRate: 0.02, LiveDrop: true, LiveDropListeners: 2_000}
	with := func(f func(*Config)) Config {
		c := base
		f(&c)
		return c
	}
	tests := []struct {
		name string
		a, b Config
		same bool
	}{
		{"same config", base, base, true},
		{"seed 0 is the default seed 1", with(func(c *Config) { c.Seed = 0 }), with(func(c *Config) { c.Seed = 1 }), true},
		{"different seed", with(func(c *Config) { c.Seed = 1 }), with(func(c *Config) { c.Seed = 2 }), false},
		{"negative seed", with(func(c *Config) { c.Seed = -1 }), with(func(c *Config) { c.Seed = 1 }), false},
		{"different catalogue", base, with(func(c *Config) { c.Songs = 100_000 }), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, a := generate(t, tt.a, 20_000)
			_, b := generate(t, tt.b, 20_000)
			if got := bytes.Equal(stream(a), stream(b)); got != tt.same {
				t.Fatalf("streams equal = %v, want %v", got, tt.same)
			}
		})
	}
}

func TestNextAppendsWithoutAllocating(t *testing.T) {
	g, err := New(Config{MalformedRate: 0.5, LiveDrop: true, Events: 200_000})
	if err != nil {
		t.Fatal(err)
	}
	if got := string(g.Key(nil)); got != "0" {
		t.Errorf("Key before Next = %q, want \"0\"", got)
	}
	line, _ := g.Next([]byte("prefix\n"))
	if !bytes.HasPrefix(line, []byte("prefix\n")) || len(line) == len("prefix\n") {
		t.Fatalf("Next did not append: %q", line)
	}
	buf := make([]byte, 0, 1024)
	allocs := testing.AllocsPerRun(5_000, func() {
		buf, _ = g.Next(buf[:0])
		buf = g.Key(buf)
	})
	if allocs != 0 {
		t.Errorf("Next allocates %.2f times per event", allocs)
	}
}

func TestValidLines(t *testing.T) {
	tests := []struct {
		name   string
		cfg    Config
		events int
	}{
		{"defaults", Config{}, 60_000},
		{"tiny catalogue", Config{Users: 40, Artists: 3, Songs: 10, Events: 5_000, MalformedRate: 0.1}, 6_000},
		{"one of each", Config{Users: 1, Artists: 1, Songs: 1, Events: 100}, 200},
		{"live drop and malformed", Config{Users: 20_000, Events: 40_000, LiveDrop: true, LiveDropListeners: 10_000, MalformedRate: 0.01}, 40_000},
		{"near the epoch, short span", Config{Start: time.Unix(0, 0).UTC(), Span: time.Hour, Events: 10_000}, 10_000},
		{"far beyond Events", Config{Events: 2, Span: 290 * 365 * 24 * time.Hour, Users: 100}, 100},
		{"offset start, 3ms span", Config{Start: time.Date(2030, 12, 31, 23, 59, 0, 0, time.FixedZone("x", -5*3600)), Span: 3 * time.Millisecond, Events: 1_000}, 1_000},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g, lines := generate(t, tt.cfg, tt.events)
			cfg := g.Config()
			start, end := cfg.Start, cfg.Start.Add(cfg.Span)
			drop, hasDrop := g.Drop()
			owner := map[int64]int64{}
			var valid int
			for _, l := range lines {
				if l.malformed {
					continue
				}
				valid++
				ev, err := parseListen(l.line)
				if err != nil {
					t.Fatalf("line %d: %v\n%s", l.index, err, l.line)
				}
				if l.key != strconv.FormatInt(ev.user, 10) {
					t.Fatalf("line %d: key %q, user_id %d", l.index, l.key, ev.user)
				}
				if ev.user > int64(cfg.Users) {
					t.Fatalf("line %d: user_id %d > Users", l.index, ev.user)
				}
				if ev.artist > int64(cfg.Artists) {
					t.Fatalf("line %d: artist_id %d > Artists", l.index, ev.artist)
				}
				if ev.song > int64(cfg.Songs) {
					if !hasDrop || ev.song != drop.SongID || ev.artist != drop.ArtistID {
						t.Fatalf("line %d: song_id %d > Songs", l.index, ev.song)
					}
				} else if want := g.cat.artistOfSong(ev.song); ev.artist != want {
					t.Fatalf("line %d: song %d has artist %d, catalogue says %d", l.index, ev.song, ev.artist, want)
				}
				if a, ok := owner[ev.song]; ok && a != ev.artist {
					t.Fatalf("line %d: song %d by artists %d and %d", l.index, ev.song, a, ev.artist)
				}
				owner[ev.song] = ev.artist
				if l.index < cfg.Events && (ev.ts.Before(start.Truncate(time.Second)) || !ev.ts.Before(end)) {
					t.Fatalf("line %d: ts %s outside [%s, %s)", l.index, ev.tsRaw, start, end)
				}
				if ev.ms > maxSongMs {
					t.Fatalf("line %d: ms_played %d longer than any song", l.index, ev.ms)
				}
				if ev.hasLoc {
					c := nearestCity(ev.lat, ev.lng)
					if d := math.Hypot(ev.lat-c.lat, (ev.lng-c.lng)/c.lngScale); d > 0.2 {
						t.Fatalf("line %d: %v,%v is %.2f° from %s", l.index, ev.lat, ev.lng, d, c.name)
					}
					if ev.country != "" && !strings.EqualFold(ev.country, c.country) {
						t.Fatalf("line %d: %v,%v is in %s (%s), country %q", l.index, ev.lat, ev.lng, c.name, c.country, ev.country)
					}
				}
			}
			if valid == 0 {
				t.Fatal("no valid lines")
			}
		})
	}
}

func nearestCity(lat, lng float64) *city {
	best, bestD := &cities[0], math.Inf(1)
	for i := range cities {
		c := &cities[i]
		if d := math.Hypot(lat-c.lat, (lng-c.lng)/c.lngScale); d < bestD {
			best, bestD = c, d
		}
	}
	return best
}

// TestRealism checks the mix of the default stream.
func TestRealism(t *testing.T) {
	const n = 100_000
	g, lines := generate(t, Config{Events: n}, n)
	var (
		noLoc, lower, skips, withID, unknown, late int
		forms                                      = map[string]int{}
		countries                                  = map[string]int{}
		ids                                        = map[string]bool{}
		artistsOf                                  = map[int64]map[int64]bool{}
		plays                                      = map[int64]int{}
		maxTS                                      time.Time
	)
	for _, l := range lines {
		ev, err := parseListen(l.line)
		if err != nil {
			t.Fatal(err)
		}
		if !ev.hasLoc {
			noLoc++
		}
		if ev.country != "" {
			countries[strings.ToUpper(ev.country)]++
			if ev.country != strings.ToUpper(ev.country) {
				lower++
			}
		}
		if ev.ms < 30_000 {
			skips++
		}
		switch {
		case !strings.Contains(ev.tsRaw, "T"):
			forms["epoch ms"]++
		case strings.HasSuffix(ev.tsRaw, "Z"):
			forms["UTC"]++
		default:
			forms["offset"]++
			if ev.ts.UTC().Format(time.RFC3339) == ev.tsRaw {
				t.Fatalf("offset form %s is UTC", ev.tsRaw)
			}
		}
		if ev.hasEventID {
			withID++
			if ids[ev.eventID] {
				t.Fatalf("event_id %q repeats", ev.eventID)
			}
			ids[ev.eventID] = true
		}
		if bytes.Contains(l.line, []byte(`"platform"`)) {
			unknown++
		}
		if ev.ts.Before(maxTS.Add(-time.Second)) {
			late++
		}
		if ev.ts.Before(maxTS.Add(-10 * time.Minute)) {
			t.Fatalf("line %d: ts %s more than 10 minutes behind %s", l.index, ev.tsRaw, maxTS)
		}
		if ev.ts.After(maxTS) {
			maxTS = ev.ts
		}
		if artistsOf[ev.user] == nil {
			artistsOf[ev.user] = map[int64]bool{}
		}
		artistsOf[ev.user][ev.artist] = true
		plays[ev.user]++
	}
	share := func(k int) float64 { return float64(k) / n }
	checks := []struct {
		name     string
		got      float64
		min, max float64
	}{
		{"no location", share(noLoc), 0.17, 0.23},
		{"lower-case country", share(lower), 0.02, 0.06},
		{"skips", share(skips), 0.22, 0.34},
		{"event_id", share(withID), 0.30, 0.40},
		{"unknown field", share(unknown), 0.07, 0.13},
		{"ts UTC", share(forms["UTC"]), 0.65, 0.85},
		{"ts offset", share(forms["offset"]), 0.08, 0.16},
		{"ts epoch ms", share(forms["epoch ms"]), 0.09, 0.17},
		{"late by a second or more", share(late), 0.01, 0.3},
		{"countries", float64(len(countries)), 30, 60},
		{"GB over CN", float64(countries["GB"]) / float64(max(countries["CN"], 1)), 10, math.Inf(1)},
	}
	for _, c := range checks {
		t.Logf("%s = %.3f", c.name, c.got)
		if c.got < c.min || c.got > c.max {
			t.Errorf("%s = %.3f, want %.3f…%.3f", c.name, c.got, c.min, c.max)
		}
	}
	// Taste: users come back to the same artists.
	var ratio float64
	var heavy int
	for u, p := range plays {
		if p >= 10 {
			ratio += float64(len(artistsOf[u])) / float64(p)
			heavy++
		}
	}
	if heavy < 100 {
		t.Fatalf("only %d users with 10+ plays", heavy)
	}
	if r := ratio / float64(heavy); r > 0.7 {
		t.Errorf("distinct artists per play of heavy users = %.2f, want ≤ 0.7", r)
	}
	// The stream covers the span.
	if end := g.Config().Start.Add(g.Config().Span); maxTS.Before(end.Add(-time.Hour)) {
		t.Errorf("last ts %s, want within an hour of %s", maxTS, end)
	}
}

func TestZipfSkew(t *testing.T) {
	_, lines := generate(t, Config{}, 100_000)
	songs := map[int64]int{}
	artists := map[int64]int{}
	for _, l := range lines {
		ev, err := parseListen(l.line)
		if err != nil {
			t.Fatal(err)
		}
		songs[ev.song]++
		artists[ev.artist]++
	}
	counts := func(m map[int64]int) []int {
		var c []int
		for _, v := range m {
			c = append(c, v)
		}
		slices.Sort(c)
		slices.Reverse(c)
		return c
	}
	s, a := counts(songs), counts(artists)
	top, median := s[0], s[len(s)/2]
	t.Logf("songs played %d, top %d, 10th %d, median %d; artists played %d, top %d, median %d",
		len(s), top, s[9], median, len(a), a[0], a[len(a)/2])
	if top < 50*median {
		t.Errorf("top song %d plays, median %d: want ≥ 50×", top, median)
	}
	if share := float64(top) / float64(len(lines)); share < 0.01 || share > 0.2 {
		t.Errorf("top song share %.3f, want 0.01…0.2", share)
	}
	if a[0] < 20*a[len(a)/2] {
		t.Errorf("top artist %d plays, median %d: want ≥ 20×", a[0], a[len(a)/2])
	}
}

func TestMovers(t *testing.T) {
	g, err := New(Config{})
	if err != nil {
		t.Fatal(err)
	}
	var movers int
	for id := int64(1); id <= int64(g.cfg.Users); id++ {
		moves, at := g.moves(id)
		if !moves {
			continue
		}
		movers++
		before, after := g.profile(id, at-1), g.profile(id, at)
		if before.city == after.city {
			t.Fatalf("user %d moves at %d but stays in %s", id, at, cities[before.city].name)
		}
		if at < g.cfg.Events/10 || at > g.cfg.Events*9/10 {
			t.Fatalf("user %d moves at event %d, outside the middle of the stream", id, at)
		}
	}
	if share := float64(movers) / float64(g.cfg.Users); share < 0.007 || share > 0.013 {
		t.Errorf("movers %.4f of users, want about 0.01", share)
	}
}

func BenchmarkNext(b *testing.B) {
	g, err := New(Config{LiveDrop: true, MalformedRate: 0.005, Events: 2_000_000})
	if err != nil {
		b.Fatal(err)
	}
	buf := make([]byte, 0, 1024)
	var bytes int
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		buf, _ = g.Next(buf[:0])
		buf = g.Key(buf)
		bytes += len(buf)
	}
	b.SetBytes(int64(bytes / max(b.N, 1)))
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
}
