package e2e

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"strconv"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// BenchmarkLiveFreshness measures the time from producing a listen to
// seeing it in its song's current window of /live, while `kappa up`
// ingests 100,000 background events/s.
func BenchmarkLiveFreshness(b *testing.B) {
	// NB: the last two windows, as the newest is that of the largest
	// event time the partition has seen, which may have passed into the
	// next minute by the time the listen is counted.
	measureFreshness(b, 100_000, func(c *client, song int64) (bool, string) {
		var a liveAnswer
		_, err := c.getJSON("/v1/songs/"+itoa(song)+"/live?last=2", &a)
		plays := int64(0)
		for _, w := range a.Windows {
			plays += w.Plays
		}
		return err == nil && plays == 1, fmt.Sprintf("%+v, %v", a, err)
	})
}

// hotKeyEvents is the size of each of BenchmarkHotKey's logs.
const hotKeyEvents = 2_000_000

// BenchmarkHotKey compares the backlog throughput of one `kappa process`
// (both stages, every processor) on two logs of 2,000,000 listens that
// differ only in their songs: drawn uniformly from 200,000, or half of
// them of one song — a live drop on top of normal traffic. It reports
// both rates and hot/uniform.
func BenchmarkHotKey(b *testing.B) {
	for i := 0; i < b.N; i++ {
		uniform := backlogRate(b, hotKeyEvents, 0)
		hot := backlogRate(b, hotKeyEvents, 0.5)
		b.ReportMetric(uniform, "uniform-events/s")
		b.ReportMetric(hot, "hot-events/s")
		b.ReportMetric(hot/uniform, "hot/uniform")
	}
}

// memDir is a new directory in memory (/dev/shm) when the machine has
// one, else on disk: BenchmarkHotKey compares processing costs, which the
// disk's noise would swamp.
func memDir(b *testing.B) string {
	b.Helper()
	dir, err := os.MkdirTemp("/dev/shm", "kappa-bench-")
	if err != nil {
		return b.TempDir()
	}
	b.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

// backlogRate produces n listens to a new in-test broker, the share hot
// of them of song 1 and the others of songs drawn uniformly from 200,000,
// by users drawn from 100,000, with event times over an hour; then it
// starts `kappa process` and returns the events/s from its start until
// both its stages have committed everything.
func backlogRate(b *testing.B, n int, hot float64) float64 {
	b.Helper()
	br := startBroker(b, memDir(b), "127.0.0.1:0")
	kafka := br.Addr()
	createTopics(b, kafka)
	cl := newProducer(b, kafka, 5*time.Millisecond)
	defer cl.Close()
	rng := rand.New(rand.NewPCG(1, 2))
	start := time.Now().Add(-time.Hour).UnixMilli()
	var failed atomic.Int64
	for k := range n {
		user, song := 1+rng.Int64N(100_000), 1+rng.Int64N(200_000)
		if rng.Float64() < hot {
			song = 1
		}
		line := fmt.Appendf(nil, `{"user_id":%d,"song_id":%d,"artist_id":%d,"ts":%d,"ms_played":%d,"country":"GB"}`,
			user, song, 1+song%5_000, start+int64(k)*3_600_000/int64(n), rng.IntN(300_000))
		cl.Produce(context.Background(), &kgo.Record{Key: strconv.AppendInt(nil, user, 10), Value: line}, func(_ *kgo.Record, err error) {
			if err != nil {
				failed.Add(1)
			}
		})
	}
	if err := cl.Flush(context.Background()); err != nil || failed.Load() > 0 {
		b.Fatalf("producing: %v, %d records failed", err, failed.Load())
	}
	in := newInstance(b, kafka, "bench")
	in.args = append(in.args, "--data", memDir(b))
	t0 := time.Now()
	in.start(b)
	waitCaughtUp(b, kafka, int64(n), 5*time.Minute)
	took := time.Since(t0)
	in.p.stop(b, syscall.SIGTERM)
	return float64(n) / took.Seconds()
}
