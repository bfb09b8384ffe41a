package replay

import (
	"slices"
	"strings"
	"testing"
	"time"
)

func TestProgressLine(t *testing.T) {
	p := Progress{ListensLag: 1_500_000, DeltasLag: 240}
	got := progressLine("v2", 500_000, 2_000_000, 250_000, p, false)
	want := "v2  25.0%  500,000/2,000,000 listens  250,000 ev/s  lag 1,500,000 (+240 deltas)  ETA 6s"
	if got != want {
		t.Errorf("line %q\nwant %q", got, want)
	}
	bar := progressLine("v2", 500_000, 2_000_000, 0, p, true)
	if !strings.HasPrefix(bar, "v2 ["+strings.Repeat("█", 7)+strings.Repeat("░", 23)+"]  25.0%") || strings.Contains(bar, "ETA") {
		t.Errorf("bar %q", bar)
	}
	for n, want := range map[int64]string{0: "0", 999: "999", 1000: "1,000", -1234567: "-1,234,567"} {
		if got := thousands(n); got != want {
			t.Errorf("thousands(%d) = %s, want %s", n, got, want)
		}
	}
}

// TestRateMeter measures over the last rateWindow.
func TestRateMeter(t *testing.T) {
	var m rateMeter
	t0 := time.Unix(0, 0)
	var rates []float64
	for i := range 10 {
		// 100/s for 5 s, then 1000/s.
		n := int64(min(i, 5)*100 + max(i-5, 0)*1000)
		rates = append(rates, m.add(t0.Add(time.Duration(i)*time.Second), n))
	}
	if want := []float64{0, 100, 100, 100, 100, 100}; !slices.Equal(rates[:6], want) {
		t.Errorf("rates %v, want %v first", rates, want)
	}
	if rates[9] < 800 {
		t.Errorf("rate after 4 s at 1000/s: %.0f, want the old rate gone", rates[9])
	}
}
