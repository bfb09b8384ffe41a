package e2e

import (
	"context"
	"fmt"
	"io/fs"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/kappa-stream/kappa/generate"
	"github.com/kappa-stream/kappa/sinks/parquet"
)

// sinkBenchEpochRows is the sink's epoch size in BenchmarkSink.
const sinkBenchEpochRows = 250_000

// BenchmarkSink measures the Parquet sink on the 2,000,000-event backlog
// of BenchmarkEndToEnd, beside the rollups in the same run: a `kappa up`
// process (embedded broker) takes the events and catches up; then a
// second `kappa up --brokers` builds a fresh version with the rollups
// only (--live-windows off), and then the sink alone (in the benchmark's
// process, default epochs) writes the whole log into a fresh lake. It
// reports each rate in events/s, the sink's bytes per valid listen, and
// sink/rollups, the ratio of the rates (the goal is at least 1). The
// sink's epochs end at sinkBenchEpochRows listens or 10 s; its rate is
// that of its full epochs (the last one, shorter, waits for the time
// bound).
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
		s, err := parquet.New(parquet.Config{Brokers: []string{kafka}, Dir: lake, InstanceID: "bench",
			EpochRows: sinkBenchEpochRows, EpochInterval: 10 * time.Second})
		if err != nil {
			b.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		start := time.Now()
		go func() { done <- s.Run(ctx) }()
		// NB: the last epoch, short of the row bound, waits for the
		// time bound; the rate is that of the full epochs.
		full := int64(benchEvents*99/100/sinkBenchEpochRows) * sinkBenchEpochRows
		waitFor(b, 10*time.Minute, "the sink's full epochs", func() (bool, string) {
			select {
			case err := <-done:
				b.Fatalf("sink stopped: %v", err)
			default:
			}
			rows := s.Status().Totals.Rows
			return rows >= full, fmt.Sprintf("%d of %d rows", rows, full)
		})
		sink := time.Since(start)
		st := s.Status()
		var events int64
		for _, p := range st.Partitions {
			events += p.Committed
		}
		waitSinkCaughtUp(b, kafka, lake, benchEvents, 5*time.Minute, func() {}, "bench")
		cancel()
		if err := <-done; err != nil {
			b.Fatal(err)
		}
		up.stop(b, syscall.SIGTERM)

		total := s.Status().Totals
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
		sinkRate := float64(events) / sink.Seconds()
		b.ReportMetric(sinkRate, "sink-events/s")
		b.ReportMetric(float64(st.Totals.Rows)/sink.Seconds(), "sink-listens/s")
		b.ReportMetric(float64(size)/float64(total.Rows), "bytes/listen")
		b.ReportMetric(float64(total.Files), "files")
		b.ReportMetric(sinkRate/(benchEvents/rollups.Seconds()), "sink/rollups")
	}
}
