package main

import (
	"encoding/json"
	"flag"
	"io"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestProcessorsJSON round-trips configurations through the control
// topic's form, with every default spelled out.
func TestProcessorsJSON(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{nil, `{"live_windows":["1m"],"live_grace":"1m0s","live_retention":"48h0m0s","fan_zones":false,"h3_resolutions":[5,6,7,8,9],"fan_min_plays":1}`},
		{[]string{"--live-windows", "off", "--fan-zones", "--h3-resolutions", "7", "--fan-min-plays", "3"},
			`{"live_windows":[],"live_grace":"1m0s","live_retention":"48h0m0s","fan_zones":true,"h3_resolutions":[7],"fan_min_plays":3}`},
		{[]string{"--live-windows", "10s,1h", "--live-grace", "30s", "--live-retention", "2h"},
			`{"live_windows":["10s","1h"],"live_grace":"30s","live_retention":"2h0m0s","fan_zones":false,"h3_resolutions":[5,6,7,8,9],"fan_min_plays":1}`},
	} {
		p := parseProcessors(t, tc.args...)
		b, err := json.Marshal(p)
		if err != nil {
			t.Fatal(err)
		}
		if string(b) != tc.want {
			t.Errorf("%v: %s\nwant %s", tc.args, b, tc.want)
		}
		var back processors
		if err := json.Unmarshal(b, &back); err != nil {
			t.Fatalf("%v: %v", tc.args, err)
		}
		if again, _ := json.Marshal(back); string(again) != tc.want {
			t.Errorf("%v: round trip gives %s", tc.args, again)
		}
	}
	for _, bad := range []string{
		`{"live_windows":["1x"],"live_grace":"1m","live_retention":"48h","h3_resolutions":[5],"fan_min_plays":1}`,
		`{"live_windows":[],"live_grace":"soon","live_retention":"48h","h3_resolutions":[5],"fan_min_plays":1}`,
		`{"live_windows":[],"live_grace":"1m","live_retention":"48h","h3_resolutions":[9,5],"fan_min_plays":1}`,
		`{"live_windows":[],"live_grace":"1m","live_retention":"48h","h3_resolutions":[5],"fan_min_plays":-1}`,
	} {
		var p processors
		if err := json.Unmarshal([]byte(bad), &p); err == nil {
			t.Errorf("%s: no error", bad)
		}
	}
}

func parseProcessors(t *testing.T, args ...string) processors {
	t.Helper()
	fs := flag.NewFlagSet("test", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	var p processors
	processorFlags(fs, &p)
	if err := fs.Parse(args); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestOverlay takes exactly the flags given from the replay's flags.
func TestOverlay(t *testing.T) {
	base := parseProcessors(t, "--fan-zones", "--fan-min-plays", "3", "--live-windows", "10s", "--h3-resolutions", "6,7")
	flags := parseProcessors(t, "--fan-min-plays", "2", "--live-windows", "off")
	base.overlay(flags, []string{"fan-min-plays"})
	b, _ := json.Marshal(base)
	want := `{"live_windows":["10s"],"live_grace":"1m0s","live_retention":"48h0m0s","fan_zones":true,"h3_resolutions":[6,7],"fan_min_plays":2}`
	if string(b) != want {
		t.Fatalf("overlay: %s\nwant %s", b, want)
	}
	base.overlay(flags, processorFlagNames)
	b, _ = json.Marshal(base)
	if !strings.Contains(string(b), `"live_windows":[]`) || !strings.Contains(string(b), `"fan_zones":false`) {
		t.Fatalf("overlay of every flag: %s", b)
	}
}

func TestProgressLine(t *testing.T) {
	p := progress{listensLag: 1_500_000, deltasLag: 240}
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
