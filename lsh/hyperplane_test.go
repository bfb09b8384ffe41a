package lsh

import (
	"errors"
	"math"
	"math/bits"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
)

func mustHyperplanes(tb testing.TB, cfg HyperplaneConfig) *Hyperplanes {
	tb.Helper()
	h, err := NewHyperplanes(cfg)
	if err != nil {
		tb.Fatal(err)
	}
	return h
}

func TestHyperplaneConfigValidate(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  HyperplaneConfig
		err  string
	}{
		{"zero value is the defaults", HyperplaneConfig{}, ""},
		{"limits", HyperplaneConfig{Dim: MaxDim, Tables: 1, Bits: MaxBits}, ""},
		{"bad dim", HyperplaneConfig{Dim: -2}, "lsh: Dim -2 out of range"},
		{"dim too big", HyperplaneConfig{Dim: MaxDim + 1}, "lsh: Dim 4097 out of range"},
		{"bad tables", HyperplaneConfig{Tables: MaxTables + 1}, "lsh: Tables 1025 out of range"},
		{"bad bits", HyperplaneConfig{Bits: 65}, "lsh: Bits 65 out of range"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.cfg.Validate()
			_, nerr := NewHyperplanes(tc.cfg)
			if tc.err == "" {
				if err != nil || nerr != nil {
					t.Fatalf("Validate = %v, NewHyperplanes = %v", err, nerr)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.err) || nerr == nil {
				t.Fatalf("Validate = %v, NewHyperplanes = %v; want %q", err, nerr, tc.err)
			}
		})
	}
	c := mustHyperplanes(t, HyperplaneConfig{}).Config()
	if c.Dim != DefaultDim || c.Tables != DefaultTables || c.Bits != DefaultBits {
		t.Fatalf("defaults: %+v", c)
	}
}

func randVec(rng *rand.Rand, d int) []float32 {
	v := make([]float32, d)
	for i := range v {
		v[i] = float32(rng.NormFloat64())
	}
	return v
}

// vecAtCosine returns a vector with cosine c to v (up to float32 rounding).
func vecAtCosine(rng *rand.Rand, v []float32, c float64) []float32 {
	// w = c·v̂ + √(1−c²)·û with u ⟂ v.
	u := randVec(rng, len(v))
	nv := math.Sqrt(norm2(v))
	var dot float64
	for i := range v {
		dot += float64(u[i]) * float64(v[i]) / nv
	}
	uu := make([]float64, len(v))
	for i := range v {
		uu[i] = float64(u[i]) - dot*float64(v[i])/nv
	}
	var nu float64
	for _, x := range uu {
		nu += x * x
	}
	nu = math.Sqrt(nu)
	w := make([]float32, len(v))
	for i := range v {
		w[i] = float32(c*float64(v[i])/nv + math.Sqrt(1-c*c)*uu[i]/nu)
	}
	return w
}

func TestSignScaleInvariant(t *testing.T) {
	h := mustHyperplanes(t, HyperplaneConfig{})
	rng := rand.New(rand.NewPCG(8, 8))
	for range 500 {
		v := randVec(rng, DefaultDim)
		want, _ := h.Sign(v, nil)
		wantB, _ := h.Buckets(v, nil)
		for _, c := range []float32{2, 0.5, 1024, 1.0 / 64, float32(0.1 + 10*rng.Float64())} {
			w := slices.Clone(v)
			for i := range w {
				w[i] *= c
			}
			got, _ := h.Sign(w, nil)
			gotB, _ := h.Buckets(w, nil)
			if !slices.Equal(got, want) || !slices.Equal(gotB, wantB) {
				t.Fatalf("signature of %g·v differs from v's", c)
			}
		}
	}
}

// TestBitAgreement checks that the hyperplanes are random directions: two
// vectors at angle θ agree in a sign bit with probability 1 − θ/π, and
// share a bucket with the probability HyperplaneConfig.Probability gives.
func TestBitAgreement(t *testing.T) {
	h := mustHyperplanes(t, HyperplaneConfig{Seed: 11})
	cfg := h.Config()
	rng := rand.New(rand.NewPCG(9, 9))
	const pairs = 1500
	for _, c := range []float64{-0.5, 0, 0.5, 0.8, 0.9, 0.95} {
		agree, collide := 0, 0
		for range pairs {
			v := randVec(rng, cfg.Dim)
			w := vecAtCosine(rng, v, c)
			sv, _ := h.Sign(v, nil)
			sw, _ := h.Sign(w, nil)
			shared := false
			for t := range sv {
				agree += cfg.Bits - bits.OnesCount64(sv[t]^sw[t])
				shared = shared || sv[t] == sw[t]
			}
			if shared {
				collide++
			}
		}
		p := 1 - math.Acos(c)/math.Pi
		gotP := float64(agree) / float64(pairs*cfg.Tables*cfg.Bits)
		if math.Abs(gotP-p) > 0.01 {
			t.Errorf("cos %.2f: bits agree with rate %.4f, want 1−θ/π = %.4f", c, gotP, p)
		}
		want := cfg.Probability(c)
		rate := float64(collide) / pairs
		// Bits of one table are not independent across pairs of vectors
		// drawn this way only through the shared hyperplanes; allow 5 SE.
		if tol := 5*math.Sqrt(want*(1-want)/pairs) + 2.0/pairs; math.Abs(rate-want) > tol {
			t.Errorf("cos %.2f: candidate rate %.4f, curve %.4f ± %.4f", c, rate, want, tol)
		}
		t.Logf("cos %.2f: bit agreement %.4f (1−θ/π %.4f), candidate rate %.4f (curve %.4f)", c, gotP, p, rate, want)
	}
}

func TestHyperplaneVectors(t *testing.T) {
	h := mustHyperplanes(t, HyperplaneConfig{Dim: 4, Tables: 3, Bits: 5})
	zero := []float32{0, 0, 0, 0}
	if got, err := h.Buckets(zero, nil); err != nil || got != nil {
		t.Fatalf("zero vector: buckets %v, %v; want none", got, err)
	}
	if got, err := h.Sign(zero, nil); err != nil || !slices.Equal(got, []uint64{0, 0, 0}) {
		t.Fatalf("zero vector: signature %v, %v", got, err)
	}
	if got, err := h.Buckets([]float32{0, 1, 0, 0}, nil); err != nil || len(got) != 3 || got[2].Table != 2 || got[0].Hash >= 1<<5 {
		t.Fatalf("buckets %v, %v", got, err)
	}
	for _, tc := range []struct {
		name string
		v    []float32
		err  string
	}{
		{"short", []float32{1, 2, 3}, "lsh: bad vector: dimension 3, want 4"},
		{"long", []float32{1, 2, 3, 4, 5}, "lsh: bad vector: dimension 5, want 4"},
		{"NaN", []float32{1, float32(math.NaN()), 0, 0}, "lsh: bad vector: component 1 is NaN"},
		{"Inf", []float32{1, 0, 0, float32(math.Inf(-1))}, "lsh: bad vector: component 3 is -Inf"},
	} {
		_, err := h.Buckets(tc.v, nil)
		_, serr := h.Sign(tc.v, nil)
		if err == nil || err.Error() != tc.err || !errors.Is(err, ErrVector) || serr == nil || serr.Error() != tc.err {
			t.Errorf("%s: Buckets error %v, Sign error %v; want %q", tc.name, err, serr, tc.err)
		}
	}
}

// TestHyperplaneGolden pins the hyperplanes and bucket ids: they are part
// of the stored state. A change here needs a new topology version.
func TestHyperplaneGolden(t *testing.T) {
	h := mustHyperplanes(t, HyperplaneConfig{Dim: 4, Tables: 2, Bits: 3, Seed: 0})
	wantPlanes := []float32{
		2.2257202, -1.3144727, 0.41312087, -1.5023726, -0.7452811, -1.5602173,
		1.0643767, -0.5057458, -1.9485656, 0.109921634, -1.4497528, -0.18498757,
		0.3800569, -0.32433775, 0.91991544, 0.8893541, -0.5463829, 0.8666868,
		-0.8629114, 0.75757074, 0.97363585, -2.677871, -1.8142772, 2.0821269,
	}
	if !slices.Equal(h.planes, wantPlanes) {
		t.Errorf("planes = %#v\nwant     %#v", h.planes, wantPlanes)
	}
	d := mustHyperplanes(t, HyperplaneConfig{})
	v := make([]float32, DefaultDim)
	for i := range v {
		v[i] = float32(i%7) - 3
	}
	got, err := d.Buckets(v, nil)
	if err != nil {
		t.Fatal(err)
	}
	hashes := make([]uint64, len(got))
	for i, b := range got {
		hashes[i] = b.Hash
	}
	if want := []uint64{
		0xd8e, 0x1c2d, 0x2a2b, 0xfb4, 0x2644, 0x2f78, 0x10f3, 0x1642, 0x34a3, 0x3027, 0xd7a, 0x31ed,
		0x1558, 0x1359, 0x2b3a, 0x292d, 0x1b2b, 0x1d0a, 0x7ca, 0x1f12, 0x1019, 0x3671, 0x31a5, 0x30a9,
		0x331d, 0x10be, 0x38d1, 0x1e0f, 0x1ae4, 0x29db, 0x23cf, 0xbaf, 0x1270, 0x2052, 0xaa9, 0x1edc,
		0x3916, 0x1873, 0x123a, 0x2749, 0x2db5, 0x2750, 0x2b1, 0x355f, 0x201b, 0xb7d, 0x96f, 0x1b22,
	}; !slices.Equal(hashes, want) {
		t.Errorf("bucket hashes = %#v\nwant            %#v", hashes, want)
	}
	if o := mustHyperplanes(t, HyperplaneConfig{Seed: 1}); slices.Equal(o.planes, d.planes) {
		t.Error("seed 1 gives the same hyperplanes as seed 0")
	}
}
