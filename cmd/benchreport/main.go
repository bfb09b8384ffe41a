// Command benchreport turns `go test -bench` output into the results table
// of docs/benchmarks.md: it prints the table and rewrites the part of the
// file between the markers <!-- bench:begin --> and <!-- bench:end -->,
// with the date, the machine, the Go version and the command that ran.
//
//	go run ./cmd/benchreport -cmd "make bench" -doc docs/benchmarks.md out1.txt out2.txt
package main

import (
	"bufio"
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"runtime"
	"strconv"
	"strings"
	"time"
)

const (
	beginMarker = "<!-- bench:begin -->"
	endMarker   = "<!-- bench:end -->"
)

// result is one benchmark line: its name and metrics in output order.
type result struct {
	pkg     string
	name    string
	metrics []metric
}

type metric struct {
	value float64
	unit  string
}

func main() {
	command := flag.String("cmd", "make bench", "the command that produced the input, shown in the report")
	doc := flag.String("doc", "", "markdown file whose marked section is replaced (none: print only)")
	flag.Parse()
	var results []result
	for _, path := range flag.Args() {
		f, err := os.Open(path)
		if err != nil {
			fail(err)
		}
		rs, err := parse(f)
		f.Close()
		if err != nil {
			fail(fmt.Errorf("%s: %w", path, err))
		}
		results = append(results, rs...)
	}
	if len(results) == 0 {
		fail(errors.New("no benchmark results in the input"))
	}
	report := render(results, *command, time.Now().UTC())
	fmt.Print(report)
	if *doc != "" {
		if err := rewrite(*doc, report); err != nil {
			fail(err)
		}
		fmt.Fprintf(os.Stderr, "benchreport: wrote the results into %s\n", *doc)
	}
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "benchreport:", err)
	os.Exit(1)
}

// parse reads `go test -bench` output.
func parse(r io.Reader) ([]result, error) {
	var (
		out []result
		pkg string
	)
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		line := sc.Text()
		if p, ok := strings.CutPrefix(line, "pkg: "); ok {
			pkg = strings.TrimPrefix(p, "github.com/kappa-stream/kappa/")
			continue
		}
		if !strings.HasPrefix(line, "Benchmark") {
			continue
		}
		fields := strings.Fields(line)
		if len(fields) < 4 || len(fields)%2 != 0 {
			continue
		}
		name := fields[0]
		if i := strings.LastIndexByte(name, '-'); i > 0 {
			name = name[:i]
		}
		res := result{pkg: pkg, name: strings.TrimPrefix(name, "Benchmark")}
		for i := 2; i+1 < len(fields); i += 2 {
			v, err := strconv.ParseFloat(fields[i], 64)
			if err != nil {
				return nil, fmt.Errorf("metric %q of %s: %w", fields[i], fields[0], err)
			}
			res.metrics = append(res.metrics, metric{v, fields[i+1]})
		}
		out = append(out, res)
	}
	return out, sc.Err()
}

// interesting reports whether a unit belongs in the table: the custom
// metrics, plus ns/op and allocations of micro-benchmarks.
func interesting(r result, unit string) bool {
	switch unit {
	case "B/op", "MB/s":
		return false
	case "ns/op", "allocs/op":
		return r.pkg != "e2e"
	}
	return true
}

func render(results []result, command string, now time.Time) string {
	var b strings.Builder
	fmt.Fprintf(&b, "Measured %s on %s with `%s`.\n\n", now.Format("2006-01-02 15:04 MST"), machine(), command)
	b.WriteString("| package | benchmark | result |\n|---|---|---|\n")
	for _, r := range results {
		var parts []string
		for _, m := range r.metrics {
			if interesting(r, m.unit) {
				parts = append(parts, format(m.value)+" "+m.unit)
			}
		}
		fmt.Fprintf(&b, "| %s | %s | %s |\n", r.pkg, r.name, strings.Join(parts, ", "))
	}
	if ratios := peerRatios(results); ratios != "" {
		b.WriteString("\n" + ratios)
	}
	return b.String()
}

// peerRatios compares kappa's backlog processing with the peers that ran
// the same job on the same data in the same invocation.
func peerRatios(results []result) string {
	find := func(name, unit string) float64 {
		for _, r := range results {
			if r.name == name {
				for _, m := range r.metrics {
					if m.unit == unit {
						return m.value
					}
				}
			}
		}
		return 0
	}
	kappa := find("EndToEnd", "backlog-events/s")
	if kappa == 0 {
		return ""
	}
	var b strings.Builder
	for _, peer := range []struct{ name, label string }{
		{"PeerGoka", "goka v1.1.17 (Pebble storage)"},
		{"PeerFranz", "plain franz-go consumer"},
	} {
		if v := find(peer.name, "events/s"); v > 0 {
			fmt.Fprintf(&b, "| kappa / %s | %s / %s events/s = **%.2f×** |\n", peer.label, format(kappa), format(v), kappa/v)
		}
	}
	if b.Len() == 0 {
		return ""
	}
	return "| same job, same data | ratio |\n|---|---|\n" + b.String()
}

func format(v float64) string {
	switch {
	case v >= 1000:
		return addCommas(strconv.FormatFloat(v, 'f', 0, 64))
	case v >= 10:
		return strconv.FormatFloat(v, 'f', 1, 64)
	default:
		return strconv.FormatFloat(v, 'g', 3, 64)
	}
}

func addCommas(s string) string {
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	return b.String()
}

// machine describes the cores, memory and CPU of this machine.
func machine() string {
	desc := fmt.Sprintf("%d cores", runtime.NumCPU())
	if mem, err := os.ReadFile("/proc/meminfo"); err == nil {
		for _, line := range strings.Split(string(mem), "\n") {
			if rest, ok := strings.CutPrefix(line, "MemTotal:"); ok {
				kb, _ := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 64)
				desc += fmt.Sprintf(", %.0f GiB", kb/(1<<20))
			}
		}
	}
	if cpu, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, line := range strings.Split(string(cpu), "\n") {
			if rest, ok := strings.CutPrefix(line, "model name"); ok {
				desc += ", " + strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(rest), ":"))
				break
			}
		}
	}
	return desc + ", " + runtime.Version() + " " + runtime.GOOS + "/" + runtime.GOARCH
}

// rewrite replaces the marked section of the markdown file with report.
func rewrite(path, report string) error {
	doc, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	begin := bytes.Index(doc, []byte(beginMarker))
	end := bytes.Index(doc, []byte(endMarker))
	if begin < 0 || end < begin {
		return fmt.Errorf("%s has no %s … %s section", path, beginMarker, endMarker)
	}
	var out bytes.Buffer
	out.Write(doc[:begin+len(beginMarker)])
	out.WriteString("\n" + report)
	out.Write(doc[end:])
	return os.WriteFile(path, out.Bytes(), 0o644)
}
