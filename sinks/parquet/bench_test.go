package parquet

import (
	"math/rand/v2"
	"testing"
	"time"

	"github.com/kappa-stream/kappa/events"
)

// BenchmarkStage stages and publishes an epoch of 100,000 records over 12
// partitions and four days (files written, fsynced, reopened and
// renamed): the sink's work per epoch apart from Kafka.
func BenchmarkStage(b *testing.B) {
	const n = 100_000
	lines := testLines(rand.New(rand.NewPCG(5, 6)), n)
	e := newEpoch()
	var dec events.Decoder
	for i, tl := range lines {
		var l events.Listen
		err := dec.Decode(tl.line, &l)
		e.add(int32(i%12), int64(i/12), &l, err == nil)
	}
	var bytes int64
	b.ResetTimer()
	for range b.N {
		s, err := New(Config{Brokers: []string{"unused:9092"}, Dir: b.TempDir(), InstanceID: "bench"})
		if err != nil {
			b.Fatal(err)
		}
		m, err := s.stage(e, newEpochID(time.Now()))
		if err != nil {
			b.Fatal(err)
		}
		if err := s.publish(m); err != nil {
			b.Fatal(err)
		}
		bytes = 0
		for _, f := range m.Files {
			bytes += f.Bytes
		}
	}
	b.ReportMetric(float64(e.rows)*float64(b.N)/b.Elapsed().Seconds(), "listens/s")
	b.ReportMetric(float64(bytes)/float64(e.rows), "bytes/listen")
}
