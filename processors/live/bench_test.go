package live

import (
	"math/rand/v2"
	"testing"

	"github.com/kappa-stream/kappa/events"
)

// BenchmarkStages runs both stages over intervals of 5,000 listens of
// songs drawn from 200,000, with hot of them of one song.
func BenchmarkStages(b *testing.B) {
	for _, tc := range []struct {
		name string
		hot  float64
	}{{"uniform", 0}, {"hot", 0.5}} {
		b.Run(tc.name, func(b *testing.B) {
			p := newPipeline(b, Config{})
			rng := rand.New(rand.NewPCG(1, 2))
			batch := make([]events.Listen, 5_000)
			now := t0
			b.ResetTimer()
			for range b.N {
				for k := range batch {
					song := 1 + rng.Int64N(200_000)
					if rng.Float64() < tc.hot {
						song = 1
					}
					batch[k] = listen(1+rng.Int64N(100_000), song, now+int64(k))
				}
				p.step(batch)
				now += 5_000
			}
			b.ReportMetric(float64(b.N*len(batch))/b.Elapsed().Seconds(), "listens/s")
		})
	}
}
