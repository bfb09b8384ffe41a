package example

import (
	"encoding/json"
	"os"
	"strings"
	"testing"

	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/kappa-stream/kappa/events"
	"github.com/kappa-stream/kappa/processors"
	"github.com/kappa-stream/kappa/state"
	"github.com/kappa-stream/kappa/topology"
)

// TestCounts runs listens of three stage-1 partitions through both
// stages, the records routed as the runtime routes them, and compares the
// stores with counts made here.
func TestCounts(t *testing.T) {
	const partitions = 3
	cfg := processors.NewConfig([]processors.Spec{Spec})
	if err := json.Unmarshal([]byte(`{"example":true}`), &cfg); err != nil {
		t.Fatal(err)
	}
	p, err := cfg.Options(0).New(processors.Env{Repartition: "r", Partitions: partitions})
	if err != nil {
		t.Fatal(err)
	}
	stores := make([]*state.Store, partitions)
	for i := range stores {
		if stores[i], err = state.Open("s", state.WithFS(vfs.NewMem())); err != nil {
			t.Fatal(err)
		}
		defer stores[i].Close()
	}
	want := map[events.Country]uint64{}
	countries := []string{"SE", "FR", "US", "", "JP"}
	for round := range 3 {
		var out topology.Output
		for src := range int32(partitions) {
			s1, err := p.NewStage1(src, nil)
			if err != nil {
				t.Fatal(err)
			}
			for i := range 50 + 10*int(src) + round {
				c := countries[(i*7+int(src))%len(countries)]
				l := events.Listen{UserID: int64(i + 1), SongID: 1, ArtistID: 1, Country: events.Country([]byte(c + "\x00\x00")[:2])}
				want[l.Country]++
				if err := s1.Add(&l); err != nil {
					t.Fatal(err)
				}
			}
			if err := s1.Prepare(&out, false); err != nil {
				t.Fatal(err)
			}
		}
		for part := range int32(partitions) {
			s2, err := p.NewStage2(part, stores[part])
			if err != nil {
				t.Fatal(err)
			}
			for _, r := range out.Records() {
				if r.Partition == part {
					if err := s2.Process(r); err != nil {
						t.Fatal(err)
					}
				}
			}
			var changes topology.Output
			if err := s2.Prepare(&changes); err != nil {
				t.Fatal(err)
			}
			b := stores[part].NewBatch()
			for k, v := range changes.Changes() {
				if err := b.Set(k, v); err != nil {
					t.Fatal(err)
				}
			}
			if err := b.Commit(false); err != nil {
				t.Fatal(err)
			}
		}
	}
	for c, n := range want {
		got, err := Count(stores[topology.KeyPartition(c[:], partitions)], c)
		if err != nil || got != n {
			t.Errorf("country %q: %d (%v), want %d", c[:], got, err, n)
		}
	}
}

// TestREADME: the README shows this package's code as it is.
func TestREADME(t *testing.T) {
	src, err := os.ReadFile("example.go")
	if err != nil {
		t.Fatal(err)
	}
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	const start = "<!-- processors/example/example.go -->\n```go\n"
	_, block, ok := strings.Cut(string(readme), start)
	if !ok {
		t.Fatalf("README.md has no %q", start)
	}
	block, _, _ = strings.Cut(block, "```\n")
	if block != string(src) {
		t.Fatal("README.md's example processor differs from processors/example/example.go: copy the file into it")
	}
}
