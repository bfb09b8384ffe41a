package dp

import (
	"math/rand/v2"
	"testing"

	"github.com/kappa-stream/kappa/events"
	"github.com/kappa-stream/kappa/topology"
)

// BenchmarkStage1 measures the bounding of one stage-1 partition:
// listens of 20,000 users over a day, prepared and written to the
// store every 5,000 listens.
func BenchmarkStage1(b *testing.B) {
	cfg := Config{MaxItems: DefaultMaxItems, MaxPlays: DefaultMaxPlays, Grace: DefaultGrace, Keep: DefaultKeep,
		Resolutions: []int{5, 6, 7, 8, 9}, Sources: 1}
	s := openMem(b)
	st, err := NewStage1(cfg, 0, s, "r", 12)
	if err != nil {
		b.Fatal(err)
	}
	r := rand.New(rand.NewPCG(1, 1))
	ls := make([]events.Listen, 100_000)
	for i := range ls {
		song := int64(1 + min(r.IntN(5000), r.IntN(5000)))
		ls[i] = events.Listen{UserID: int64(1 + r.IntN(20_000)), SongID: song, ArtistID: 1 + song%700,
			TS: int64(day0)*86_400_000 + int64(i)*800, Country: countries[i%len(countries)],
			HasLoc: i%4 == 0, Lat: 59 + r.Float64(), Lng: 18 + r.Float64()}
	}
	b.ResetTimer()
	for i := range b.N {
		if err := st.Add(&ls[i%len(ls)]); err != nil {
			b.Fatal(err)
		}
		if i%5000 == 4999 {
			var out topology.Output
			if err := st.Prepare(&out, false); err != nil {
				b.Fatal(err)
			}
			apply(b, s, &out)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
}
