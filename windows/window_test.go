package windows

import (
	"math"
	"strings"
	"testing"
	"time"
)

func TestSpecValidate(t *testing.T) {
	for _, tc := range []struct {
		name string
		spec Spec
		err  string // substring; "" = valid
	}{
		{"tumbling", Tumbling(time.Minute), ""},
		{"tumbling 1ms", Tumbling(time.Millisecond), ""},
		{"tumbling huge", Tumbling(math.MaxInt64 / time.Millisecond * time.Millisecond), ""},
		{"tumbling zero", Tumbling(0), "size 0s: below 1ms"},
		{"tumbling negative", Tumbling(-time.Second), "size -1s: below 1ms"},
		{"tumbling sub-ms", Tumbling(1500 * time.Microsecond), "not a whole number of milliseconds"},
		{"tumbling with advance", Spec{Kind: KindTumbling, Size: time.Second, Advance: time.Second}, "advance 1s: not used by tumbling"},
		{"hopping", Hopping(time.Hour, 10*time.Second), ""},
		{"hopping equal", Hopping(time.Second, time.Second), ""},
		{"hopping not multiple", Hopping(10*time.Millisecond, 3*time.Millisecond), ""},
		{"hopping max windows", Hopping(MaxWindowsPerEvent*time.Millisecond, time.Millisecond), ""},
		{"hopping too many windows", Hopping((MaxWindowsPerEvent+1)*time.Millisecond, time.Millisecond), "4097 windows per event"},
		{"hopping advance above size", Hopping(time.Second, 2*time.Second), "advance 2s: above size 1s"},
		{"hopping zero advance", Hopping(time.Second, 0), "advance 0s: below 1ms"},
		{"hopping huge", Hopping(math.MaxInt64/time.Millisecond*time.Millisecond, math.MaxInt64/time.Millisecond/2*time.Millisecond), ""},
		{"hopping huge too many", Hopping(math.MaxInt64/time.Millisecond*time.Millisecond, time.Millisecond), "9223372036854 windows per event"},
		{"session", Session(30 * time.Minute), ""},
		{"session zero", Session(0), "gap 0s: below 1ms"},
		{"session with size", Spec{Kind: KindSession, Gap: time.Second, Size: time.Second}, "size 1s: not used by session"},
		{"zero spec", Spec{}, "unknown kind 0"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.spec.Validate()
			switch {
			case tc.err == "" && err != nil:
				t.Fatalf("Validate: %v", err)
			case tc.err != "" && err == nil:
				t.Fatalf("Validate: nil, want %q", tc.err)
			case err != nil && (!strings.Contains(err.Error(), tc.err) || !strings.HasPrefix(err.Error(), "windows: ")):
				t.Fatalf("Validate: %q, want windows: …%q…", err, tc.err)
			}
		})
	}
}

func TestConfigValidate(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  Config
		err  string
	}{
		{"defaults", Config{Window: Tumbling(time.Minute)}, ""},
		{"no window", Config{}, "unknown kind 0"},
		{"all set", Config{Window: Session(time.Minute), AllowedLateness: time.Second, Grace: time.Minute, Retention: 2 * time.Minute, IdleTimeout: time.Minute}, ""},
		{"negative lateness", Config{Window: Tumbling(time.Minute), AllowedLateness: -1}, "negative allowed lateness"},
		{"negative retention", Config{Window: Tumbling(time.Minute), Retention: -time.Hour}, "negative retention"},
		{"negative idle", Config{Window: Tumbling(time.Minute), IdleTimeout: -time.Hour}, "negative idle timeout"},
		{"sub-ms grace", Config{Window: Tumbling(time.Minute), Grace: time.Microsecond}, "grace 1µs: not a whole number"},
		{"grace above default retention", Config{Window: Tumbling(time.Minute), Grace: 49 * time.Hour}, "retention 48h0m0s: below grace 49h0m0s"},
		{"retention equal grace", Config{Window: Tumbling(time.Minute), Grace: time.Hour, Retention: time.Hour}, ""},
		{"session retention below gap", Config{Window: Session(time.Hour), Retention: time.Minute}, "below grace + gap 1h0m0s"},
		{"huge durations", Config{Window: Tumbling(time.Hour), AllowedLateness: math.MaxInt64 / time.Millisecond * time.Millisecond, Grace: math.MaxInt64 / time.Millisecond * time.Millisecond / 2, Retention: math.MaxInt64 / time.Millisecond * time.Millisecond}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.cfg.Validate()
			_, newErr := New[int64](tc.cfg)
			if (err == nil) != (newErr == nil) {
				t.Fatalf("Validate %v but New %v", err, newErr)
			}
			switch {
			case tc.err == "" && err != nil:
				t.Fatalf("Validate: %v", err)
			case tc.err != "" && err == nil:
				t.Fatalf("Validate: nil, want %q", tc.err)
			case err != nil && (!strings.Contains(err.Error(), tc.err) || !strings.HasPrefix(err.Error(), "windows: ")):
				t.Fatalf("Validate: %q, want windows: …%q…", err, tc.err)
			}
		})
	}
}

func TestParseSpec(t *testing.T) {
	for _, tc := range []struct {
		in, out string // out "" = error
	}{
		{"1m", "tumbling:1m"},
		{"10s", "tumbling:10s"},
		{"1h", "tumbling:1h"},
		{"tumbling:90s", "tumbling:1m30s"},
		{"tumbling:1500ms", "tumbling:1.5s"},
		{"hopping:1h/10s", "hopping:1h/10s"},
		{"hopping:1h30m0s/1m", "hopping:1h30m/1m"},
		{"session:30m", "session:30m"},
		{"session:25h", "session:25h"},
		{"", ""},
		{"tumbling:", ""},
		{"tumbling:-1m", ""},
		{"hopping:1h", ""},
		{"hopping:1h/x", ""},
		{"hopping:1m/1h", ""},
		{"session:0s", ""},
		{"sliding:1m", ""},
		{"1", ""},
	} {
		t.Run(tc.in, func(t *testing.T) {
			s, err := ParseSpec(tc.in)
			if tc.out == "" {
				if err == nil {
					t.Fatalf("ParseSpec(%q) = %s, want error", tc.in, s)
				}
				if !strings.HasPrefix(err.Error(), "windows: ") {
					t.Fatalf("error %q lacks the package prefix", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseSpec(%q): %v", tc.in, err)
			}
			if s.String() != tc.out {
				t.Fatalf("ParseSpec(%q) = %s, want %s", tc.in, s, tc.out)
			}
			// String round-trips.
			if back, err := ParseSpec(s.String()); err != nil || back != s {
				t.Fatalf("ParseSpec(%q) = %v, %v; want %v", s.String(), back, err, s)
			}
		})
	}
}

// TestAssignBruteForce checks Assign against the definition: the windows
// [k·advance, k·advance+size) that contain ts, over negative and positive
// times and sizes that are and are not multiples of the advance.
func TestAssignBruteForce(t *testing.T) {
	for _, spec := range []Spec{
		Tumbling(7 * time.Millisecond),
		Hopping(10*time.Millisecond, 5*time.Millisecond),
		Hopping(10*time.Millisecond, 3*time.Millisecond),
		Hopping(9*time.Millisecond, 9*time.Millisecond),
		Hopping(20*time.Millisecond, 1*time.Millisecond),
	} {
		size, adv := ms(spec.Size), ms(spec.Advance)
		if adv == 0 {
			adv = size
		}
		for ts := int64(-100); ts <= 100; ts++ {
			var want []Window
			for k := int64(-200); k <= 200; k++ {
				if w := (Window{k * adv, k*adv + size}); w.Contains(ts) {
					want = append(want, w)
				}
			}
			got := spec.Assign(ts)
			if windowList(got) != windowList(want) {
				t.Fatalf("%s Assign(%d) = %s, want %s", spec, ts, windowList(got), windowList(want))
			}
		}
	}
}

func TestAssignEdges(t *testing.T) {
	huge := math.MaxInt64 / time.Millisecond * time.Millisecond
	for _, tc := range []struct {
		name string
		spec Spec
		ts   int64
		want string
	}{
		{"max time", Tumbling(time.Millisecond), MaxTime, "[4611686018427387903,4611686018427387904)"},
		{"min time", Tumbling(time.Millisecond), MinTime, "[-4611686018427387904,-4611686018427387903)"},
		{"huge size at max", Tumbling(huge), MaxTime, "[4611686018427000000,4611695241799036854)"},
		{"huge size at min", Tumbling(huge), MinTime, "[-4611695241799036854,-4611686018427000000)"},
		{"huge hopping at max", Hopping(huge, huge/2), MaxTime, "[4611681406740981573,4611690630113018427) [4611686018427000000,4611695241799036854)"},
		{"huge session at max", Session(huge), MaxTime, "[4611686018427387903,4611695241799424757)"},
		{"negative", Tumbling(time.Minute), -1, "[-60000,0)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := windowList(tc.spec.Assign(tc.ts))
			if got != tc.want {
				t.Fatalf("Assign(%d) = %s, want %s", tc.ts, got, tc.want)
			}
			for _, w := range tc.spec.Assign(tc.ts) {
				if !w.Contains(tc.ts) || w.End-w.Start != max(ms(tc.spec.Size), ms(tc.spec.Gap)) {
					t.Fatalf("window %s does not hold %d or has the wrong size", w, tc.ts)
				}
			}
		})
	}
}

func TestAssignPanics(t *testing.T) {
	for _, tc := range []struct {
		name string
		spec Spec
		ts   int64
	}{
		{"zero spec", Spec{}, 0},
		{"zero size", Tumbling(0), 0},
		{"advance above size", Hopping(time.Second, time.Minute), 0},
		{"time above MaxTime", Tumbling(time.Second), MaxTime + 1},
		{"time below MinTime", Tumbling(time.Second), MinTime - 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			defer func() {
				if recover() == nil {
					t.Fatal("no panic")
				}
			}()
			tc.spec.Assign(tc.ts)
		})
	}
}

func TestReasonString(t *testing.T) {
	for r, want := range map[Reason]string{OnTime: "on time", Late: "late", OutOfRange: "out of range", 9: "reason(9)"} {
		if r.String() != want {
			t.Errorf("%d: %q, want %q", r, r.String(), want)
		}
	}
	if KindHopping.String() != "hopping" || Kind(9).String() != "kind(9)" {
		t.Errorf("Kind.String: %q %q", KindHopping, Kind(9))
	}
}
