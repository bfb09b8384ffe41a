package topk

import (
	"math/rand/v2"
	"testing"

	"github.com/kappa-stream/kappa/events"
	"github.com/kappa-stream/kappa/processors/rollups"
)

// benchListens makes n listens over 31 days from day 20_000 with the
// generator's shape: zipf songs of a 200,000-song catalogue, 5,000
// artists, 20 countries (SE among the big ones) and some listens without
// one.
func benchListens(n int) []events.Listen {
	r := rand.New(rand.NewPCG(7, 7))
	songs := rand.NewZipf(r, 1.1, 1, 199_999)
	countries := []events.Country{{'U', 'S'}, {'G', 'B'}, {'S', 'E'}, {'D', 'E'}, {'F', 'R'}, {'B', 'R'}, {'J', 'P'},
		{'I', 'N'}, {'M', 'X'}, {'E', 'S'}, {'I', 'T'}, {'N', 'L'}, {'P', 'L'}, {'C', 'A'}, {'A', 'U'}, {'N', 'O'},
		{'D', 'K'}, {'F', 'I'}, {'K', 'R'}, {'T', 'R'}, {}}
	out := make([]events.Listen, n)
	for i := range out {
		song := int64(songs.Uint64()) + 1
		c := countries[min(int(r.ExpFloat64()*4), len(countries)-1)]
		out[i] = events.Listen{UserID: 1, SongID: song, ArtistID: 1 + song%5000,
			TS:       20_000*86_400_000 + int64(i)*(31*86_400_000)/int64(n),
			MsPlayed: int32(r.IntN(300_000)), Country: c}
	}
	return out
}

// BenchmarkIndex measures the rollups' stage 2 over 200,000 listens in
// commit intervals of 5,000, without and with the top-K index: events/s
// of each (the Indexer's cost on the stage-2 work alone, not on the
// whole pipeline: e2e BenchmarkTopK measures that).
func BenchmarkIndex(b *testing.B) {
	listens := benchListens(200_000)
	for _, withIndex := range []bool{false, true} {
		name := "rollups"
		if withIndex {
			name = "rollups+topk"
		}
		b.Run(name, func(b *testing.B) {
			for range b.N {
				p := newPipeline(b, 1)
				if !withIndex {
					p.aggs[0] = rollups.NewStage2(p.stores[0], nil)
				}
				for i := 0; i < len(listens); i += 5000 {
					p.commit(listens[i : i+5000])
				}
			}
			b.ReportMetric(float64(b.N*len(listens))/b.Elapsed().Seconds(), "events/s")
		})
	}
}

// BenchmarkTop measures Top on one partition's share (1/12) of 2,000,000
// listens over 31 days: a 31-day range, k = 100, all countries and SE.
func BenchmarkTop(b *testing.B) {
	listens := benchListens(2_000_000 / 12)
	p := newPipeline(b, 1)
	for i := 0; i < len(listens); i += 5000 {
		p.commit(listens[i:min(i+5000, len(listens))])
	}
	for _, tc := range []struct {
		name string
		q    Query
	}{
		{"songs-all", Query{Entity: rollups.Song, From: 20_000, To: 20_030, K: 100}},
		{"songs-SE", Query{Entity: rollups.Song, From: 20_000, To: 20_030, K: 100, Country: events.Country{'S', 'E'}}},
		{"artists-all", Query{Entity: rollups.Artist, From: 20_000, To: 20_030, K: 100}},
		{"artists-SE-streams", Query{Entity: rollups.Artist, By: Streams, From: 20_000, To: 20_030, K: 100, Country: events.Country{'S', 'E'}}},
	} {
		b.Run(tc.name, func(b *testing.B) {
			for range b.N {
				if _, err := Top(p.stores[0], tc.q); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Milliseconds())/float64(b.N), "ms/query")
		})
	}
}
