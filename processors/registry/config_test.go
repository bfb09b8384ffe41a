package registry

import (
	"encoding/json"
	"flag"
	"io"
	"reflect"
	"strings"
	"testing"

	"github.com/kappa-stream/kappa/processors"
)

// sameJSON reports whether two JSON objects hold the same fields.
func sameJSON(t *testing.T, got []byte, want string) bool {
	t.Helper()
	var g, w map[string]any
	if err := json.Unmarshal(got, &g); err != nil {
		t.Fatalf("%s: %v", got, err)
	}
	if err := json.Unmarshal([]byte(want), &w); err != nil {
		t.Fatalf("want %s: %v", want, err)
	}
	return reflect.DeepEqual(g, w)
}

// TestProcessorsJSON round-trips configurations through the control
// topic's form, with every default spelled out.
func TestProcessorsJSON(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{nil, `{"live_windows":["1m"],"live_grace":"1m0s","live_retention":"48h0m0s","fan_zones":false,"h3_resolutions":[5,6,7,8,9],"fan_min_plays":1` + simDefaults},
		{[]string{"--live-windows", "off", "--fan-zones", "--h3-resolutions", "7", "--fan-min-plays", "3"},
			`{"live_windows":[],"live_grace":"1m0s","live_retention":"48h0m0s","fan_zones":true,"h3_resolutions":[7],"fan_min_plays":3` + simDefaults},
		{[]string{"--fan-zones", "--fan-delay", "250ms"},
			`{"live_windows":["1m"],"live_grace":"1m0s","live_retention":"48h0m0s","fan_zones":true,"h3_resolutions":[5,6,7,8,9],"fan_min_plays":1,"fan_delay":"250ms"` +
				strings.TrimPrefix(simDefaults, `,"fan_delay":"5s"`)},
		{[]string{"--live-windows", "10s,1h", "--live-grace", "30s", "--live-retention", "2h"},
			`{"live_windows":["10s","1h"],"live_grace":"30s","live_retention":"2h0m0s","fan_zones":false,"h3_resolutions":[5,6,7,8,9],"fan_min_plays":1` + simDefaults},
		{[]string{"--similar", "--minhash-bands", "64", "--minhash-rows", "3", "--hyperplane-tables", "8", "--hyperplane-bits", "10", "--feature-dim", "16", "--similar-bucket-cap", "100", "--similar-candidates", "1000", "--similar-rerank", "100", "--minhash-min-bands", "3", "--similar-delay", "1s"},
			`{"live_windows":["1m"],"live_grace":"1m0s","live_retention":"48h0m0s","fan_zones":false,"h3_resolutions":[5,6,7,8,9],"fan_min_plays":1,"fan_delay":"5s",` +
				`"similar":true,"minhash_bands":64,"minhash_rows":3,"hyperplane_tables":8,"hyperplane_bits":10,"feature_dim":16,"similar_bucket_cap":100,"similar_candidates":1000,"similar_rerank":100,"minhash_min_bands":3,"similar_delay":"1s","dp":false,"dp_max_items":8,"dp_max_plays":5,"dp_grace":"10m0s","dp_keep":"48h0m0s","dp_h3_resolutions":[5,6,7,8,9],"top_k":false,"top_k_artist_songs":false}`},
		{[]string{"--top-k"},
			`{"live_windows":["1m"],"live_grace":"1m0s","live_retention":"48h0m0s","fan_zones":false,"h3_resolutions":[5,6,7,8,9],"fan_min_plays":1` +
				strings.TrimSuffix(simDefaults, `"top_k":false,"top_k_artist_songs":false}`) + `"top_k":true,"top_k_artist_songs":false}`},
		{[]string{"--top-k", "--top-k-artist-songs"},
			`{"live_windows":["1m"],"live_grace":"1m0s","live_retention":"48h0m0s","fan_zones":false,"h3_resolutions":[5,6,7,8,9],"fan_min_plays":1` +
				strings.TrimSuffix(simDefaults, `"top_k":false,"top_k_artist_songs":false}`) + `"top_k":true,"top_k_artist_songs":true}`},
	} {
		p := parseProcessors(t, tc.args...)
		b, err := json.Marshal(p)
		if err != nil {
			t.Fatal(err)
		}
		if !sameJSON(t, b, tc.want) {
			t.Errorf("%v: %s\nwant %s", tc.args, b, tc.want)
		}
		back := NewConfig()
		if err := json.Unmarshal(b, &back); err != nil {
			t.Fatalf("%v: %v", tc.args, err)
		}
		if again, _ := json.Marshal(back); !sameJSON(t, again, tc.want) {
			t.Errorf("%v: round trip gives %s", tc.args, again)
		}
	}
	for _, bad := range []string{
		`{"live_windows":["1x"],"live_grace":"1m","live_retention":"48h","h3_resolutions":[5],"fan_min_plays":1}`,
		`{"live_windows":[],"live_grace":"soon","live_retention":"48h","h3_resolutions":[5],"fan_min_plays":1}`,
		`{"live_windows":[],"live_grace":"1m","live_retention":"48h","h3_resolutions":[9,5],"fan_min_plays":1}`,
		`{"live_windows":[],"live_grace":"1m","live_retention":"48h","h3_resolutions":[5],"fan_min_plays":-1}`,
		`{"live_windows":[],"live_grace":"1m","live_retention":"48h","h3_resolutions":[5],"fan_min_plays":1,"minhash_bands":5000}`,
		`{"live_windows":[],"live_grace":"1m","live_retention":"48h","h3_resolutions":[5],"fan_min_plays":1,"similar_candidates":-1}`,
		`{"live_windows":[],"live_grace":"1m","live_retention":"48h","h3_resolutions":[5],"fan_min_plays":1,"similar_delay":"-1s"}`,
		`{"live_windows":[],"live_grace":"1m","live_retention":"48h","h3_resolutions":[5],"fan_min_plays":1,"fan_delay":"-1s"}`,
		`{"live_windows":[],"live_grace":"1m","live_retention":"48h","h3_resolutions":[5],"fan_min_plays":1,"fan_delay":"soon"}`,
		`{"live_windows":[],"live_grace":"1m","live_retention":"48h","h3_resolutions":[5],"fan_min_plays":1,"minhash_min_bands":-1}`,
		`{"live_windows":[],"live_grace":"1m","live_retention":"48h","h3_resolutions":[5],"fan_min_plays":1,"dp_max_items":0}`,
		`{"live_windows":[],"live_grace":"1m","live_retention":"48h","h3_resolutions":[5],"fan_min_plays":1,"dp_grace":"-1m"}`,
		`{"live_windows":[],"live_grace":"1m","live_retention":"48h","h3_resolutions":[5],"fan_min_plays":1,"top_k_artist_songs":true}`,
	} {
		p := NewConfig()
		if err := json.Unmarshal([]byte(bad), &p); err == nil {
			t.Errorf("%s: no error", bad)
		}
	}
}

// simDefaults ends the JSON of a configuration with the default
// --fan-delay, without --similar and with the default hashing and limits,
// without --top-k.
const simDefaults = `,"fan_delay":"5s","similar":false,"minhash_bands":80,"minhash_rows":2,"hyperplane_tables":48,"hyperplane_bits":14,"feature_dim":32,"similar_bucket_cap":256,"similar_candidates":4096,"similar_rerank":1024,"minhash_min_bands":3,"similar_delay":"5s","dp":false,"dp_max_items":8,"dp_max_plays":5,"dp_grace":"10m0s","dp_keep":"48h0m0s","dp_h3_resolutions":[5,6,7,8,9],"top_k":false,"top_k_artist_songs":false}`

// TestProcessorsJSONBefore: a version declared before the similarity
// indexes, the fan delay and top-K existed reads as one without them,
// with the defaults.
func TestProcessorsJSONBefore(t *testing.T) {
	p := NewConfig()
	old := `{"live_windows":["1m"],"live_grace":"1m0s","live_retention":"48h0m0s","fan_zones":true,"h3_resolutions":[7],"fan_min_plays":2}`
	if err := json.Unmarshal([]byte(old), &p); err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(p)
	if want := strings.TrimSuffix(old, "}") + simDefaults; !sameJSON(t, b, want) {
		t.Errorf("%s\nwant %s", b, want)
	}
}

func parseProcessors(t *testing.T, args ...string) processors.Config {
	t.Helper()
	fs := flag.NewFlagSet("test", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	p := NewConfig()
	p.Flags(fs)
	if err := fs.Parse(args); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestOverlay takes exactly the flags given from the replay's flags.
func TestOverlay(t *testing.T) {
	base := parseProcessors(t, "--fan-zones", "--fan-min-plays", "3", "--live-windows", "10s", "--h3-resolutions", "6,7")
	flags := parseProcessors(t, "--fan-min-plays", "2", "--live-windows", "off")
	base.Overlay(flags, []string{"fan-min-plays"})
	b, _ := json.Marshal(base)
	want := `{"live_windows":["10s"],"live_grace":"1m0s","live_retention":"48h0m0s","fan_zones":true,"h3_resolutions":[6,7],"fan_min_plays":2` + simDefaults
	if !sameJSON(t, b, want) {
		t.Fatalf("overlay: %s\nwant %s", b, want)
	}
	base.Overlay(flags, base.FlagNames())
	b, _ = json.Marshal(base)
	if !strings.Contains(string(b), `"live_windows":[]`) || !strings.Contains(string(b), `"fan_zones":false`) {
		t.Fatalf("overlay of every flag: %s", b)
	}
}
