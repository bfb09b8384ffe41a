package e2e

import (
	"net/http"
	"slices"
	"syscall"
	"testing"
	"time"

	"github.com/kappa-stream/kappa/broker"
)

// failoverKills is how many kill -9s BenchmarkFailover measures.
const failoverKills = 6

// BenchmarkFailover measures failover: two `kappa process` instances
// (session timeout 2 s) share the groups over 200,000 processed events;
// one is killed with SIGKILL, and the clock runs until the survivor
// answers 200 for every sampled song and artist, including those the
// dead instance owned (after the rebalance and the restore of its
// partitions from their changelogs). The dead instance is restarted and
// the next kill takes the other one. It reports the median and the worst
// of the kills. Run it with -benchtime=1x.
func BenchmarkFailover(b *testing.B) {
	const n = 200_000
	d := generateDataset(b, testConfig(n))
	var paths []string
	for id := range d.model.songs {
		if len(paths) == 48 {
			break
		}
		paths = append(paths, "/v1/songs/"+itoa(id)+"/plays?from="+d.model.minDay+"&to="+d.model.maxDay)
	}
	for id := range d.model.artists {
		if len(paths) == 64 {
			break
		}
		paths = append(paths, "/v1/artists/"+itoa(id)+"/plays?from="+d.model.minDay+"&to="+d.model.maxDay)
	}
	for i := 0; i < b.N; i++ {
		br, err := broker.Start(broker.Config{Dir: b.TempDir(), Addr: "127.0.0.1:0"})
		if err != nil {
			b.Fatal(err)
		}
		kafka := br.Addr()
		createTopics(b, kafka)
		produceWithKappa(b, kafka, d.writeLines(b, "all.jsonl", 0, n, false))
		type instance struct {
			id, data, http string
			p              *proc
		}
		insts := []*instance{{id: "a", data: b.TempDir(), http: freeAddr(b)}, {id: "b", data: b.TempDir(), http: freeAddr(b)}}
		start := func(in *instance) {
			in.p = startKappa(b, "process-"+in.id+".log", "process", "--brokers", kafka, "--instance-id", in.id,
				"--data", in.data, "--http", in.http, "--session-timeout", "2s", "--transaction-timeout", "5s")
		}
		for _, in := range insts {
			start(in)
		}
		waitCaughtUp(b, kafka, n, 2*time.Minute)
		allServed := func(in *instance) bool {
			for _, p := range paths {
				resp, err := http.Get("http://" + in.http + p)
				if err != nil {
					return false
				}
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK {
					return false
				}
			}
			return true
		}
		var took []time.Duration
		for k := range failoverKills {
			victim, survivor := insts[k%2], insts[(k+1)%2]
			waitFor(b, time.Minute, "both instances serve every sampled key", func() (bool, string) {
				return allServed(victim) && allServed(survivor), "some answers are not 200"
			})
			killed := time.Now()
			victim.p.stop(b, syscall.SIGKILL)
			waitFor(b, time.Minute, "the survivor serves the dead instance's keys", func() (bool, string) {
				return allServed(survivor), "some answers are not 200"
			})
			took = append(took, time.Since(killed))
			start(victim)
		}
		for _, in := range insts {
			in.p.stop(b, syscall.SIGTERM)
		}
		br.Close()
		slices.Sort(took)
		b.Logf("failover times: %v", took)
		b.ReportMetric(took[len(took)/2].Seconds(), "failover-p50-s")
		b.ReportMetric(took[len(took)-1].Seconds(), "failover-max-s")
	}
}
