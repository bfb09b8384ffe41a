package privacy

import (
	"fmt"
	"math"
	"strings"
	"testing"
)

// Tolerances as the library's own statistical tests set them
// (noise/laplace_noise_test.go): the 99.9995% quantile of the sample
// mean's and the sample variance's approximately normal distributions,
// so a correct mechanism fails with probability 1e-5.
const z = 4.41717

// TestNoiseHonest draws 100,000 values through the release path at a
// fixed ε for each mechanism: their mean is the exact value and their
// variance the Laplace variance 2λ² (λ = L0·LInf/ε) within the library's
// tolerances, and the confidence intervals cover the exact value at
// least at the stated rate.
func TestNoiseHonest(t *testing.T) {
	const n = 100_000
	for _, tc := range []struct {
		name  string
		p     Params
		exact int64
	}{
		{"count", Params{Mechanism: Count, L0: 8, LInf: 1, Epsilon: 0.5}, 1000},
		{"sum", Params{Mechanism: Sum, L0: 8, LInf: 5, Epsilon: 0.5}, 20_000},
		{"count small ε", Params{Mechanism: Count, L0: 3, LInf: 1, Epsilon: 0.1}, 500},
	} {
		t.Run(tc.name, func(t *testing.T) {
			lambda := float64(tc.p.L0*tc.p.LInf) / tc.p.Epsilon
			variance := 2 * lambda * lambda
			var sum, sumSq float64
			const alpha = 0.1
			hits := 0
			for range n {
				v, err := draw(tc.exact, tc.p)
				if err != nil {
					t.Fatal(err)
				}
				d := float64(v - tc.exact)
				sum += d
				sumSq += d * d
				ci, err := interval([]int64{v}, tc.p, alpha)
				if err != nil {
					t.Fatal(err)
				}
				if ci.Lo <= float64(tc.exact) && float64(tc.exact) <= ci.Hi {
					hits++
				}
			}
			mean := sum / n
			sampleVar := sumSq/n - mean*mean
			if tol := z * math.Sqrt(variance/n); math.Abs(mean) > tol {
				t.Errorf("mean error %.3f, tolerance %.3f", mean, tol)
			}
			if tol := z * math.Sqrt(5) * variance / math.Sqrt(n); math.Abs(sampleVar-variance) > tol {
				t.Errorf("variance %.1f, want %.1f ± %.1f", sampleVar, variance, tol)
			}
			// Hits are binomial(n, ≥ 1−α): the rate must not fall below
			// 1−α by more than z standard deviations.
			if min := (1 - alpha) - z*math.Sqrt(alpha*(1-alpha)/n); float64(hits)/n < min {
				t.Errorf("intervals covered %.4f, want at least %.4f", float64(hits)/n, min)
			}
		})
	}
}

// TestRangeIntervalCovers: the interval of a sum of a week's releases
// (a union bound over the days) covers the exact sum at least at its
// rate, and is not wider than the days' own intervals added up.
func TestRangeIntervalCovers(t *testing.T) {
	const n, days, alpha = 20_000, 7, 0.05
	p := Params{Mechanism: Count, L0: 8, LInf: 1, Epsilon: 0.5}
	exact := []int64{100, 0, 3, 5000, 42, 7, 900}
	var want int64
	for _, e := range exact {
		want += e
	}
	hits := 0
	for range n {
		noisy := make([]int64, days)
		for i, e := range exact {
			v, err := draw(e, p)
			if err != nil {
				t.Fatal(err)
			}
			noisy[i] = v
		}
		ci, err := interval(noisy, p, alpha)
		if err != nil {
			t.Fatal(err)
		}
		if ci.Lo <= float64(want) && float64(want) <= ci.Hi {
			hits++
		}
	}
	if min := (1 - alpha) - z*math.Sqrt(alpha*(1-alpha)/n); float64(hits)/n < min {
		t.Errorf("range intervals covered %.4f, want at least %.4f", float64(hits)/n, min)
	}
}

// TestParamsRefused: parameters that would under-noise are refused.
func TestParamsRefused(t *testing.T) {
	for _, p := range []Params{
		{Mechanism: Count, L0: 8, LInf: 5, Epsilon: 1}, // a count of capped plays: use Sum
		{Mechanism: Sum, L0: 0, LInf: 5, Epsilon: 1},
		{Mechanism: Sum, L0: 1, LInf: 5, Epsilon: 0},
		{Mechanism: Sum, L0: 1, LInf: 5, Epsilon: math.Inf(1)},
		{Mechanism: Sum, L0: 1, LInf: 5, Epsilon: 1, Delta: 1e-6},
		{Mechanism: "gaussian", L0: 1, LInf: 1, Epsilon: 1},
	} {
		if _, err := draw(10, p); err == nil {
			t.Errorf("%+v: drawn", p)
		}
	}
}

// TestSelection: partition selection drops partitions of one user but
// for a δ-small chance, keeps large ones, and a kept one gets a count's
// noisy value; parameters without a selection δ are refused.
func TestSelection(t *testing.T) {
	p := Params{Mechanism: SelectCount, L0: 8, LInf: 1, Epsilon: 0.5, SelectEpsilon: 0.5, SelectDelta: 1e-5}
	exact := map[string]int64{}
	for i := range 5000 {
		exact[fmt.Sprintf("single-%d", i)] = 1
	}
	for i := range 50 {
		exact[fmt.Sprintf("big-%d", i)] = 5000
	}
	got, err := drawRelease(exact, p)
	if err != nil {
		t.Fatal(err)
	}
	singles := 0
	for part, v := range got {
		if strings.HasPrefix(part, "single-") {
			singles++
		} else if math.Abs(float64(v-5000)) > 500 {
			t.Errorf("%s: %d, far from 5000", part, v)
		}
	}
	// 5000 partitions of one user each are kept with probability at most
	// δ each: 0.05 expected; 3 or more has probability below 2e-5.
	if singles > 2 || len(got)-singles != 50 {
		t.Fatalf("kept %d single-user partitions and %d of 50 large ones", singles, len(got)-singles)
	}
	if p.Cost() != 1 {
		t.Fatalf("cost %v, want ε of the noise plus the selection's", p.Cost())
	}
	for _, bad := range []Params{
		{Mechanism: SelectCount, L0: 8, LInf: 1, Epsilon: 0.5, SelectEpsilon: 0.5},
		{Mechanism: SelectCount, L0: 8, LInf: 1, Epsilon: 0.5, SelectDelta: 1e-5},
		{Mechanism: Count, L0: 8, LInf: 1, Epsilon: 0.5, SelectEpsilon: 0.5, SelectDelta: 1e-5},
	} {
		if _, err := drawRelease(exact, bad); err == nil {
			t.Errorf("%+v: drawn", bad)
		}
	}
}
