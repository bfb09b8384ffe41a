package lsh

import (
	"maps"
	"math"
	"math/big"
	"math/rand/v2"
	"slices"
	"testing"
)

// bigCosine computes the cosine with 200-bit arithmetic: the reference.
func bigCosine(a, b []float32) float64 {
	prec := uint(200)
	dot, na, nb := new(big.Float).SetPrec(prec), new(big.Float).SetPrec(prec), new(big.Float).SetPrec(prec)
	for i := range a {
		x, y := new(big.Float).SetPrec(prec).SetFloat64(float64(a[i])), new(big.Float).SetPrec(prec).SetFloat64(float64(b[i]))
		dot.Add(dot, new(big.Float).SetPrec(prec).Mul(x, y))
		na.Add(na, new(big.Float).SetPrec(prec).Mul(x, x))
		nb.Add(nb, new(big.Float).SetPrec(prec).Mul(y, y))
	}
	den := new(big.Float).SetPrec(prec).Mul(na, nb)
	den.Sqrt(den)
	r, _ := new(big.Float).SetPrec(prec).Quo(dot, den).Float64()
	return r
}

func TestCosine(t *testing.T) {
	for _, tc := range []struct {
		name string
		a, b []float32
		want float64
	}{
		{"same", []float32{1, 2, 3}, []float32{1, 2, 3}, 1},
		{"scaled", []float32{1, 2, 3}, []float32{0.5, 1, 1.5}, 1},
		{"opposite", []float32{1, 2, 3}, []float32{-2, -4, -6}, -1},
		{"orthogonal", []float32{1, 0}, []float32{0, 5}, 0},
		{"45 degrees", []float32{1, 0}, []float32{1, 1}, 1 / math.Sqrt2},
		{"zero", []float32{0, 0}, []float32{1, 1}, 0},
		{"both zero", []float32{0, 0}, []float32{0, 0}, 0},
		{"huge", []float32{3e38, 3e38}, []float32{3e38, 0}, 1 / math.Sqrt2},
		{"tiny", []float32{1e-30, 0}, []float32{1e-30, 1e-30}, 1 / math.Sqrt2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := Cosine(tc.a, tc.b); math.Abs(got-tc.want) > 1e-15 {
				t.Fatalf("Cosine = %.17g, want %.17g", got, tc.want)
			}
		})
	}
	rng := rand.New(rand.NewPCG(10, 10))
	worst := 0.0
	for range 2000 {
		a, b := randVec(rng, 32), randVec(rng, 32)
		if rng.IntN(2) == 0 {
			b = vecAtCosine(rng, a, 0.999)
		}
		worst = max(worst, math.Abs(Cosine(a, b)-bigCosine(a, b)))
	}
	if worst > 1e-15 {
		t.Fatalf("Cosine off the exact value by %g", worst)
	}
	defer func() {
		if r := recover(); r == nil {
			t.Fatal("no panic on dimension mismatch")
		}
	}()
	Cosine([]float32{1}, []float32{1, 2})
}

func TestTopK(t *testing.T) {
	in := []Scored{{5, 0.5}, {3, 0.9}, {1, 0.5}, {9, math.NaN()}, {2, 0.7}, {3, 0.2}, {4, 0.9}, {1, 0.6}}
	for _, tc := range []struct {
		k    int
		want []Scored
	}{
		{0, []Scored{}},
		{1, []Scored{{3, 0.9}}},
		{3, []Scored{{3, 0.9}, {4, 0.9}, {2, 0.7}}},
		{10, []Scored{{3, 0.9}, {4, 0.9}, {2, 0.7}, {1, 0.6}, {5, 0.5}}},
	} {
		if got := TopK(slices.Clone(in), tc.k); !slices.Equal(got, tc.want) {
			t.Errorf("TopK(k=%d) = %v, want %v", tc.k, got, tc.want)
		}
	}
}

// TestRank checks RankCosine and RankJaccard against sorting every
// candidate, for random inputs.
func TestRank(t *testing.T) {
	rng := rand.New(rand.NewPCG(11, 11))
	m := mustMinHash(t, MinHashConfig{Bands: 8, Rows: 2})
	for range 50 {
		q := randVec(rng, 8)
		vecs := map[int64][]float32{}
		sigs := map[int64]Signature{}
		qs := m.Signature([]int64{1, 2, 3, 4, 5, 6})
		for range rng.IntN(300) {
			id := rng.Int64N(1000)
			vecs[id] = randVec(rng, 8)
			if rng.IntN(10) == 0 {
				vecs[id] = slices.Clone(vecs[id][:7]) // wrong dimension: skipped
			}
			var set []int64
			for range 1 + rng.IntN(8) {
				set = append(set, rng.Int64N(12))
			}
			sigs[id] = m.Signature(set)
		}
		k := 1 + rng.IntN(20)
		var all []Scored
		for id, v := range vecs {
			if len(v) == len(q) {
				all = append(all, Scored{id, Cosine(q, v)})
			}
		}
		if got, want := RankCosine(q, maps.All(vecs), k), TopK(all, k); !slices.Equal(got, want) {
			t.Fatalf("RankCosine = %v\nwant %v", got, want)
		}
		all = all[:0]
		for id, s := range sigs {
			if j := Jaccard(qs, s); j > 0 {
				all = append(all, Scored{id, j})
			}
		}
		if got, want := RankJaccard(qs, maps.All(sigs), k), TopK(all, k); !slices.Equal(got, want) {
			t.Fatalf("RankJaccard = %v\nwant %v", got, want)
		}
	}
	if got := RankJaccard(m.Empty(), maps.All(map[int64]Signature{1: m.Empty()}), 3); got != nil {
		t.Fatalf("empty query: %v", got)
	}
	if got := RankCosine([]float32{1}, maps.All(map[int64][]float32{1: {1}}), 0); got != nil {
		t.Fatalf("k=0: %v", got)
	}
}

// TestRankJaccardEncoded checks that ranking encoded signatures gives
// what RankJaccard gives on the decoded ones, for an even and an odd
// number of slots, with empty signatures and wrong lengths among them.
func TestRankJaccardEncoded(t *testing.T) {
	rng := rand.New(rand.NewPCG(12, 12))
	for _, cfg := range []MinHashConfig{{Bands: 8, Rows: 2}, {Bands: 3, Rows: 1}} {
		m := mustMinHash(t, cfg)
		for range 50 {
			qs := m.Signature([]int64{1, 2, 3, 4, 5, 6})
			sigs := map[int64]Signature{}
			enc := map[int64][]byte{}
			for range rng.IntN(300) {
				id := rng.Int64N(1000)
				var set []int64
				for range rng.IntN(8) { // NB: 0 is the empty set
					set = append(set, rng.Int64N(12))
				}
				sigs[id] = m.Signature(set)
				enc[id], _ = sigs[id].AppendBinary(nil)
				if rng.IntN(10) == 0 {
					enc[id] = enc[id][:len(enc[id])-4] // wrong length: skipped
					delete(sigs, id)
				}
			}
			k := 1 + rng.IntN(20)
			qb, _ := qs.AppendBinary(nil)
			if got, want := RankJaccardEncoded(qb, maps.All(enc), k), RankJaccard(qs, maps.All(sigs), k); !slices.Equal(got, want) {
				t.Fatalf("%+v: RankJaccardEncoded = %v\nwant %v", cfg, got, want)
			}
		}
	}
	empty, _ := mustMinHash(t, MinHashConfig{}).Empty().AppendBinary(nil)
	if got := RankJaccardEncoded(empty, maps.All(map[int64][]byte{1: {1, 2, 3, 4}}), 3); got != nil {
		t.Fatalf("empty query: %v", got)
	}
}
