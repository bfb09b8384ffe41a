package e2e

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// Shape of BenchmarkLiveStreams.
const (
	streamClients = 10_000
	streamIngest  = 20_000 // background listens/s
	streamMeasure = 20 * time.Second
)

// BenchmarkLiveStreams opens 10,000 server-sent event streams of one
// song's live windows (GET /v1/songs/{id}/live/events?window=1m&last=3,
// as the live view asks) on `kappa up` while it ingests 20,000 listens/s and the
// song gets 20 listens/s of its own, all on loopback. Over 20 s it
// reports the delivery delay of the updates (from the server's read that
// found the change, which the event's id carries, to a client's
// receipt: p50, p99, max), the updates a client missed (a slow stream
// gets the latest update instead of a backlog), and the server's extra
// CPU (against the same time with ingest alone) per 1,000 clients.
func BenchmarkLiveStreams(b *testing.B) {
	for i := 0; i < b.N; i++ {
		kafka, httpAddr := freeAddr(b), freeAddr(b)
		up := startKappa(b, "streams-up.log", "up", "--data", memDir(b), "--kafka-addr", kafka, "--http", httpAddr)
		waitReady(b, httpAddr)
		bg, marks := newProducer(b, kafka, 5*time.Millisecond), newProducer(b, kafka, time.Millisecond)
		ctx, cancel := context.WithCancel(context.Background())
		var load sync.WaitGroup
		load.Go(func() { liveLoad(ctx, b, bg, streamIngest) })
		song := int64(7_000_000_000) + int64(i)
		load.Go(func() { songLoad(ctx, marks, song, 20) })
		c := newClient(httpAddr)
		waitFor(b, time.Minute, "the song's first window", func() (bool, string) {
			var a liveAnswer
			_, err := c.getJSON("/v1/songs/"+itoa(song)+"/live?last=1", &a)
			return err == nil && len(a.Windows) == 1, fmt.Sprint(a, err)
		})

		// Ingest alone, then with the streams, for the same time.
		pid := up.cmd.Process.Pid
		base0 := procCPU(b, pid)
		time.Sleep(streamMeasure)
		baseline := procCPU(b, pid) - base0

		streams := openStreams(ctx, b, httpAddr, song, streamClients)
		start := time.Now()
		cpu0 := procCPU(b, pid)
		time.Sleep(streamMeasure)
		cpu := procCPU(b, pid) - cpu0
		end := time.Now()
		// NB: updates read in the last second may still be on their way.
		time.Sleep(2 * time.Second)
		cancel()
		streams.wait()
		load.Wait()
		bg.Close()
		marks.Close()
		up.stop(b, syscall.SIGTERM)

		delays, missed, updates := streams.results(start, end.Add(-time.Second))
		if updates == 0 || len(delays) == 0 {
			b.Fatalf("no update in the measured time (%d clients connected)", streams.connected.Load())
		}
		slices.Sort(delays)
		q := func(p float64) float64 {
			return float64(delays[int(p*float64(len(delays)-1))]) / float64(time.Millisecond)
		}
		b.ReportMetric(float64(streams.connected.Load()), "clients")
		b.ReportMetric(float64(updates), "updates")
		b.ReportMetric(q(0.5), "delivery-p50-ms")
		b.ReportMetric(q(0.99), "delivery-p99-ms")
		b.ReportMetric(q(1), "delivery-max-ms")
		b.ReportMetric(float64(missed), "missed")
		b.ReportMetric((cpu-baseline).Seconds()/streamMeasure.Seconds()/(float64(streamClients)/1000), "cpu-cores/1k-clients")
		b.ReportMetric(baseline.Seconds()/streamMeasure.Seconds(), "cpu-cores-ingest")
	}
}

// songLoad produces rate listens/s of song, timed now, until ctx ends.
func songLoad(ctx context.Context, cl *kgo.Client, song int64, rate int) {
	tick := time.NewTicker(time.Second / time.Duration(rate))
	defer tick.Stop()
	for user := 1; ; user++ {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		cl.Produce(ctx, &kgo.Record{Key: []byte(strconv.Itoa(user)), Value: fmt.Appendf(nil,
			`{"user_id":%d,"song_id":%d,"artist_id":1,"ts":%d}`, user, song, time.Now().UnixMilli())}, nil)
	}
}

// procCPU is the user and system CPU time process pid has used.
func procCPU(b *testing.B, pid int) time.Duration {
	b.Helper()
	stat, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		b.Fatal(err)
	}
	// NB: fields after the command name, which is in parentheses.
	f := strings.Fields(string(stat[strings.LastIndexByte(string(stat), ')')+2:]))
	utime, _ := strconv.ParseInt(f[11], 10, 64)
	stime, _ := strconv.ParseInt(f[12], 10, 64)
	// NB: USER_HZ is 100 on Linux.
	return time.Duration(utime+stime) * 10 * time.Millisecond
}

// streamSet is the benchmark's clients.
type streamSet struct {
	wg        sync.WaitGroup
	connected atomic.Int64
	mu        sync.Mutex
	// got[i] are client i's updates: the server's read time (the id, in
	// Unix ms) and the receipt time.
	got [][]receipt
}

type receipt struct{ id, at int64 }

// openStreams connects n clients (at most 200 connecting at once) and
// returns when all are connected.
func openStreams(ctx context.Context, b *testing.B, httpAddr string, song int64, n int) *streamSet {
	b.Helper()
	s := &streamSet{got: make([][]receipt, n)}
	url := "http://" + httpAddr + "/v1/songs/" + itoa(song) + "/live/events?window=1m&last=3"
	tr := &http.Transport{DialContext: (&net.Dialer{Timeout: 30 * time.Second}).DialContext, DisableCompression: true, MaxIdleConnsPerHost: -1}
	cl := &http.Client{Transport: tr}
	gate := make(chan struct{}, 200)
	var failed atomic.Int64
	var ready sync.WaitGroup
	for i := range n {
		gate <- struct{}{}
		ready.Add(1)
		s.wg.Go(func() {
			req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
			resp, err := cl.Do(req)
			<-gate
			if err != nil || resp.StatusCode != http.StatusOK {
				failed.Add(1)
				ready.Done()
				if err == nil {
					resp.Body.Close()
				}
				return
			}
			s.connected.Add(1)
			ready.Done()
			defer resp.Body.Close()
			r := bufio.NewReaderSize(resp.Body, 16<<10)
			var mine []receipt
			for {
				line, err := r.ReadSlice('\n')
				if err != nil {
					break
				}
				if id, ok := strings.CutPrefix(string(line), "id: "); ok {
					v, _ := strconv.ParseInt(strings.TrimSpace(id), 10, 64)
					mine = append(mine, receipt{id: v, at: time.Now().UnixMilli()})
				}
			}
			s.mu.Lock()
			s.got[i] = mine
			s.mu.Unlock()
		})
	}
	ready.Wait()
	if failed.Load() > 0 {
		b.Fatalf("%d of %d streams failed to open", failed.Load(), n)
	}
	return s
}

func (s *streamSet) wait() { s.wg.Wait() }

// results are the delivery delays of the updates read in [from, to], how
// many (client, update) pairs of them were never received, and how many
// updates there were.
func (s *streamSet) results(from, to time.Time) (delays []time.Duration, missed, updates int) {
	ids := map[int64]bool{}
	for _, g := range s.got {
		for _, r := range g {
			if r.id >= from.UnixMilli() && r.id <= to.UnixMilli() {
				ids[r.id] = true
			}
		}
	}
	for _, g := range s.got {
		n := 0
		for _, r := range g {
			if ids[r.id] {
				n++
				delays = append(delays, time.Duration(r.at-r.id)*time.Millisecond)
			}
		}
		missed += len(ids) - n
	}
	return delays, missed, len(ids)
}
