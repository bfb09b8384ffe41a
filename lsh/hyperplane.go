package lsh

import (
	"errors"
	"fmt"
	"math"
)

// Defaults of HyperplaneConfig; see the package documentation for the
// candidate probabilities they give.
const (
	DefaultDim    = 32
	DefaultTables = 48
	DefaultBits   = 14
)

// Limits on HyperplaneConfig.
const (
	MaxDim    = 4096
	MaxTables = 1024
	MaxBits   = 64
)

// HyperplaneConfig configures Hyperplanes. The zero value of Dim, Tables
// and Bits means the default. All fields are part of the stored state: the
// same values compute the same bucket ids on every instance and in every
// replay; changing any of them requires a new topology version.
type HyperplaneConfig struct {
	// Dim is the dimension of the feature vectors (--feature-dim). Default
	// DefaultDim (32), at most MaxDim.
	Dim int
	// Tables is the number of hash tables L: the number of buckets a song
	// is in. Default DefaultTables (48), at most MaxTables.
	Tables int
	// Bits is the number of hyperplanes (sign bits) k per table. Default
	// DefaultBits (14), at most MaxBits.
	Bits int
	// Seed selects the hyperplanes. Any value; default 0.
	Seed uint64
}

func (c HyperplaneConfig) withDefaults() HyperplaneConfig {
	if c.Dim == 0 {
		c.Dim = DefaultDim
	}
	if c.Tables == 0 {
		c.Tables = DefaultTables
	}
	if c.Bits == 0 {
		c.Bits = DefaultBits
	}
	return c
}

// Validate reports the first bad value of c, after applying defaults to its
// zero fields. Errors are prefixed "lsh: ".
func (c HyperplaneConfig) Validate() error {
	c = c.withDefaults()
	switch {
	case c.Dim < 1 || c.Dim > MaxDim:
		return fmt.Errorf("lsh: Dim %d out of range 1…%d", c.Dim, MaxDim)
	case c.Tables < 1 || c.Tables > MaxTables:
		return fmt.Errorf("lsh: Tables %d out of range 1…%d", c.Tables, MaxTables)
	case c.Bits < 1 || c.Bits > MaxBits:
		return fmt.Errorf("lsh: Bits %d out of range 1…%d", c.Bits, MaxBits)
	}
	return nil
}

// Probability returns 1 − (1 − p^k)^L with p = 1 − arccos(cos)/π: the
// probability that two vectors with cosine similarity cos share at least
// one bucket (defaults applied).
func (c HyperplaneConfig) Probability(cos float64) float64 {
	c = c.withDefaults()
	p := 1 - math.Acos(max(-1, min(1, cos)))/math.Pi
	return 1 - math.Pow(1-math.Pow(p, float64(c.Bits)), float64(c.Tables))
}

// Hyperplanes computes random-hyperplane (sign) signatures of feature
// vectors and their LSH buckets: bit j of table t is set when the vector
// lies on the positive side of hyperplane (t, j), so two vectors at angle θ
// agree in a bit with probability 1 − θ/π. It is immutable and safe for
// concurrent use.
type Hyperplanes struct {
	cfg HyperplaneConfig
	// planes holds the hyperplane normals, table-major, then dimension,
	// then bit: planes[(t*Dim+i)*Bits+j] is coordinate i of normal (t, j).
	planes []float32
}

// NewHyperplanes returns Hyperplanes for cfg, or the error of cfg.Validate.
//
// The normals' coordinates are independent, close to standard normal
// (each is the sum of 12 uniform variates minus 6: mean 0, variance 1,
// computed with integers only), so the normals point in nearly uniformly
// random directions and every platform derives the same ones from a Seed.
func NewHyperplanes(cfg HyperplaneConfig) (*Hyperplanes, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	h := &Hyperplanes{cfg: cfg, planes: make([]float32, cfg.Tables*cfg.Dim*cfg.Bits)}
	rng := splitmix{state: cfg.Seed ^ saltPlanes}
	for i := range h.planes {
		var sum int64
		for range 6 {
			w := rng.next()
			sum += int64(w>>32) + int64(w&math.MaxUint32)
		}
		// Exact: |sum − 6·2^32| < 2^35 fits a float64 mantissa and the
		// division is by a power of two; only the float32 rounding is
		// inexact, and it is deterministic.
		h.planes[i] = float32(float64(sum-6<<32) / (1 << 32))
	}
	return h, nil
}

// Config returns the configuration of h, defaults applied.
func (h *Hyperplanes) Config() HyperplaneConfig { return h.cfg }

// ErrVector is wrapped by the errors about a vector that cannot be hashed:
// of the wrong dimension, or with a NaN or infinite component.
var ErrVector = errors.New("lsh: bad vector")

func (h *Hyperplanes) check(v []float32) (zero bool, err error) {
	if len(v) != h.cfg.Dim {
		return false, fmt.Errorf("%w: dimension %d, want %d", ErrVector, len(v), h.cfg.Dim)
	}
	zero = true
	for i, x := range v {
		if math.IsNaN(float64(x)) || math.IsInf(float64(x), 0) {
			return false, fmt.Errorf("%w: component %d is %g", ErrVector, i, x)
		}
		if x != 0 {
			zero = false
		}
	}
	return zero, nil
}

// Sign appends the signature of v to dst, one word per table (bit j set
// when v lies strictly on the positive side of hyperplane j of the table),
// and returns the extended slice. Positive multiples of v that are exact
// (such as 2v) have the same signature; the zero vector has all bits clear.
// It returns an error wrapping ErrVector if len(v) != Dim or a component is
// NaN or infinite.
func (h *Hyperplanes) Sign(v []float32, dst []uint64) ([]uint64, error) {
	if _, err := h.check(v); err != nil {
		return dst, err
	}
	for t := range h.cfg.Tables {
		dst = append(dst, h.bits(t, v))
	}
	return dst, nil
}

// Buckets appends the Tables buckets of v to dst, in table order (bucket t
// has Table t and the sign bits of table t as Hash), and returns the
// extended slice. The zero vector has no direction and no buckets: nothing
// is appended (it is no one's candidate; its cosine with anything is 0).
// It returns an error wrapping ErrVector if len(v) != Dim or a component is
// NaN or infinite.
func (h *Hyperplanes) Buckets(v []float32, dst []Bucket) ([]Bucket, error) {
	zero, err := h.check(v)
	if err != nil || zero {
		return dst, err
	}
	for t := range h.cfg.Tables {
		dst = append(dst, Bucket{Table: uint16(t), Hash: h.bits(t, v)})
	}
	return dst, nil
}

// bits returns the sign bits of v for table t.
//
// NB: the dot products are part of the stored format. Each product of two
// float32s is exact in float64 (so no platform's fused multiply-add can
// change it), and each normal's products are summed in dimension order, so
// every platform gets the same sums and the same signs.
func (h *Hyperplanes) bits(t int, v []float32) uint64 {
	k, d := h.cfg.Bits, h.cfg.Dim
	var acc [MaxBits]float64
	sums := acc[:k]
	planes := h.planes[t*d*k : (t+1)*d*k]
	for i, x := range v[:d] {
		xi := float64(x)
		row := planes[i*k : (i+1)*k]
		for j, p := range row {
			sums[j] += float64(p) * xi
		}
	}
	var w uint64
	for j, s := range sums {
		if s > 0 {
			w |= 1 << j
		}
	}
	return w
}
