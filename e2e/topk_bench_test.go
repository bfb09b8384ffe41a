package e2e

import (
	"context"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kappa-stream/kappa/generate"
)

// BenchmarkTopK measures top-K on BenchmarkEndToEnd's 2,000,000 events
// (seed 7, 7 days from generate.DefaultStart):
//
//   - query latency p50/p99 of GET /v1/top/artists and /v1/top/songs
//     over a 31-day range holding every event, k = 100, over all
//     countries and over SE, while `kappa up --top-k` ingests more
//     events (another seed, the same days) at 10,000 events/s: one
//     client per core, each sending its next query when the last is
//     answered, 10 s per kind;
//   - the ingest impact: a second process builds a fresh version from the
//     whole log with the rollups only (--live-windows off), with the
//     rollups and top-K (--top-k) and with the artists' songs too
//     (--top-k-artist-songs), side by side, twice; events/s of each and
//     the ratios of their total times (the bound: ≥ 0.85).
func BenchmarkTopK(b *testing.B) {
	cfg := generate.Config{Seed: 7, Events: benchEvents, MalformedRate: 0.005, LiveDrop: true}
	for i := 0; i < b.N; i++ {
		kafka, httpAddr := freeAddr(b), freeAddr(b)
		up := startKappa(b, "bench-topk.log", "up", "--data", b.TempDir(), "--kafka-addr", kafka, "--http", httpAddr, "--top-k")
		waitReady(b, httpAddr)
		produceGenerated(b, kafka, cfg)
		waitCaughtUp(b, kafka, benchEvents, 10*time.Minute, httpAddr)

		// NB: before the ingest of the query phase: a backlog run builds
		// a version of the first benchEvents records. Two rounds, each
		// side by side, so that a change of the machine's load weighs on
		// both kinds alike.
		var rollups, withTop, withSongs time.Duration
		for round := range 2 {
			v := func(k int) string { return "v" + itoa(int64(2+3*round+k)) }
			took, _ := backlogRun(b, kafka, v(0), "--live-windows", "off")
			rollups += took
			took, _ = backlogRun(b, kafka, v(1), "--live-windows", "off", "--top-k")
			withTop += took
			took, _ = backlogRun(b, kafka, v(2), "--live-windows", "off", "--top-k", "--top-k-artist-songs")
			withSongs += took
		}

		from := generate.DefaultStart.Format("2006-01-02")
		to := generate.DefaultStart.AddDate(0, 0, 30).Format("2006-01-02")
		ingest := startIngest(b, kafka, generate.Config{Seed: 8, Events: 10 * benchEvents}, 10_000)
		lat := map[string]latency{}
		for _, kind := range []string{"all", "SE"} {
			var paths []string
			for _, e := range []string{"artists", "songs"} {
				p := "/v1/top/" + e + "?from=" + from + "&to=" + to + "&k=100"
				if kind == "SE" {
					p += "&country=SE"
				}
				paths = append(paths, p)
			}
			lat[kind] = topLatency(b, httpAddr, paths)
		}
		ingested := ingest.stop(b)
		up.stop(b, syscall.SIGTERM)

		b.ReportMetric(lat["all"].p50, "all-p50-ms")
		b.ReportMetric(lat["all"].p99, "all-p99-ms")
		b.ReportMetric(lat["all"].qps, "all-q/s")
		b.ReportMetric(lat["SE"].p50, "SE-p50-ms")
		b.ReportMetric(lat["SE"].p99, "SE-p99-ms")
		b.ReportMetric(lat["SE"].qps, "SE-q/s")
		b.ReportMetric(ingested, "query-ingest-events/s")
		b.ReportMetric(2*benchEvents/rollups.Seconds(), "backlog-rollups-events/s")
		b.ReportMetric(2*benchEvents/withTop.Seconds(), "backlog-topk-events/s")
		b.ReportMetric(2*benchEvents/withSongs.Seconds(), "backlog-topk-songs-events/s")
		b.ReportMetric(rollups.Seconds()/withTop.Seconds(), "topk/rollups")
		b.ReportMetric(rollups.Seconds()/withSongs.Seconds(), "topk-songs/rollups")
	}
}

// ingest produces generated events at a steady rate until stopped.
type ingest struct {
	cancel   context.CancelFunc
	done     chan struct{}
	produced atomic.Int64
	start    time.Time
}

// startIngest produces cfg's events into listens at rate events/s.
func startIngest(b *testing.B, brokers string, cfg generate.Config, rate int) *ingest {
	b.Helper()
	g, err := generate.New(cfg)
	if err != nil {
		b.Fatal(err)
	}
	cl := newProducer(b, brokers, 5*time.Millisecond)
	ctx, cancel := context.WithCancel(context.Background())
	in := &ingest{cancel: cancel, done: make(chan struct{}), start: time.Now()}
	go func() {
		defer close(in.done)
		defer cl.Close()
		const tick = 10 * time.Millisecond
		ticker := time.NewTicker(tick)
		defer ticker.Stop()
		for n := 0; n < cfg.Events; {
			for range rate / int(time.Second/tick) {
				line, _ := g.Next(nil)
				cl.Produce(ctx, &kgo.Record{Key: g.Key(nil), Value: line}, nil)
				n++
			}
			in.produced.Store(int64(n))
			select {
			case <-ticker.C:
			case <-ctx.Done():
				return
			}
		}
	}()
	return in
}

// stop stops producing and returns the rate produced.
func (in *ingest) stop(b *testing.B) float64 {
	b.Helper()
	in.cancel()
	<-in.done
	return float64(in.produced.Load()) / time.Since(in.start).Seconds()
}

// topLatency runs one client per core for 10 s, each querying the paths
// in turn, and returns the latency percentiles in ms.
func topLatency(b *testing.B, httpAddr string, paths []string) latency {
	b.Helper()
	const run = 10 * time.Second
	var (
		mu   sync.Mutex
		took []time.Duration
		wg   sync.WaitGroup
	)
	ctx, cancel := context.WithTimeout(context.Background(), run)
	defer cancel()
	start := time.Now()
	for w := range runtime.NumCPU() {
		wg.Go(func() {
			c := newClient(httpAddr)
			var mine []time.Duration
			for i := w; ctx.Err() == nil; i++ {
				t0 := time.Now()
				var a topAnswer
				if _, err := c.getJSON(paths[i%len(paths)], &a); err != nil {
					b.Error(err)
					return
				}
				if len(a.Top) != 100 {
					b.Errorf("%s: %d answers, want 100", paths[i%len(paths)], len(a.Top))
					return
				}
				mine = append(mine, time.Since(t0))
			}
			mu.Lock()
			took = append(took, mine...)
			mu.Unlock()
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	if len(took) == 0 {
		b.Fatalf("%v: no answer", paths)
	}
	slices.Sort(took)
	return latency{p50: ms(percentile(took, 0.50)), p99: ms(percentile(took, 0.99)), qps: float64(len(took)) / elapsed.Seconds()}
}
