package e2e

import (
	"bufio"
	"bytes"
	"context"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kappa-stream/kappa/generate"
)

// benchEvents is the size of the end-to-end benchmark's input.
const benchEvents = 2_000_000

// BenchmarkEndToEnd measures kappa on 2,000,000 generated events:
//
//   - ingest: the whole `kappa up` process (embedded broker, processors,
//     HTTP) while the benchmark generates the events and produces them
//     with franz-go, as an upstream service would; the clock runs from the
//     first produce until the group's lag is 0;
//   - backlog: a second `kappa up --brokers` process builds a fresh
//     version (new group, empty store) from the whole log, served by the
//     first process's broker, until its lag is 0 (a deployment of its own:
//     its own control topic, so the first process does not run it too):
//     with the rollups only
//     (--live-windows off: the job the peer benchmarks do), with the
//     rollups and the fan zones ("fans"; the ratio of the two rates is
//     fans/rollups), and with every processor ("all": --fan-zones).
//
// It reports events/s for each and the peak RSS of each process. Run it
// with -benchtime=1x; `make bench` does.
func BenchmarkEndToEnd(b *testing.B) {
	cfg := generate.Config{Seed: 7, Events: benchEvents, MalformedRate: 0.005, LiveDrop: true}
	for i := 0; i < b.N; i++ {
		kafka, httpAddr := freeAddr(b), freeAddr(b)
		up := startKappa(b, "bench-up.log", "up", "--data", b.TempDir(), "--kafka-addr", kafka, "--http", httpAddr)
		waitReady(b, httpAddr)

		start := time.Now()
		produceGenerated(b, kafka, cfg)
		produced := time.Since(start)
		waitCaughtUp(b, kafka, benchEvents, 5*time.Minute)
		ingest := time.Since(start)
		rss := peakRSS(b, up.cmd.Process.Pid)

		backlog, rssBacklog := backlogRun(b, kafka, "v2", "--live-windows", "off")
		backlogFans, _ := backlogRun(b, kafka, "v3", "--live-windows", "off", "--fan-zones")
		backlogAll, rssBacklogAll := backlogRun(b, kafka, "v4", "--fan-zones")
		up.stop(b, syscall.SIGTERM)

		b.ReportMetric(benchEvents/ingest.Seconds(), "ingest-events/s")
		b.ReportMetric(benchEvents/produced.Seconds(), "produce-events/s")
		b.ReportMetric(benchEvents/backlog.Seconds(), "backlog-events/s")
		b.ReportMetric(benchEvents/backlogFans.Seconds(), "backlog-fans-events/s")
		b.ReportMetric(backlog.Seconds()/backlogFans.Seconds(), "fans/rollups")
		b.ReportMetric(benchEvents/backlogAll.Seconds(), "backlog-all-events/s")
		b.ReportMetric(float64(rss)/(1<<20), "up-peak-rss-MiB")
		b.ReportMetric(float64(rssBacklog)/(1<<20), "backlog-peak-rss-MiB")
		b.ReportMetric(float64(rssBacklogAll)/(1<<20), "backlog-all-peak-rss-MiB")
	}
}

// backlogRun runs a second `kappa up --brokers` process with extra args
// that builds version from the whole log (listens and, with --similar,
// song-features); it returns how long until every stage's lag was 0, no
// user waited to be published and its store held all of it, and its peak
// RSS.
func backlogRun(b *testing.B, brokers, version string, args ...string) (time.Duration, int64) {
	b.Helper()
	httpAddr := freeAddr(b)
	p := startKappa(b, "bench-up-"+version+".log", append([]string{"up", "--brokers", brokers, "--data", b.TempDir(),
		"--http", httpAddr, "--version", version, "--instance-id", "bench-" + version,
		"--control-topic", "kappa.control.bench-" + version}, args...)...)
	start := time.Now()
	if slices.Contains(args, "--similar") {
		waitGroupCaughtUp(b, brokers, "kappa."+version+".features", "song-features")
	}
	waitVersionCaughtUp(b, brokers, version, benchEvents, 10*time.Minute, httpAddr)
	took := time.Since(start)
	rss := peakRSS(b, p.cmd.Process.Pid)
	p.stop(b, syscall.SIGTERM)
	return took, rss
}

// produceGenerated generates cfg's events and produces them, keyed by
// user, waiting for every acknowledgement.
func produceGenerated(b *testing.B, brokers string, cfg generate.Config) {
	b.Helper()
	g, err := generate.New(cfg)
	if err != nil {
		b.Fatal(err)
	}
	cl := newProducer(b, brokers, 5*time.Millisecond)
	defer cl.Close()
	var failed atomic.Int64
	for range cfg.Events {
		line, _ := g.Next(nil)
		cl.Produce(context.Background(), &kgo.Record{Key: g.Key(nil), Value: line}, func(_ *kgo.Record, err error) {
			if err != nil {
				failed.Add(1)
			}
		})
	}
	if err := cl.Flush(context.Background()); err != nil {
		b.Fatal(err)
	}
	if n := failed.Load(); n > 0 {
		b.Fatalf("%d records failed to produce", n)
	}
}

// peakRSS reads the process's peak resident set size (VmHWM) in bytes.
func peakRSS(b *testing.B, pid int) int64 {
	b.Helper()
	f, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		b.Fatal(err)
	}
	sc := bufio.NewScanner(bytes.NewReader(f))
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "VmHWM:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
			if err != nil {
				b.Fatal(err)
			}
			return kb << 10
		}
	}
	b.Fatal("no VmHWM in /proc status")
	return 0
}
