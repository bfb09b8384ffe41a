package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

const sample = `goos: linux
pkg: github.com/kappa-stream/kappa/events
BenchmarkDecode/typical-2 	 2801332	       409.7 ns/op	 405.13 MB/s	   2440520 events/s	       0 B/op	       0 allocs/op
PASS
pkg: github.com/kappa-stream/kappa/e2e
BenchmarkEndToEnd-2   	       1	8900913428 ns/op	    652837 backlog-events/s	    434.1 peak-rss-MiB
BenchmarkPeerGoka-2   	       1	9000000000 ns/op	    130000 events/s
not a benchmark line
`

func TestParseRenderRewrite(t *testing.T) {
	rs, err := parse(strings.NewReader(sample))
	if err != nil {
		t.Fatal(err)
	}
	if len(rs) != 3 || rs[0].pkg != "events" || rs[0].name != "Decode/typical" || rs[1].name != "EndToEnd" {
		t.Fatalf("parsed %+v", rs)
	}
	report := render(rs, "make bench", time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC))
	for _, want := range []string{
		"Measured 2026-11-23 12:00 UTC on ",
		"with `make bench`",
		"| events | Decode/typical | 409.7 ns/op, 2,440,520 events/s, 0 allocs/op |",
		"| e2e | EndToEnd | 652,837 backlog-events/s, 434.1 peak-rss-MiB |",
		"| kappa / goka v1.1.17 (Pebble storage) | 652,837 / 130,000 events/s = **5.02×** |",
	} {
		if !strings.Contains(report, want) {
			t.Errorf("report lacks %q:\n%s", want, report)
		}
	}
	doc := filepath.Join(t.TempDir(), "b.md")
	if err := os.WriteFile(doc, []byte("# B\nprose\n"+beginMarker+"\nold\n"+endMarker+"\nmore prose\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := rewrite(doc, report); err != nil {
		t.Fatal(err)
	}
	got, _ := os.ReadFile(doc)
	if !strings.HasPrefix(string(got), "# B\nprose\n"+beginMarker+"\nMeasured") || strings.Contains(string(got), "old") ||
		!strings.HasSuffix(string(got), endMarker+"\nmore prose\n") {
		t.Fatalf("rewritten doc:\n%s", got)
	}
	if err := rewrite(filepath.Join(t.TempDir(), "missing.md"), report); err == nil {
		t.Fatal("rewrite of a missing file succeeded")
	}
}
