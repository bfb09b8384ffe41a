package e2e

import (
	"cmp"
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"
)

// topAnswer is the body of GET /v1/top/{artists|songs}.
type topAnswer struct {
	ArtistID int64  `json:"artist_id"`
	From     string `json:"from"`
	To       string `json:"to"`
	Country  string `json:"country"`
	By       string `json:"by"`
	Top      []struct {
		SongID   int64 `json:"song_id"`
		ArtistID int64 `json:"artist_id"`
		Plays    int64 `json:"plays"`
		Streams  int64 `json:"streams"`
	} `json:"top"`
}

// topQuery is one random top query of checkTop.
type topQuery struct {
	entity   string // "songs" or "artists"
	from, to string
	country  string // "" for all countries
	k        int
	by       string
	artist   int64 // top songs of this artist; 0: of all
}

func (q topQuery) path() string {
	p := fmt.Sprintf("/v1/top/%s?from=%s&to=%s&k=%d&by=%s", q.entity, q.from, q.to, q.k, q.by)
	if q.country != "" {
		p += "&country=" + strings.ToLower(q.country)
	}
	if q.artist != 0 {
		p += "&artist_id=" + itoa(q.artist)
	}
	return p
}

// artistSongs are the cells of each artist's songs: what the model's
// song cells are, restricted to the listens with that artist_id.
type artistSongs map[int64]map[int64]map[cell]counts

func newArtistSongs(t testing.TB, d *dataset) artistSongs {
	out := artistSongs{}
	for l, ts := range d.valid(t) {
		songs := out[l.ArtistID]
		if songs == nil {
			songs = map[int64]map[cell]counts{}
			out[l.ArtistID] = songs
		}
		c := cell{Day: ts.UTC().Format("2006-01-02")}
		if l.Country != nil {
			c.Country = strings.ToUpper(*l.Country)
		}
		n := counts{Plays: 1}
		if l.MsPlayed >= 30000 {
			n.Streams = 1
		}
		addCell(songs, l.SongID, c, n)
	}
	return out
}

// expectedTop is what
//
//	SELECT id, count(*) AS plays, count(*) FILTER (WHERE ms_played >= 30000) AS streams
//	FROM listens WHERE valid AND date(ts) BETWEEN from AND to [AND country = …]
//	GROUP BY id HAVING <by> > 0 ORDER BY <by> DESC, id LIMIT k
//
// returns, from the model's cells.
func expectedTop(m *model, as artistSongs, q topQuery) string {
	ids := m.songs
	if q.entity == "artists" {
		ids = m.artists
	}
	if q.artist != 0 {
		ids = as[q.artist]
	}
	type row struct {
		id int64
		c  counts
	}
	var rows []row
	for id, cells := range ids {
		var sum counts
		for c, n := range cells {
			if c.Day >= q.from && c.Day <= q.to && (q.country == "" || c.Country == q.country) {
				sum.Plays += n.Plays
				sum.Streams += n.Streams
			}
		}
		if (q.by == "plays" && sum.Plays > 0) || (q.by == "streams" && sum.Streams > 0) {
			rows = append(rows, row{id, sum})
		}
	}
	measure := func(c counts) int64 {
		if q.by == "streams" {
			return c.Streams
		}
		return c.Plays
	}
	slices.SortFunc(rows, func(a, b row) int {
		return cmp.Or(cmp.Compare(measure(b.c), measure(a.c)), cmp.Compare(a.id, b.id))
	})
	var b strings.Builder
	for _, r := range rows[:min(q.k, len(rows))] {
		fmt.Fprintf(&b, "%d:%d/%d ", r.id, r.c.Plays, r.c.Streams)
	}
	return b.String()
}

func renderTop(a topAnswer) string {
	var b strings.Builder
	for _, it := range a.Top {
		fmt.Fprintf(&b, "%d:%d/%d ", it.SongID+it.ArtistID, it.Plays, it.Streams)
	}
	return b.String()
}

// randomTopQueries draws n queries over the model's days (and a day
// before and after them), its countries and all, k in 1, 10, 100, 1000,
// and then n/2 more of the songs of random artists.
func randomTopQueries(m *model, n int, seed uint64) []topQuery {
	r := rand.New(rand.NewPCG(seed, seed))
	first, _ := time.Parse("2006-01-02", m.minDay)
	last, _ := time.Parse("2006-01-02", m.maxDay)
	days := int(last.Sub(first).Hours()/24) + 3
	countries := map[string]bool{}
	for _, cells := range m.artists {
		for c := range cells {
			if c.Country != "" {
				countries[c.Country] = true
			}
		}
	}
	list := slices.Sorted(maps.Keys(countries))
	day := func(i int) string { return first.AddDate(0, 0, i-1).Format("2006-01-02") }
	var qs []topQuery
	for i := range n {
		a := r.IntN(days)
		b := a + r.IntN(days-a)
		q := topQuery{entity: "songs", from: day(a), to: day(b), k: []int{1, 10, 100, 1000}[i%4], by: "plays"}
		if i%2 == 1 {
			q.entity = "artists"
		}
		if r.IntN(3) == 0 {
			q.by = "streams"
		}
		if r.IntN(2) == 0 {
			q.country = list[r.IntN(len(list))]
		}
		qs = append(qs, q)
	}
	artists := slices.Sorted(maps.Keys(m.artists))
	for i := range n / 2 {
		q := qs[i]
		q.entity, q.artist = "songs", artists[r.IntN(len(artists))]
		qs = append(qs, q)
	}
	return qs
}

// checkTop compares the answers of 20 random top queries, and of 10 of
// an artist's songs, with the model's.
func checkTop(t *testing.T, c *client, m *model, as artistSongs, seed uint64) {
	t.Helper()
	nonEmpty := 0
	for _, q := range randomTopQueries(m, 20, seed) {
		var a topAnswer
		if _, err := c.getJSON(q.path(), &a); err != nil {
			t.Fatal(err)
		}
		want := expectedTop(m, as, q)
		if got := renderTop(a); got != want {
			t.Fatalf("%s\n  got  %s\n  want %s", q.path(), got, want)
		}
		if a.From != q.from || a.To != q.to || a.By != q.by || a.Country != q.country || a.ArtistID != q.artist {
			t.Fatalf("%s: answer for %s…%s by %s country %q", q.path(), a.From, a.To, a.By, a.Country)
		}
		if want != "" {
			nonEmpty++
		}
	}
	if nonEmpty < 15 {
		t.Fatalf("only %d of 30 queries have a non-empty answer: the check is too weak", nonEmpty)
	}
}

// TestTopKExact produces 200,000 generated events into `kappa up --top-k`
// and checks 20 random top queries (range, country, k, artists or songs,
// plays or streams), and 10 of an artist's songs, against the model of
// the raw events.
func TestTopKExact(t *testing.T) {
	const n = 200_000
	d := generateDataset(t, testConfig(n))
	kafka, httpAddr := freeAddr(t), freeAddr(t)
	startKappa(t, "up.log", "up", "--data", t.TempDir(), "--kafka-addr", kafka, "--http", httpAddr, "--top-k", "--top-k-artist-songs")
	waitReady(t, httpAddr)
	produceWithKappa(t, kafka, d.writeLines(t, "produce.jsonl", 0, n, false))
	waitCaughtUp(t, kafka, n, 2*time.Minute, httpAddr)
	checkTop(t, newClient(httpAddr), d.model, newArtistSongs(t, d), 1)
}

// TestTopKKill9 runs two `kappa process --top-k` instances while 300,000
// events are produced at a steady pace, kills one or the other with
// SIGKILL three times mid-run and restarts it with the same identity;
// then 20 random top queries through each instance (each reads its own
// partitions and asks the other for the rest) must equal the model's.
func TestTopKKill9(t *testing.T) {
	const (
		n     = 300_000
		kills = 3
	)
	d := generateDataset(t, testConfig(n))
	b := startBroker(t, t.TempDir(), "127.0.0.1:0")
	kafka := b.Addr()
	createTopics(t, kafka)
	rng := rand.New(rand.NewPCG(20, 20))
	instances := []*instance{newInstance(t, kafka, "a"), newInstance(t, kafka, "b")}
	for _, in := range instances {
		in.args = append(in.args, "--top-k", "--top-k-artist-songs")
		in.start(t)
	}
	for _, in := range instances {
		waitReady(t, in.http)
	}
	f := startFeeder(t, kafka, d, n, 1000, 20*time.Millisecond)
	for i := range kills {
		f.waitProduced(t, int64(n*(i+1)/(kills+1)))
		for _, in := range instances {
			in.mustRun(t)
		}
		// NB: not a wait for a condition: a random delay of up to one
		// commit interval puts the kill anywhere in the commit cycle.
		<-time.After(time.Duration(rng.Int64N(int64(100 * time.Millisecond))))
		victim := instances[i%2]
		victim.p.stop(t, syscall.SIGKILL)
		if produced := f.produced.Load(); produced >= n {
			t.Fatalf("kill %d: all %d events were produced; the kill was not mid-run", i+1, n)
		}
		victim.start(t)
	}
	f.waitProduced(t, n)
	waitCaughtUp(t, kafka, n, 3*time.Minute, addrs(instances)...)
	as := newArtistSongs(t, d)
	for i, in := range instances {
		in.mustRun(t)
		waitReady(t, in.http)
		checkTop(t, newClient(in.http), d.model, as, uint64(2+i))
	}
}
