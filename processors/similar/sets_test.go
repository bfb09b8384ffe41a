package similar

import (
	"slices"
	"testing"
)

// FuzzJaccardEncoded never panics on any stored set, and on a valid one
// gives |q ∩ b| / |q ∪ b| counted here with a map.
func FuzzJaccardEncoded(f *testing.F) {
	f.Add([]byte{3, 1, 1, 5}, []byte{1, 2, 4})
	f.Add([]byte{0}, []byte{})
	f.Add([]byte{2, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f, 1}, []byte{9})
	f.Fuzz(func(t *testing.T, b, qbytes []byte) {
		q := make([]int64, 0, len(qbytes))
		for _, x := range qbytes {
			q = append(q, int64(x)+1)
		}
		slices.Sort(q)
		q = slices.Compact(q)
		got, err := jaccardEncoded(q, b)
		set, derr := decodeSet(b)
		if (err == nil) != (derr == nil) {
			t.Fatalf("jaccardEncoded error %v, decodeSet error %v", err, derr)
		}
		if err != nil {
			return
		}
		in := map[int64]bool{}
		for _, a := range q {
			in[a] = true
		}
		both := 0
		for _, a := range set {
			if in[a] {
				both++
			}
		}
		want := 0.0
		if union := len(q) + len(set) - both; union > 0 {
			want = float64(both) / float64(union)
		}
		if got != want {
			t.Fatalf("Jaccard of %v and %v: %g, want %g", q, set, got, want)
		}
		if again, _ := jaccardEncoded(q, appendSet(nil, set)); again != got {
			t.Fatalf("re-encoded: %g, want %g", again, got)
		}
	})
}
