package e2e

import (
	"context"
	"os"
	"regexp"
	"slices"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/kappa-stream/kappa/generate"
)

// cutoverRE finds the cutover time in kappa replay's output.
var cutoverRE = regexp.MustCompile(`cutover: \d+ instance\(s\) serve v\d+, (\d+) ms after the switch`)

// BenchmarkReplay measures the Kappa cycle on 2,000,000 generated events
// already in the log and counted by v1 (`kappa process`, every processor:
// --fan-zones):
//
//   - replay: `kappa replay --from earliest` builds v2 with every
//     processor and transactions on, from the command's start until it
//     reports v2 caught up with its stores applied (events/s of the log);
//   - cutover: `kappa replay --version vN --cutover` five times, between
//     v2 and v1: from writing the serving pointer until the instance
//     serves the version (the command's own measure), p50 and max;
//   - restore: the instance restarts with an empty data directory and
//     restores the stores of both versions from their changelogs; records
//     per second until no partition is restoring.
//
// Run it with -benchtime=1x; `make bench` does.
func BenchmarkReplay(b *testing.B) {
	cfg := generate.Config{Seed: 7, Events: benchEvents, MalformedRate: 0.005, LiveDrop: true}
	for range b.N {
		br := startBroker(b, memDir(b), "127.0.0.1:0")
		kafka := br.Addr()
		createTopics(b, kafka)
		produceGenerated(b, kafka, cfg)
		in := newInstance(b, kafka, "bench")
		in.args = append(in.args, "--fan-zones")
		in.start(b)
		waitCaughtUp(b, kafka, benchEvents, 10*time.Minute, in.http)

		start := time.Now()
		runKappa(b, 10*time.Minute, "replay", "--brokers", kafka, "--from", "earliest")
		replay := time.Since(start)

		var cutovers []float64
		for i := range 5 {
			v := "v2"
			if i%2 == 1 {
				v = "v1"
			}
			out := runKappa(b, time.Minute, "replay", "--brokers", kafka, "--version", v, "--cutover")
			m := cutoverRE.FindStringSubmatch(out)
			if m == nil {
				b.Fatalf("no cutover time in:\n%s", out)
			}
			ms, _ := strconv.ParseFloat(m[1], 64)
			cutovers = append(cutovers, ms)
		}
		slices.Sort(cutovers)
		rss := peakRSS(b, in.p.cmd.Process.Pid)

		in.p.stop(b, syscall.SIGTERM)
		records := changelogRecords(b, kafka)
		if err := os.RemoveAll(in.dataDir()); err != nil {
			b.Fatal(err)
		}
		start = time.Now()
		in.start(b)
		waitRestored(b, in.http, 2)
		restore := time.Since(start)
		in.p.stop(b, syscall.SIGTERM)

		b.ReportMetric(benchEvents/replay.Seconds(), "replay-events/s")
		b.ReportMetric(cutovers[len(cutovers)/2], "cutover-p50-ms")
		b.ReportMetric(cutovers[len(cutovers)-1], "cutover-max-ms")
		b.ReportMetric(float64(records)/restore.Seconds(), "restore-records/s")
		b.ReportMetric(restore.Seconds(), "restore-s")
		b.ReportMetric(float64(rss)/(1<<20), "peak-rss-MiB")
	}
}

// changelogRecords is the number of offsets in every changelog topic.
func changelogRecords(b *testing.B, kafka string) int64 {
	b.Helper()
	adm := newAdmin(b, kafka)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	topics, err := adm.ListTopics(ctx)
	if err != nil {
		b.Fatal(err)
	}
	var changelogs []string
	for _, name := range topics.Names() {
		if regexp.MustCompile(`^kappa\.v\d+\.(rollups|users)-changelog$`).MatchString(name) {
			changelogs = append(changelogs, name)
		}
	}
	starts, err := adm.ListStartOffsets(ctx, changelogs...)
	if err != nil {
		b.Fatal(err)
	}
	ends, err := adm.ListEndOffsets(ctx, changelogs...)
	if err != nil {
		b.Fatal(err)
	}
	var n int64
	for _, o := range ends.Offsets().Sorted() {
		s, _ := starts.Lookup(o.Topic, o.Partition)
		n += o.At - s.Offset
	}
	return n
}

// waitRestored waits until the instance at addr runs the given number of
// versions with all twelve partitions of each stage and none restoring.
func waitRestored(b *testing.B, addr string, versions int) {
	b.Helper()
	waitFor(b, 10*time.Minute, "the stores to be restored", func() (bool, string) {
		st, err := fetchStatus(addr)
		if err != nil {
			return false, err.Error()
		}
		if len(st.Versions) != versions {
			return false, strconv.Itoa(len(st.Versions)) + " versions"
		}
		for _, v := range st.Versions {
			for _, s := range v.Stages {
				if len(s.Partitions) != listensPartitions {
					return false, strconv.Itoa(len(s.Partitions)) + " partitions"
				}
				for _, p := range s.Partitions {
					if p.Restoring {
						return false, "restoring"
					}
				}
			}
		}
		return true, ""
	})
}
