package topk

import (
	"cmp"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/kappa-stream/kappa/events"
	"github.com/kappa-stream/kappa/processors/rollups"
	"github.com/kappa-stream/kappa/state"
	"github.com/kappa-stream/kappa/topology"
)

func TestBuckets(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	counts := []int64{1, 2, 15, 16, 17, 18, 31, 32, 33, 1 << 20, 1<<20 - 1, 1<<20 + 1, math.MaxInt64, math.MaxInt64 - 1, 1 << 62}
	for range 100_000 {
		counts = append(counts, 1+r.Int64N(1<<uint(1+r.IntN(62))))
	}
	for _, n := range counts {
		b := bucketOf(n)
		if ceiling(b) < n {
			t.Fatalf("count %d in bucket %d whose ceiling is %d", n, b, ceiling(b))
		}
		if b > 1 && ceiling(b-1) >= n {
			t.Fatalf("count %d in bucket %d, but bucket %d reaches %d", n, b, b-1, ceiling(b-1))
		}
		if n < exactBelow && ceiling(b) != n {
			t.Fatalf("small count %d has ceiling %d", n, ceiling(b))
		}
		if n >= exactBelow && float64(ceiling(b)-n) > float64(n)/(1<<mantissaBits) {
			t.Fatalf("count %d: ceiling %d is more than 1/%d above", n, ceiling(b), 1<<mantissaBits)
		}
	}
	if got := bucketOf(math.MaxInt64); got < bucketOf(math.MaxInt64/2) {
		t.Fatalf("buckets do not grow at the top: %d", got)
	}
}

// pipeline runs listens through the rollups' two stages with an Indexer
// observing each partition's AggregateTask, as kappa's stages do, over
// one store per stage-2 partition.
type pipeline struct {
	t      testing.TB
	stores []*state.Store
	aggs   []*rollups.Stage2
	idx    []*Indexer
	songs  []*SongTask
}

func newPipeline(t testing.TB, partitions int) *pipeline {
	p := &pipeline{t: t}
	for range partitions {
		s, err := state.Open("db", state.WithFS(vfs.NewMem()))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		x := NewIndexer(s)
		agg := rollups.NewStage2(s, state.NewRecent(4<<10))
		agg.Observe(x)
		p.stores, p.aggs, p.idx = append(p.stores, s), append(p.aggs, agg), append(p.idx, x)
		p.songs = append(p.songs, NewSongTask(s))
	}
	return p
}

// commit sends listens through stage 1 and applies every partition's
// stage-2 changes to its store, as one committed transaction does.
func (p *pipeline) commit(listens []events.Listen) {
	t := p.t
	users := rollups.NewStage1("deltas", int32(len(p.stores)))
	songs := NewSongCollector("deltas", int32(len(p.stores)))
	for i := range listens {
		if err := users.Add(&listens[i]); err != nil {
			t.Fatal(err)
		}
		if err := songs.Add(&listens[i]); err != nil {
			t.Fatal(err)
		}
	}
	var deltas topology.Output
	if err := users.Prepare(&deltas, false); err != nil {
		t.Fatal(err)
	}
	if err := songs.Prepare(&deltas, false); err != nil {
		t.Fatal(err)
	}
	for _, rec := range deltas.Records() {
		if len(rec.Value) >= producerLimit {
			t.Fatalf("a record of %d bytes", len(rec.Value))
		}
		task := p.aggs[rec.Partition].Process
		if IsSongDelta(rec.Value) {
			task = p.songs[rec.Partition].Process
		}
		if err := task(rec); err != nil {
			t.Fatal(err)
		}
	}
	for i, s := range p.stores {
		var out topology.Output
		if err := p.aggs[i].Prepare(&out); err != nil {
			t.Fatal(err)
		}
		if err := p.idx[i].Prepare(&out); err != nil {
			t.Fatal(err)
		}
		if err := p.songs[i].Prepare(&out); err != nil {
			t.Fatal(err)
		}
		b := s.NewBatch()
		for k, v := range out.Changes() {
			var err error
			if v == nil {
				err = b.Delete(k)
			} else {
				err = b.Set(k, v)
			}
			if err != nil {
				t.Fatal(err)
			}
		}
		if err := b.Commit(false); err != nil {
			t.Fatal(err)
		}
	}
}

func (p *pipeline) check() {
	for i, s := range p.stores {
		if err := Check(s); err != nil {
			p.t.Fatalf("partition %d: %v", i, err)
		}
		if err := CheckArtistSongs(s); err != nil {
			p.t.Fatalf("partition %d: %v", i, err)
		}
	}
}

// artistSongs asks the artist's partition for its top songs.
func (p *pipeline) artistSongs(artist int64, q Query) []Item {
	part := topology.KeyPartition(rollups.PartitionKey(nil, rollups.Artist, artist), len(p.stores))
	items, err := ArtistSongs(p.stores[part], artist, q)
	if err != nil {
		p.t.Fatal(err)
	}
	return items
}

// top asks every partition and merges their answers.
func (p *pipeline) top(q Query) []Item {
	var answers [][]Item
	for _, s := range p.stores {
		a, err := Top(s, q)
		if err != nil {
			p.t.Fatal(err)
		}
		answers = append(answers, a)
	}
	return Merge(q, answers...)
}

// bruteTop is the expected answer, from the raw listens: the counts per
// id over the range (and country), the ids with a positive count of the
// measure sorted by it descending and by id, the first k.
func bruteTop(listens []events.Listen, artists bool, streams bool, from, to int32, country string, k int) []string {
	return bruteTopOf(listens, artists, 0, streams, from, to, country, k)
}

// bruteTopOf is bruteTop of the songs played under artist (0: any).
func bruteTopOf(listens []events.Listen, artists bool, artist int64, streams bool, from, to int32, country string, k int) []string {
	type counts struct{ plays, streams int64 }
	byID := map[int64]*counts{}
	for _, l := range listens {
		day := int32(l.TS / 86_400_000)
		if day < from || day > to || (country != "" && string(l.Country[:]) != country) || (artist != 0 && l.ArtistID != artist) {
			continue
		}
		id := l.SongID
		if artists {
			id = l.ArtistID
		}
		c := byID[id]
		if c == nil {
			c = &counts{}
			byID[id] = c
		}
		c.plays++
		if l.MsPlayed >= 30_000 {
			c.streams++
		}
	}
	type row struct {
		id int64
		c  counts
	}
	var rows []row
	for id, c := range byID {
		if (streams && c.streams > 0) || (!streams && c.plays > 0) {
			rows = append(rows, row{id, *c})
		}
	}
	slices.SortFunc(rows, func(a, b row) int {
		ma, mb := a.c.plays, b.c.plays
		if streams {
			ma, mb = a.c.streams, b.c.streams
		}
		return cmp.Or(cmp.Compare(mb, ma), cmp.Compare(a.id, b.id))
	})
	var out []string
	for _, r := range rows[:min(k, len(rows))] {
		out = append(out, fmt.Sprintf("%d:%d/%d", r.id, r.c.plays, r.c.streams))
	}
	return out
}

func render(items []Item) []string {
	var out []string
	for _, it := range items {
		out = append(out, fmt.Sprintf("%d:%d/%d", it.ID, it.Plays, it.Streams))
	}
	return out
}

// randomListens makes n listens over days base…base+days-1 with skewed
// songs (many ties among the rare ones), artists and countries.
func randomListens(r *rand.Rand, n int, base, days int32) []events.Listen {
	songs := rand.NewZipf(r, 1.2, 2, 3000)
	countries := []events.Country{{}, {'S', 'E'}, {'G', 'B'}, {'F', 'R'}, {'D', 'E'}, {'U', 'S'}}
	out := make([]events.Listen, n)
	for i := range out {
		song := int64(songs.Uint64()) + 1
		out[i] = events.Listen{
			UserID: 1 + r.Int64N(1000), SongID: song, ArtistID: 1 + song%97,
			TS:       int64(base)*86_400_000 + r.Int64N(int64(days)*86_400_000),
			MsPlayed: int32(r.IntN(60_000)),
			Country:  countries[min(r.IntN(len(countries)+3), len(countries)-1)],
		}
		if r.IntN(50) == 0 {
			out[i].ArtistID = 1 + r.Int64N(3) // a song played under another artist
		}
	}
	return out
}

// TestModel runs random listens through the pipeline in random
// transactions and compares the merged answers of random queries with a
// brute-force sort of the raw listens' counts, ties included, for k = 1,
// 10 and 1000; the index stays one-to-one with the rows throughout.
func TestModel(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	const base, days = 20_000, 40
	p := newPipeline(t, 3)
	var all []events.Listen
	for tx := range 30 {
		batch := randomListens(r, 1+r.IntN(3000), base, days)
		p.commit(batch)
		all = append(all, batch...)
		if tx%10 == 9 {
			p.check()
		}
	}
	countries := []string{"", "SE", "GB", "US", "JP"}
	for i := range 300 {
		from := base - 2 + r.Int32N(days+2)
		to := from + r.Int32N(days+2-(from-base))
		if i%7 == 0 {
			to = from
		}
		q := Query{
			Entity: rollups.Song, By: Plays, From: from, To: to,
			K: []int{1, 10, 1000}[i%3],
		}
		if r.IntN(2) == 0 {
			q.Entity = rollups.Artist
		}
		if r.IntN(3) == 0 {
			q.By = Streams
		}
		country := countries[r.IntN(len(countries))]
		if country != "" {
			q.Country = events.Country{country[0], country[1]}
		}
		got := render(p.top(q))
		want := bruteTop(all, q.Entity == rollups.Artist, q.By == Streams, from, to, country, q.K)
		if !slices.Equal(got, want) {
			t.Fatalf("query %+v (country %q):\ngot  %v\nwant %v", q, country, got, want)
		}
		artist := 1 + r.Int64N(100) // NB: 98… have only the songs played under another artist
		got = render(p.artistSongs(artist, q))
		want = bruteTopOf(all, false, artist, q.By == Streams, from, to, country, q.K)
		if !slices.Equal(got, want) {
			t.Fatalf("songs of artist %d, query %+v (country %q):\ngot  %v\nwant %v", artist, q, country, got, want)
		}
	}
}

// TestThresholdTie builds lists where, after the first round, the best
// total seen equals the threshold and an unread id with a smaller id has
// that total too: the answer must be the unread one (a ≥ instead of a >
// in the stopping rule would return the other). Counts: f is the first
// count of a bucket B, top its ceiling.
func TestThresholdTie(t *testing.T) {
	const d = 20_006 // a Thursday: weeks d…d+6 and d+7…d+13
	const f = 16
	top := int(ceiling(bucketOf(f)))
	if firstBatch != 16 || bucketOf(f-1) == bucketOf(f) || bucketOf(int64(top)+1) != bucketOf(f)+1 || top-1 < f ||
		weekOf(d) == weekOf(d-1) || weekOf(d+7) != weekOf(d)+1 {
		t.Fatal("the lists below are laid out for a first batch of 16, a bucket starting at 16 and weeks from day d")
	}
	var listens []events.Listen
	add := func(id int64, day int32, n int) {
		for range n {
			listens = append(listens, events.Listen{UserID: 1, SongID: id, ArtistID: 1, TS: int64(day) * 86_400_000})
		}
	}
	// Week of d: 900 (top+1, bucket B+1), then 100…114 (f, bucket B),
	// then 200 (top, bucket B, read after them).
	add(900, d, top+1)
	for id := int64(100); id < 115; id++ {
		add(id, d, f)
	}
	add(200, d, top)
	// Week of d+7: 100…115 (f), then 200 (top) and 900 (top-1), all
	// bucket B. 200 and 900 both total 2·top, the bound after a round.
	for id := int64(100); id < 116; id++ {
		add(id, d+7, f)
	}
	add(200, d+7, top)
	add(900, d+7, top-1)
	p := newPipeline(t, 1)
	p.commit(listens)
	p.check()
	for _, k := range []int{1, 2, 3} {
		q := Query{Entity: rollups.Song, By: Plays, From: d, To: d + 7, K: k}
		got, want := render(p.top(q)), bruteTop(listens, false, false, d, d+7, "", k)
		if !slices.Equal(got, want) {
			t.Fatalf("k=%d: got %v, want %v", k, got, want)
		}
	}
}
