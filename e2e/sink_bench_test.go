package e2e

import (
	"context"
	"io/fs"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/kappa-stream/kappa/generate"
	"github.com/kappa-stream/kappa/sinks/parquet"
)

// BenchmarkSink measures the Parquet sink on the 2,000,000-event backlog
// of BenchmarkEndToEnd, beside the rollups in the same run: a `kappa up`
// process (embedded broker) takes the events and catches up; then a
// second `kappa up --brokers` builds a fresh version with the rollups
// only (--live-windows off), and then the sink alone (in the benchmark's
// process, default epochs) writes the whole log into a fresh lake. It
// reports each rate in events/s, the sink's bytes per valid listen, and
// sink/rollups, the ratio of the rates (the goal is at least 1).
func BenchmarkSink(b *testing.B) {
	cfg := generate.Config{Seed: 7, Events: benchEvents, MalformedRate: 0.005, LiveDrop: true}
	for i := 0; i < b.N; i++ {
		kafka, httpAddr := freeAddr(b), freeAddr(b)
		up := startKappa(b, "bench-up.log", "up", "--data", b.TempDir(), "--kafka-addr", kafka, "--http", httpAddr)
		waitReady(b, httpAddr)
		produceGenerated(b, kafka, cfg)
		waitCaughtUp(b, kafka, benchEvents, 5*time.Minute)

		rollups, _ := backlogRun(b, kafka, "v2", "--live-windows", "off")

		lake := b.TempDir()
		s, err := parquet.New(parquet.Config{Brokers: []string{kafka}, Dir: lake, InstanceID: "bench"})
		if err != nil {
			b.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		start := time.Now()
		go func() { done <- s.Run(ctx) }()
		waitSinkCaughtUp(b, kafka, lake, "bench", benchEvents, 10*time.Minute, func() {
			select {
			case err := <-done:
				b.Fatalf("sink stopped: %v", err)
			default:
			}
		})
		sink := time.Since(start)
		cancel()
		if err := <-done; err != nil {
			b.Fatal(err)
		}
		up.stop(b, syscall.SIGTERM)

		st := s.Status().Totals
		var size int64
		if err := filepath.WalkDir(filepath.Join(lake, "listens"), func(_ string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() {
				return err
			}
			info, err := d.Info()
			size += info.Size()
			return err
		}); err != nil {
			b.Fatal(err)
		}
		b.ReportMetric(benchEvents/rollups.Seconds(), "backlog-events/s")
		b.ReportMetric(benchEvents/sink.Seconds(), "sink-events/s")
		b.ReportMetric(float64(st.Rows)/sink.Seconds(), "sink-listens/s")
		b.ReportMetric(float64(size)/float64(st.Rows), "bytes/listen")
		b.ReportMetric(float64(st.Files), "files")
		b.ReportMetric(rollups.Seconds()/sink.Seconds(), "sink/rollups")
	}
}
