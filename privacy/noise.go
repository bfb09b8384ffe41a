package privacy

import (
	"fmt"
	"math"

	"github.com/google/differential-privacy/go/v3/dpagg"
	"github.com/google/differential-privacy/go/v3/noise"
)

// Mechanism is how a release's exact values become noisy ones.
type Mechanism string

const (
	// Count is a count of distinct users, each in at most L0 partitions
	// (LInf 1): dpagg.Count with Laplace noise.
	Count Mechanism = "count"
	// Sum is a sum of per-user contributions capped at LInf, each user in
	// at most L0 partitions: noise.Laplace's AddNoiseInt64 with both
	// sensitivities (never a Count of L0·LInf).
	Sum Mechanism = "sum"
	// SelectCount keeps the partitions that dpagg.PreAggSelectPartition
	// keeps (with SelectEpsilon and SelectDelta; no partition is public)
	// and gives those a Count's noisy value; the others are not released.
	SelectCount Mechanism = "select-count"
)

// Params are the noise parameters of a release.
type Params struct {
	Mechanism Mechanism `json:"mechanism"`
	// L0 is how many partitions of the table one user changes per day;
	// LInf by how much at most.
	L0   int64 `json:"l0"`
	LInf int64 `json:"linf"`
	// Epsilon and Delta are the release's noise; Delta is 0 with Laplace
	// noise.
	Epsilon float64 `json:"epsilon"`
	Delta   float64 `json:"delta"`
	// SelectEpsilon and SelectDelta are the partition selection's, with
	// SelectCount.
	SelectEpsilon float64 `json:"select_epsilon,omitempty"`
	SelectDelta   float64 `json:"select_delta,omitempty"`
}

// Cost is the ε a release with p costs: its noise's and its selection's.
func (p Params) Cost() float64 { return p.Epsilon + p.SelectEpsilon }

func (p Params) validate() error {
	switch p.Mechanism {
	case Count, Sum:
		if p.SelectEpsilon != 0 || p.SelectDelta != 0 {
			return fmt.Errorf("privacy: a %s selects no partitions", p.Mechanism)
		}
	case SelectCount:
		if !(p.SelectEpsilon > 0) || math.IsInf(p.SelectEpsilon, 0) || !(p.SelectDelta > 0 && p.SelectDelta < 1) {
			return fmt.Errorf("privacy: partition selection needs ε > 0 and 0 < δ < 1, not %g and %g", p.SelectEpsilon, p.SelectDelta)
		}
	default:
		return fmt.Errorf("privacy: unknown mechanism %q", p.Mechanism)
	}
	if p.Mechanism != Sum && p.LInf != 1 {
		return fmt.Errorf("privacy: a count has LInf 1, not %d", p.LInf)
	}
	if p.L0 < 1 || p.LInf < 1 || !(p.Epsilon > 0) || math.IsInf(p.Epsilon, 0) || p.Delta != 0 {
		return fmt.Errorf("privacy: bad parameters %+v (Laplace: L0, LInf ≥ 1, ε > 0, δ = 0)", p)
	}
	return nil
}

// draw returns exact plus noise of p: the one place values are noised.
func draw(exact int64, p Params) (int64, error) {
	if err := p.validate(); err != nil {
		return 0, err
	}
	switch p.Mechanism {
	case Count, SelectCount:
		c, err := dpagg.NewCount(&dpagg.CountOptions{Epsilon: p.Epsilon, Delta: p.Delta,
			MaxPartitionsContributed: p.L0, Noise: noise.Laplace()})
		if err != nil {
			return 0, fmt.Errorf("privacy: count: %w", err)
		}
		if err := c.IncrementBy(exact); err != nil {
			return 0, fmt.Errorf("privacy: count: %w", err)
		}
		v, err := c.Result()
		if err != nil {
			return 0, fmt.Errorf("privacy: count: %w", err)
		}
		return v, nil
	default:
		v, err := noise.Laplace().AddNoiseInt64(exact, p.L0, p.LInf, p.Epsilon, p.Delta)
		if err != nil {
			return 0, fmt.Errorf("privacy: sum: %w", err)
		}
		return v, nil
	}
}

// drawRelease returns the noisy values of a release's exact ones: every
// partition's, or with SelectCount those the partition selection keeps.
func drawRelease(exact map[string]int64, p Params) (map[string]int64, error) {
	if err := p.validate(); err != nil {
		return nil, err
	}
	out := make(map[string]int64, len(exact))
	for part, v := range exact {
		if p.Mechanism == SelectCount {
			sel, err := dpagg.NewPreAggSelectPartition(&dpagg.PreAggSelectPartitionOptions{
				Epsilon: p.SelectEpsilon, Delta: p.SelectDelta, MaxPartitionsContributed: p.L0})
			if err != nil {
				return nil, fmt.Errorf("privacy: partition selection: %w", err)
			}
			if err := sel.IncrementBy(v); err != nil {
				return nil, fmt.Errorf("privacy: partition selection: %w", err)
			}
			keep, err := sel.ShouldKeepPartition()
			if err != nil {
				return nil, fmt.Errorf("privacy: partition selection: %w", err)
			}
			if !keep {
				continue
			}
		}
		n, err := draw(v, p)
		if err != nil {
			return nil, err
		}
		out[part] = n
	}
	return out, nil
}

// Interval is a confidence interval: the exact value is in [Lo, Hi] with
// probability at least 1 − Alpha.
type Interval struct {
	Lo    float64 `json:"lo"`
	Hi    float64 `json:"hi"`
	Alpha float64 `json:"alpha"`
}

// interval is the confidence interval of a sum of noisy values each drawn
// with p (see sumInterval).
func interval(noisy []int64, p Params, alpha float64) (Interval, error) {
	ps := make([]Params, len(noisy))
	for i := range ps {
		ps[i] = p
	}
	return sumInterval(noisy, ps, alpha)
}

// sumInterval is the confidence interval of the sum of noisy values, the
// i-th drawn with ps[i]: each one's interval at level alpha/n (the
// library's), summed, so the sum's holds with probability at least
// 1 − alpha (a union bound over the n values). Counts and sums are never
// negative, so Lo is at least 0.
func sumInterval(noisy []int64, ps []Params, alpha float64) (Interval, error) {
	out := Interval{Alpha: alpha}
	if len(noisy) == 0 {
		return out, nil
	}
	a := alpha / float64(len(noisy))
	for i, v := range noisy {
		p := ps[i]
		ci, err := noise.Laplace().ComputeConfidenceIntervalInt64(v, p.L0, p.LInf, p.Epsilon, p.Delta, a)
		if err != nil {
			return Interval{}, fmt.Errorf("privacy: confidence interval: %w", err)
		}
		out.Lo += ci.LowerBound
		out.Hi += ci.UpperBound
	}
	out.Lo = max(out.Lo, 0)
	out.Hi = max(out.Hi, 0)
	return out, nil
}
