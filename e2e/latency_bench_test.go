package e2e

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kappa-stream/kappa/generate"
)

// liveRate is the background load of the latency benchmarks, events/s.
const liveRate = 50_000

// liveLoad produces generated events at rate until ctx ends; event times
// follow the wall clock, as in production.
func liveLoad(ctx context.Context, b *testing.B, cl *kgo.Client, rate int) {
	g, err := generate.New(generate.Config{Seed: 11, Start: time.Now().UTC(), Span: time.Hour, Events: rate * 3600})
	if err != nil {
		b.Error(err)
		return
	}
	start := time.Now()
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	sent := 0
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-tick.C:
			due := int(now.Sub(start).Seconds() * float64(rate))
			for ; sent < due; sent++ {
				line, _ := g.Next(nil)
				cl.Produce(ctx, &kgo.Record{Key: g.Key(nil), Value: line}, nil)
			}
		}
	}
}

// newProducer is a producer of listens with the given linger: short for
// the latency benchmarks, longer (bigger batches) for throughput.
func newProducer(b *testing.B, brokers string, linger time.Duration) *kgo.Client {
	b.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers), kgo.DefaultProduceTopic("listens"),
		kgo.ProducerBatchCompression(kgo.NoCompression()), kgo.MaxBufferedRecords(200_000),
		kgo.ProducerLinger(linger))
	if err != nil {
		b.Fatal(err)
	}
	return cl
}

func percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	return sorted[min(int(p*float64(len(sorted))), len(sorted)-1)]
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// BenchmarkFreshness measures the time from producing a listen to seeing
// it counted by the plays endpoint, while `kappa up` ingests 50,000
// background events/s.
func BenchmarkFreshness(b *testing.B) {
	// NB: from yesterday to tomorrow, so that a run at midnight finds
	// its listens.
	now := time.Now().UTC()
	from, to := now.AddDate(0, 0, -1).Format("2006-01-02"), now.AddDate(0, 0, 1).Format("2006-01-02")
	measureFreshness(b, liveRate, func(c *client, song int64) (bool, string) {
		var a playsAnswer
		_, err := c.getJSON(fmt.Sprintf("/v1/songs/%d/plays?from=%s&to=%s", song, from, to), &a)
		return err == nil && a.Plays == 1, fmt.Sprintf("%+v, %v", a, err)
	})
}

// measureFreshness starts `kappa up`, produces rate background events/s
// and, once a warm-up listen is visible, every 50 ms one marker listen of
// a song nobody else plays, and polls that song until visible says its
// play is counted (and else what it saw). It reports the p50, p99 and
// largest delay.
func measureFreshness(b *testing.B, rate int, visible func(c *client, song int64) (bool, string)) {
	for i := 0; i < b.N; i++ {
		kafka, httpAddr := freeAddr(b), freeAddr(b)
		up := startKappa(b, "fresh-up.log", "up", "--data", b.TempDir(), "--kafka-addr", kafka, "--http", httpAddr)
		waitReady(b, httpAddr)
		bg, markers := newProducer(b, kafka, time.Millisecond), newProducer(b, kafka, time.Millisecond)
		ctx, cancel := context.WithCancel(context.Background())
		var wg sync.WaitGroup
		wg.Add(1)
		go func() { defer wg.Done(); liveLoad(ctx, b, bg, rate) }()

		const n = 200
		lat := make([]time.Duration, n)
		var failed atomic.Int64
		c := newClient(httpAddr)
		// NB: the first listen waits for the stages' first transactions
		// (producer ids, partitions joining them); measure after it.
		warm := int64(8_999_999_999) - int64(i)
		markers.Produce(ctx, &kgo.Record{Key: []byte("1"), Value: []byte(fmt.Sprintf(
			`{"user_id":1,"song_id":%d,"artist_id":1,"ts":%d}`, warm, time.Now().UnixMilli()))}, nil)
		waitFor(b, time.Minute, "the warm-up listen counted", func() (bool, string) {
			return visible(c, warm)
		})
		var pollers sync.WaitGroup
		pace := time.NewTicker(50 * time.Millisecond)
		for m := range n {
			<-pace.C
			song := int64(9_000_000_000) + int64(i*n+m)
			line := fmt.Sprintf(`{"user_id":%d,"song_id":%d,"artist_id":1,"ts":%d,"ms_played":1000}`, m+1, song, time.Now().UnixMilli())
			sent := time.Now()
			markers.Produce(ctx, &kgo.Record{Key: []byte(fmt.Sprint(m + 1)), Value: []byte(line)}, nil)
			pollers.Add(1)
			go func() {
				defer pollers.Done()
				for deadline := sent.Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(2 * time.Millisecond) {
					if ok, _ := visible(c, song); ok {
						lat[m] = time.Since(sent)
						return
					}
				}
				failed.Add(1)
			}()
		}
		pace.Stop()
		pollers.Wait()
		cancel()
		wg.Wait()
		bg.Close()
		markers.Close()
		up.stop(b, syscall.SIGTERM)
		if failed.Load() > 0 {
			b.Fatalf("%d of %d markers never became visible", failed.Load(), n)
		}
		slices.Sort(lat)
		b.ReportMetric(ms(percentile(lat, 0.50)), "p50-ms")
		b.ReportMetric(ms(percentile(lat, 0.99)), "p99-ms")
		b.ReportMetric(ms(lat[len(lat)-1]), "max-ms")
	}
}

// BenchmarkQueryLatency measures the plays endpoint under 8 concurrent
// clients for 10 s while `kappa up` ingests 50,000 events/s, over songs
// and artists drawn from the generated catalogue, by day and by country.
func BenchmarkQueryLatency(b *testing.B) {
	for i := 0; i < b.N; i++ {
		kafka, httpAddr := freeAddr(b), freeAddr(b)
		up := startKappa(b, "query-up.log", "up", "--data", b.TempDir(), "--kafka-addr", kafka, "--http", httpAddr)
		waitReady(b, httpAddr)
		bg := newProducer(b, kafka, time.Millisecond)
		ctx, cancel := context.WithCancel(context.Background())
		var wg sync.WaitGroup
		wg.Add(1)
		go func() { defer wg.Done(); liveLoad(ctx, b, bg, liveRate) }()
		adm := newAdmin(b, kafka)
		waitFor(b, time.Minute, "100,000 events processed before measuring", func() (bool, string) {
			committed, _, _, err := groupProgress(context.Background(), adm, usersGroup, "listens")
			return err == nil && committed >= 100_000, fmt.Sprint(committed, err)
		})

		const clients, duration = 8, 10 * time.Second
		day := time.Now().UTC().Format("2006-01-02")
		var (
			mu     sync.Mutex
			lat    []time.Duration
			errors atomic.Int64
		)
		end := time.Now().Add(duration)
		var cw sync.WaitGroup
		for c := range clients {
			cw.Add(1)
			go func() {
				defer cw.Done()
				r := rand.New(rand.NewPCG(uint64(c), 99))
				hc := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 1}}
				var mine []time.Duration
				for time.Now().Before(end) {
					kind, id := "songs", 1+r.IntN(2_000)
					if r.IntN(4) == 0 {
						kind, id = "artists", 1+r.IntN(5_000)
					}
					by := []string{"day", "country"}[r.IntN(2)]
					url := fmt.Sprintf("http://%s/v1/%s/%d/plays?from=%s&to=%s&by=%s", httpAddr, kind, id, day, day, by)
					t0 := time.Now()
					resp, err := hc.Get(url)
					if err != nil {
						errors.Add(1)
						continue
					}
					_, _ = io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					if resp.StatusCode != http.StatusOK {
						errors.Add(1)
						continue
					}
					mine = append(mine, time.Since(t0))
				}
				mu.Lock()
				lat = append(lat, mine...)
				mu.Unlock()
			}()
		}
		cw.Wait()
		cancel()
		wg.Wait()
		bg.Close()
		up.stop(b, syscall.SIGTERM)
		if errors.Load() > 0 {
			b.Fatalf("%d queries failed", errors.Load())
		}
		slices.Sort(lat)
		b.ReportMetric(float64(len(lat))/duration.Seconds(), "queries/s")
		b.ReportMetric(ms(percentile(lat, 0.50)), "p50-ms")
		b.ReportMetric(ms(percentile(lat, 0.99)), "p99-ms")
		b.ReportMetric(ms(percentile(lat, 0.999)), "p999-ms")
	}
}
