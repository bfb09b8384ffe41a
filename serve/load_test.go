package serve

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"runtime"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestServerUnderLoad sends, on loopback, 2,000 POSTs whose bodies trickle
// in and 64 concurrent 16 MiB POSTs (with Expect: 100-continue, each
// retried on 429 until accepted) while /readyz and a plays query are asked in a loop. Every
// listen an answer acknowledged must have reached the log, every big
// POST is acknowledged in the end, /readyz always answers 200, and the
// heap stays bounded: without the in-flight ingest limit the 64 bodies
// alone take 1 GiB, twice that while read.
func TestServerUnderLoad(t *testing.T) {
	var produced atomic.Int64
	api, err := New(Config{
		Versions: fixedVersions{"v1", map[string]*Backend{"v1": {Rollups: &fakePlacement{store: newStore(t)}}}},
		Ready:    func(context.Context) (bool, error) { return true, nil },
		Produce: func(_ context.Context, _ []int64, values [][]byte) error {
			produced.Add(int64(len(values)))
			return nil
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	srv := NewHTTPServer(api, Limits{ReadTimeout: 30 * time.Second}, slog.New(slog.DiscardHandler))
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(ln)
	defer srv.Close()
	base := "http://" + ln.Addr().String()

	var big bytes.Buffer
	perBig := 0
	for big.Len() < 16<<20-200 {
		fmt.Fprintf(&big, `{"user_id":%d,"song_id":7,"artist_id":3,"ts":"2026-03-01T10:00:00Z"}`+"\n", perBig+1)
		perBig++
	}
	body := big.Bytes()

	var peak atomic.Uint64
	stop := make(chan struct{})
	var bg sync.WaitGroup
	bg.Add(1)
	go func() {
		defer bg.Done()
		var ms runtime.MemStats
		for {
			runtime.ReadMemStats(&ms)
			if ms.HeapInuse > peak.Load() {
				peak.Store(ms.HeapInuse)
			}
			select {
			case <-stop:
				return
			case <-time.After(20 * time.Millisecond):
			}
		}
	}()
	var readyLat []time.Duration
	var readyBad, queriesOK atomic.Int64
	bg.Add(1)
	go func() {
		defer bg.Done()
		cl := &http.Client{Timeout: 10 * time.Second}
		for {
			select {
			case <-stop:
				return
			default:
			}
			start := time.Now()
			resp, err := cl.Get(base + "/readyz")
			if err != nil || resp.StatusCode != http.StatusOK {
				readyBad.Add(1)
			}
			if err == nil {
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}
			readyLat = append(readyLat, time.Since(start))
			if resp, err := cl.Get(base + "/v1/songs/7/plays?from=2026-03-01&to=2026-03-02"); err == nil {
				if resp.StatusCode == http.StatusOK {
					queriesOK.Add(1)
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}
		}
	}()

	var acked atomic.Int64
	var load sync.WaitGroup
	post := func(cl *http.Client) error {
		for {
			req, err := http.NewRequest(http.MethodPost, base+"/v1/listens", bytes.NewReader(body))
			if err != nil {
				return err
			}
			// NB: as curl does for a big body: the 429 comes before the
			// body is sent, instead of a reset while it is.
			req.Header.Set("Expect", "100-continue")
			resp, err := cl.Do(req)
			if err != nil {
				return err
			}
			var out ingestResponse
			derr := json.NewDecoder(resp.Body).Decode(&out)
			resp.Body.Close()
			switch {
			case resp.StatusCode == http.StatusTooManyRequests:
				wait, _ := strconv.Atoi(resp.Header.Get("Retry-After"))
				time.Sleep(time.Duration(max(wait, 1)) * time.Second)
			case resp.StatusCode != http.StatusAccepted || derr != nil:
				return fmt.Errorf("16 MiB POST: %d (%v)", resp.StatusCode, derr)
			default:
				acked.Add(int64(out.Accepted))
				if out.Accepted != perBig {
					return fmt.Errorf("16 MiB POST: %d of %d listens accepted", out.Accepted, perBig)
				}
				return nil
			}
		}
	}
	errs := make(chan error, 2064)
	for range 64 {
		load.Add(1)
		go func() {
			defer load.Done()
			cl := &http.Client{Timeout: 5 * time.Minute, Transport: &http.Transport{ExpectContinueTimeout: 10 * time.Second}}
			if err := post(cl); err != nil {
				errs <- err
			}
		}()
	}
	line := []byte(`{"user_id":1,"song_id":7,"artist_id":3,"ts":"2026-03-01T10:00:00Z"}`)
	for range 2000 {
		load.Add(1)
		go func() {
			defer load.Done()
			if err := slowPost(ln.Addr().String(), line, &acked); err != nil {
				errs <- err
			}
		}()
	}
	load.Wait()
	close(stop)
	bg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if got, want := produced.Load(), acked.Load(); got != want {
		t.Errorf("%d listens reached the log, %d were acknowledged", got, want)
	}
	if acked.Load() < 64*int64(perBig) {
		t.Errorf("%d listens acknowledged, want at least the 64 big POSTs' %d", acked.Load(), 64*perBig)
	}
	if readyBad.Load() > 0 {
		t.Errorf("/readyz failed %d times under load", readyBad.Load())
	}
	if queriesOK.Load() == 0 {
		t.Error("no query answered under load")
	}
	if p := peak.Load(); p > 512<<20 {
		t.Errorf("heap in use peaked at %d MiB", p>>20)
	}
	slices.Sort(readyLat)
	p99 := readyLat[len(readyLat)*99/100]
	t.Logf("/readyz: %d requests, p99 %s; heap peak %d MiB; %d queries answered",
		len(readyLat), p99, peak.Load()>>20, queriesOK.Load())
	// NB: the bound. Measured under 1 ms here; without the
	// ingest limit it is over a second.
	if p99 > 100*time.Millisecond && !raceEnabled {
		t.Errorf("/readyz p99 %s under load, want < 100 ms", p99)
	}
}

// slowPost sends one listen as a POST whose body arrives 8 bytes every
// 50 ms, and adds what an accepting answer acknowledged to acked. A 429
// (the server is full) is an answer too.
func slowPost(addr string, line []byte, acked *atomic.Int64) error {
	conn, err := net.DialTimeout("tcp", addr, 10*time.Second)
	if err != nil {
		return err
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(2 * time.Minute))
	fmt.Fprintf(conn, "POST /v1/listens HTTP/1.1\r\nHost: kappa\r\nContent-Type: application/x-ndjson\r\nContent-Length: %d\r\nConnection: close\r\n\r\n", len(line))
	for b := line; len(b) > 0; {
		n := min(8, len(b))
		if _, err := conn.Write(b[:n]); err != nil {
			break // NB: the server answered (429) and closed.
		}
		b = b[n:]
		time.Sleep(50 * time.Millisecond)
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		return fmt.Errorf("slow POST: %w", err)
	}
	defer resp.Body.Close()
	switch resp.StatusCode {
	case http.StatusAccepted:
		var out ingestResponse
		if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
			return err
		}
		acked.Add(int64(out.Accepted))
	case http.StatusTooManyRequests:
	default:
		return fmt.Errorf("slow POST: %d", resp.StatusCode)
	}
	return nil
}
