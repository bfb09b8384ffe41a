package lsh

import (
	"errors"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
)

func mustMinHash(tb testing.TB, cfg MinHashConfig) *MinHash {
	tb.Helper()
	m, err := NewMinHash(cfg)
	if err != nil {
		tb.Fatal(err)
	}
	return m
}

func TestMinHashConfigValidate(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  MinHashConfig
		err  string // substring; "" = valid
	}{
		{"zero value is the defaults", MinHashConfig{}, ""},
		{"explicit", MinHashConfig{Bands: 20, Rows: 5, Seed: 9}, ""},
		{"limits", MinHashConfig{Bands: MaxBands, Rows: MaxRows}, ""},
		{"negative bands", MinHashConfig{Bands: -1}, "lsh: Bands -1 out of range"},
		{"too many bands", MinHashConfig{Bands: MaxBands + 1}, "lsh: Bands 1025 out of range"},
		{"negative rows", MinHashConfig{Rows: -3}, "lsh: Rows -3 out of range"},
		{"too many rows", MinHashConfig{Rows: MaxRows + 1}, "lsh: Rows 65 out of range"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.cfg.Validate()
			_, nerr := NewMinHash(tc.cfg)
			if tc.err == "" {
				if err != nil || nerr != nil {
					t.Fatalf("Validate = %v, NewMinHash = %v; want nil", err, nerr)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Fatalf("Validate = %v; want %q", err, tc.err)
			}
			if nerr == nil || nerr.Error() != err.Error() {
				t.Fatalf("NewMinHash error = %v; want %v", nerr, err)
			}
		})
	}
	m := mustMinHash(t, MinHashConfig{})
	if got := m.Config(); got.Bands != DefaultBands || got.Rows != DefaultRows || m.Len() != DefaultBands*DefaultRows {
		t.Fatalf("defaults: Config = %+v, Len = %d", got, m.Len())
	}
}

// pairWithJaccard returns two sets with exactly the Jaccard similarity
// inter/union: inter shared ids, the rest split between them, all ids
// drawn fresh from rng.
func pairWithJaccard(rng *rand.Rand, inter, union int) (a, b []int64) {
	for i := range union {
		id := rng.Int64N(math.MaxInt64-1) + 1
		switch {
		case i < inter:
			a, b = append(a, id), append(b, id)
		case i%2 == 0:
			a = append(a, id)
		default:
			b = append(b, id)
		}
	}
	return a, b
}

func shareBucket(a, b []Bucket) bool {
	for i := range a {
		if a[i] == b[i] {
			return true
		}
	}
	return false
}

func TestIdenticalSetsCollideInEveryBand(t *testing.T) {
	m := mustMinHash(t, MinHashConfig{})
	rng := rand.New(rand.NewPCG(1, 1))
	for range 100 {
		set := make([]int64, 1+rng.IntN(50))
		for i := range set {
			set[i] = rng.Int64N(1000) + 1
		}
		shuffled := slices.Clone(set)
		rng.Shuffle(len(shuffled), func(i, j int) { shuffled[i], shuffled[j] = shuffled[j], shuffled[i] })
		shuffled = append(shuffled, set[0]) // a duplicate changes nothing
		a, b := m.Buckets(m.Signature(set), nil), m.Buckets(m.Signature(shuffled), nil)
		if len(a) != DefaultBands || !slices.Equal(a, b) {
			t.Fatalf("same set, different buckets:\n%v\n%v", a, b)
		}
	}
}

// TestCandidateRateFollowsSCurve measures, over many pairs of sets of known
// Jaccard similarity s, how often the pair shares a bucket, and checks the
// rate against the S-curve 1 − (1 − s^r)^b within 4.5 standard errors.
// Disjoint sets (s = 0) must essentially never collide: only a 32-bit slot
// or 64-bit band hash collision could make them.
func TestCandidateRateFollowsSCurve(t *testing.T) {
	const pairs = 2000
	for _, cfg := range []MinHashConfig{{}, {Bands: 16, Rows: 4, Seed: 3}, {Bands: 9, Rows: 3, Seed: 5}} {
		m := mustMinHash(t, cfg)
		rng := rand.New(rand.NewPCG(2, uint64(cfg.Bands)))
		for _, tc := range []struct{ inter, union int }{{0, 40}, {6, 20}, {10, 20}, {14, 20}, {18, 20}} {
			s := float64(tc.inter) / float64(tc.union)
			want := m.Config().Probability(s)
			hit := 0
			for range pairs {
				a, b := pairWithJaccard(rng, tc.inter, tc.union)
				if shareBucket(m.Buckets(m.Signature(a), nil), m.Buckets(m.Signature(b), nil)) {
					hit++
				}
			}
			rate := float64(hit) / pairs
			tol := 4.5*math.Sqrt(want*(1-want)/pairs) + 1.0/pairs
			t.Logf("b=%d r=%d s=%.1f: rate %.4f, S-curve %.4f", m.Config().Bands, m.Config().Rows, s, rate, want)
			if math.Abs(rate-want) > tol {
				t.Errorf("b=%d r=%d s=%.2f: candidate rate %.4f, S-curve %.4f ± %.4f",
					m.Config().Bands, m.Config().Rows, s, rate, want, tol)
			}
		}
	}
}

func TestIncrementalEqualsScratch(t *testing.T) {
	for _, cfg := range []MinHashConfig{{}, {Bands: 3, Rows: 3, Seed: 7}, {Bands: 1, Rows: 1}} {
		m := mustMinHash(t, cfg)
		rng := rand.New(rand.NewPCG(3, uint64(m.Len())))
		for range 200 {
			sig := m.Empty()
			var set []int64
			for range rng.IntN(60) {
				id := rng.Int64N(100) + 1 // small universe: many repeats
				before := slices.Clone(sig)
				changed := m.Add(sig, id)
				if changed == slices.Equal(before, sig) {
					t.Fatalf("Add(%d) reported changed=%v; before %v after %v", id, changed, before[:3], sig[:3])
				}
				if slices.Contains(set, id) && changed {
					t.Fatalf("adding %d again changed the signature", id)
				}
				set = append(set, id)
			}
			slices.Sort(set)
			if want := m.Signature(set); !slices.Equal(sig, want) {
				t.Fatalf("incremental %v != from scratch %v", sig, want)
			}
			if len(set) > 0 && slices.Contains(sig, emptySlot) {
				t.Fatalf("non-empty signature with an empty slot: %v", sig)
			}
		}
	}
}

func TestJaccardEstimate(t *testing.T) {
	m := mustMinHash(t, MinHashConfig{})
	rng := rand.New(rand.NewPCG(4, 4))
	for _, tc := range []struct{ inter, union int }{{0, 30}, {10, 40}, {20, 40}, {30, 40}, {40, 40}} {
		s := float64(tc.inter) / float64(tc.union)
		var sum float64
		const n = 400
		for range n {
			a, b := pairWithJaccard(rng, tc.inter, tc.union)
			sum += Jaccard(m.Signature(a), m.Signature(b))
		}
		mean := sum / n
		se := math.Sqrt(s*(1-s)/float64(m.Len())/n) + 1e-9
		if math.Abs(mean-s) > 4.5*se {
			t.Errorf("J=%.2f: mean estimate %.4f (±%.4f)", s, mean, se)
		}
	}
	empty, one := m.Empty(), m.Signature([]int64{1})
	for _, tc := range []struct {
		a, b Signature
		want float64
	}{{empty, empty, 0}, {empty, one, 0}, {one, empty, 0}, {one, one, 1}} {
		if got := Jaccard(tc.a, tc.b); got != tc.want {
			t.Errorf("Jaccard(empty=%v, empty=%v) = %v, want %v", tc.a.IsEmpty(), tc.b.IsEmpty(), got, tc.want)
		}
	}
}

func TestEmptySignature(t *testing.T) {
	m := mustMinHash(t, MinHashConfig{})
	e := m.Empty()
	if !e.IsEmpty() || len(e) != m.Len() || !Signature(nil).IsEmpty() {
		t.Fatal("Empty is not empty")
	}
	if got := m.Buckets(e, nil); got != nil {
		t.Fatalf("empty signature has buckets %v", got)
	}
	if !m.Add(e, 42) || e.IsEmpty() {
		t.Fatal("adding to the empty set did not change it")
	}
	if got := m.Buckets(e, nil); len(got) != m.Config().Bands {
		t.Fatalf("%d buckets, want %d", len(got), m.Config().Bands)
	}
}

func TestMinHashPanicsOnWrongLength(t *testing.T) {
	m := mustMinHash(t, MinHashConfig{})
	for name, f := range map[string]func(){
		"Add":     func() { m.Add(make(Signature, 3), 1) },
		"Buckets": func() { m.Buckets(make(Signature, 3), nil) },
		"Jaccard": func() { Jaccard(make(Signature, 3), make(Signature, 4)) },
	} {
		func() {
			defer func() {
				if r := recover(); r == nil || !strings.HasPrefix(r.(string), "lsh: ") {
					t.Errorf("%s: recovered %v, want an lsh: panic", name, r)
				}
			}()
			f()
		}()
	}
}

func TestSignatureBinary(t *testing.T) {
	m := mustMinHash(t, MinHashConfig{Bands: 3, Rows: 2})
	for _, sig := range []Signature{m.Empty(), m.Signature([]int64{1, 2, 3})} {
		b, err := sig.AppendBinary([]byte("prefix"))
		if err != nil || len(b) != 6+4*m.Len() {
			t.Fatalf("AppendBinary = %d bytes, %v", len(b), err)
		}
		got, err := m.ParseSignature(b[6:])
		if err != nil || !slices.Equal(got, sig) {
			t.Fatalf("ParseSignature = %v, %v; want %v", got, err, sig)
		}
	}
	good, _ := m.Signature([]int64{5}).AppendBinary(nil)
	partial := slices.Clone(good)
	copy(partial, []byte{0xff, 0xff, 0xff, 0xff})
	for _, tc := range []struct {
		name string
		b    []byte
		err  string
	}{
		{"short", good[:5], "lsh: bad signature: 5 bytes, want 24"},
		{"long", append(slices.Clone(good), 0), "lsh: bad signature: 25 bytes, want 24"},
		{"partly empty", partial, "lsh: bad signature: 1 of 6 slots empty"},
	} {
		_, err := m.ParseSignature(tc.b)
		if err == nil || err.Error() != tc.err || !errors.Is(err, ErrSignature) {
			t.Errorf("%s: error %v, want %q wrapping ErrSignature", tc.name, err, tc.err)
		}
	}
}

// TestMinHashGolden pins signatures and bucket ids: they are part of the
// stored state, so every instance and every replay must compute exactly
// these values. A change here needs a new topology version.
func TestMinHashGolden(t *testing.T) {
	m := mustMinHash(t, MinHashConfig{Bands: 3, Rows: 2, Seed: 0})
	sig := m.Signature([]int64{1, 2, 3, 1 << 40})
	wantSig := Signature{0x6196ddc3, 0x4426ca7, 0x2f1f2589, 0x5bf96ee9, 0x89af60b, 0x2f709806}
	if !slices.Equal(sig, wantSig) {
		t.Errorf("signature = %#v\nwant        %#v", sig, wantSig)
	}
	wantBuckets := []Bucket{{0, 0x18db2f64fe09e54b}, {1, 0xfa472cca720ce4c9}, {2, 0xe5839f726f0de72e}}
	if got := m.Buckets(sig, nil); !slices.Equal(got, wantBuckets) {
		t.Errorf("buckets = %#v\nwant      %#v", got, wantBuckets)
	}
	m7 := mustMinHash(t, MinHashConfig{Bands: 3, Rows: 2, Seed: 7})
	if slices.Equal(m7.Signature([]int64{1, 2, 3, 1 << 40}), sig) {
		t.Error("seed 7 gives the same signature as seed 0")
	}
	// The default configuration, and the one before it (128×4, which the
	// versions declared with it keep), one band each.
	for _, tc := range []struct {
		cfg  MinHashConfig
		want Bucket
	}{
		{MinHashConfig{}, Bucket{0, 0xde92c1ad7899f0a2}},
		{MinHashConfig{Bands: 128, Rows: 4}, Bucket{0, 0x2965cf381df72a5d}},
	} {
		d := mustMinHash(t, tc.cfg)
		if got := d.Buckets(d.Signature([]int64{7, 8, 9}), nil)[0]; got != tc.want {
			t.Errorf("%+v: bucket 0 = %#v, want %#v", tc.cfg, got, tc.want)
		}
	}
}
