package generate

import (
	"bytes"
	"math"
	"regexp"
	"testing"
)

var userRE = regexp.MustCompile(`"user_id":([0-9]+)[,}]`)

func TestMalformed(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
		n    int
	}{
		{"kappa generate rate", Config{MalformedRate: 0.005, Events: 100_000}, 100_000},
		{"five percent", Config{MalformedRate: 0.05, Events: 100_000}, 100_000},
		{"with a live drop", Config{MalformedRate: 0.05, Events: 100_000, LiveDrop: true, LiveDropListeners: 30_000}, 100_000},
		{"half", Config{MalformedRate: 0.5, Events: 20_000}, 20_000},
		{"all", Config{MalformedRate: 1, Events: 5_000}, 5_000},
		{"none", Config{Events: 20_000}, 20_000},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, lines := generate(t, tt.cfg, tt.n)
			rules := map[string]int{}
			var bad int
			for _, l := range lines {
				if bytes.ContainsAny(l.line, "\r\n") || len(l.line) == 0 || len(l.line) > 1024 {
					t.Fatalf("line %d: %d bytes, with a newline or empty: %q", l.index, len(l.line), l.line)
				}
				if !l.malformed {
					continue
				}
				bad++
				_, err := parseListen(l.line)
				if err == nil {
					t.Fatalf("line %d marked malformed but valid: %s", l.index, l.line)
				}
				rules[ruleOf(err)]++
			}
			p := tt.cfg.MalformedRate
			got := float64(bad) / float64(tt.n)
			tol := 5*math.Sqrt(p*(1-p)/float64(tt.n)) + 1e-9
			t.Logf("malformed %.4f (want %.4f ± %.4f), rules %v", got, p, tol, rules)
			if math.Abs(got-p) > tol {
				t.Errorf("malformed fraction %.4f, want %.4f ± %.4f", got, p, tol)
			}
			if bad >= 1_000 {
				// A varied mix: every rule of the schema gets broken.
				for _, r := range []string{"json", "object", "missing", "type", "range", "ts", "country", "location"} {
					if rules[r] == 0 {
						t.Errorf("no malformed line breaks rule %q", r)
					}
				}
			}
		})
	}
}

// TestMalformedKeys checks that Key stays readable: the user id when the
// line still spells it, else "0".
func TestMalformedKeys(t *testing.T) {
	_, lines := generate(t, Config{MalformedRate: 1, Events: 5_000}, 5_000)
	var zero int
	for _, l := range lines {
		if l.key == "0" {
			zero++
			if m := userRE.FindSubmatch(l.line); m != nil && string(m[1]) != "0" && len(m[1]) < 19 {
				t.Errorf("line %d: key 0 but user_id %s readable: %s", l.index, m[1], l.line)
			}
			continue
		}
		if m := userRE.FindSubmatch(l.line); m == nil || string(m[1]) != l.key {
			t.Fatalf("line %d: key %s, line %s", l.index, l.key, l.line)
		}
	}
	if zero == 0 || zero == len(lines) {
		t.Errorf("%d of %d malformed lines have key 0", zero, len(lines))
	}
}
