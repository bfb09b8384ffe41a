package lsh

import (
	"fmt"
	"math"
	"os"
	"strconv"
	"strings"
	"testing"
)

// docTable returns the numbers of the doc.go table row labelled label and
// of the row above it, as printed.
func docTable(t *testing.T, label string) (xs, ps []string) {
	t.Helper()
	src, err := os.ReadFile("doc.go")
	if err != nil {
		t.Fatal(err)
	}
	numbers := func(line string) []string {
		var ns []string
		for _, f := range strings.Fields(strings.TrimPrefix(line, "//")) {
			if _, err := strconv.ParseFloat(f, 64); err == nil {
				ns = append(ns, f)
			}
		}
		return ns
	}
	lines := strings.Split(string(src), "\n")
	for i, l := range lines {
		if strings.HasPrefix(l, "//\t"+label) && i > 0 {
			return numbers(lines[i-1]), numbers(l)
		}
	}
	t.Fatalf("doc.go has no %q row", label)
	return nil, nil
}

// checkRow checks that each printed probability is the computed one,
// rounded to the printed digits.
func checkRow(t *testing.T, xs, ps []string, p func(float64) float64) {
	t.Helper()
	if len(xs) != len(ps) || len(xs) == 0 {
		t.Fatalf("table rows %v and %v", xs, ps)
	}
	for i := range xs {
		x, err := strconv.ParseFloat(xs[i], 64)
		if err != nil {
			t.Fatal(err)
		}
		decimals := len(ps[i]) - strings.IndexByte(ps[i], '.') - 1
		if got := strconv.FormatFloat(p(x), 'f', decimals, 64); got != ps[i] {
			t.Errorf("at %s: documented %s, computed %s", xs[i], ps[i], got)
		}
	}
}

// TestDocumentedSCurve checks the S-curve numbers of the package
// documentation against the defaults.
func TestDocumentedSCurve(t *testing.T) {
	mc := MinHashConfig{}
	xs, ps := docTable(t, "P(user")
	checkRow(t, xs, ps, mc.Probability)
	for _, s := range []string{"0.3", "0.5", "0.7", "0.9"} {
		if !strings.Contains(" "+strings.Join(xs, " ")+" ", " "+s+" ") {
			t.Errorf("the user table lacks s = %s", s)
		}
	}
	if got := fmt.Sprintf("%.3f", mc.Threshold()); got != "0.218" {
		t.Errorf("threshold %s, documented 0.218", got)
	}
	if got := 1 - mc.Probability(0.5); math.Abs(got-2.7e-6) > 0.05e-6 {
		t.Errorf("1 − P(0.5) = %.2g, documented 2.7e−6", got)
	}
	if mc.Probability(0) != 0 || mc.Probability(1) != 1 {
		t.Error("P(0) must be 0 and P(1) must be 1")
	}
	hc := HyperplaneConfig{}
	xs, ps = docTable(t, "P(song")
	checkRow(t, xs, ps, hc.Probability)
	if hc.Probability(-1) != 0 || hc.Probability(1) != 1 {
		t.Error("P(cos −1) must be 0 and P(cos 1) must be 1")
	}
	src, _ := os.ReadFile("doc.go")
	for _, want := range []string{
		fmt.Sprintf("b = %d bands of\n// r = %d rows (%d slots)", DefaultBands, DefaultRows, DefaultBands*DefaultRows),
		fmt.Sprintf("L = %d tables of k = %d bits", DefaultTables, DefaultBits),
		fmt.Sprintf("(default %d, in store order", DefaultPerBucket),
		fmt.Sprintf("Candidates\n// distinct candidates (default %d)", DefaultCandidates),
		fmt.Sprintf("Rerank of them\n// (default %d)", DefaultRerank),
	} {
		if !strings.Contains(string(src), want) {
			t.Errorf("doc.go does not say %q", want)
		}
	}
}
