package lsh

import (
	"cmp"
	"encoding/binary"
	"fmt"
	"iter"
	"math"
	"slices"
)

// Scored is a candidate and its similarity to the query.
type Scored struct {
	ID    int64
	Score float64
}

// better reports whether a ranks before b: higher score, then lower id.
func better(a, b Scored) bool {
	return a.Score > b.Score || (a.Score == b.Score && a.ID < b.ID)
}

func compareScored(a, b Scored) int {
	if c := cmp.Compare(b.Score, a.Score); c != 0 {
		return c
	}
	return cmp.Compare(a.ID, b.ID)
}

// TopK returns the k best of cands, best first: by Score descending, ties
// by ID ascending, so the answer does not depend on the order of cands.
// An ID that occurs more than once counts once, with its best score (as
// when merging the partial answers of several partitions); NaN scores are
// dropped. It reorders and overwrites cands and returns a prefix of it.
func TopK(cands []Scored, k int) []Scored {
	cands = slices.DeleteFunc(cands, func(s Scored) bool { return math.IsNaN(s.Score) })
	slices.SortFunc(cands, compareScored)
	if k <= 0 {
		return cands[:0]
	}
	seen := make(map[int64]struct{}, min(k, len(cands)))
	n := 0
	for _, s := range cands {
		if _, dup := seen[s.ID]; dup {
			continue
		}
		seen[s.ID] = struct{}{}
		cands[n] = s
		n++
		if n == k {
			break
		}
	}
	return cands[:n]
}

// top keeps the k best of the Scored offered to it, in a heap with the
// worst at the root.
type top struct {
	k int
	h []Scored
}

func (t *top) offer(s Scored) {
	if len(t.h) < t.k {
		t.h = append(t.h, s)
		for i := len(t.h) - 1; i > 0; {
			p := (i - 1) / 2
			if !better(t.h[p], t.h[i]) {
				break
			}
			t.h[p], t.h[i] = t.h[i], t.h[p]
			i = p
		}
		return
	}
	if !better(s, t.h[0]) {
		return
	}
	t.h[0] = s
	for i := 0; ; {
		w, l, r := i, 2*i+1, 2*i+2
		if l < len(t.h) && better(t.h[w], t.h[l]) {
			w = l
		}
		if r < len(t.h) && better(t.h[w], t.h[r]) {
			w = r
		}
		if w == i {
			break
		}
		t.h[w], t.h[i] = t.h[i], t.h[w]
		i = w
	}
}

func (t *top) result() []Scored {
	slices.SortFunc(t.h, compareScored)
	return t.h
}

// RankCosine scores each candidate by the exact cosine similarity of its
// vector with q and returns the k best, best first (ties by ascending ID).
// cands yields (id, vector) pairs with distinct ids, such as the stored
// vectors of a query's Candidates; a candidate whose vector has another
// dimension than q is skipped. It runs in O(n·(Dim + log k)) for n
// candidates and keeps only k of them in memory.
func RankCosine(q []float32, cands iter.Seq2[int64, []float32], k int) []Scored {
	if k <= 0 {
		return nil
	}
	t := top{k: k, h: make([]Scored, 0, k)}
	nq := norm2(q)
	for id, v := range cands {
		if len(v) != len(q) {
			continue
		}
		t.offer(Scored{ID: id, Score: cosine(q, v, nq)})
	}
	return t.result()
}

// RankJaccard scores each candidate by the Jaccard similarity its signature
// estimates with q (see Jaccard) and returns the k best, best first (ties by
// ascending ID). cands yields (id, signature) pairs with distinct ids; a
// candidate whose signature has another length than q is skipped, and so is
// one whose estimate is 0.
func RankJaccard(q Signature, cands iter.Seq2[int64, Signature], k int) []Scored {
	if k <= 0 || q.IsEmpty() {
		return nil
	}
	t := top{k: k, h: make([]Scored, 0, k)}
	for id, s := range cands {
		if len(s) != len(q) {
			continue
		}
		if j := Jaccard(q, s); j > 0 {
			t.offer(Scored{ID: id, Score: j})
		}
	}
	return t.result()
}

// RankJaccardEncoded is RankJaccard over signatures in their binary form
// (Signature.AppendBinary), q's too, compared as they are, without
// decoding them: the same scores, for a fraction of the work. A candidate
// whose encoding has another length than q's is skipped.
func RankJaccardEncoded(q []byte, cands iter.Seq2[int64, []byte], k int) []Scored {
	if k <= 0 || len(q) < 4 || binary.LittleEndian.Uint32(q) == emptySlot {
		return nil
	}
	slots := float64(len(q) / 4)
	t := top{k: k, h: make([]Scored, 0, k)}
	for id, b := range cands {
		if len(b) != len(q) || binary.LittleEndian.Uint32(b) == emptySlot {
			continue
		}
		if n := equalSlots(q, b); n > 0 {
			t.offer(Scored{ID: id, Score: float64(n) / slots})
		}
	}
	return t.result()
}

// equalSlots counts the 4-byte slots in which two encoded signatures of
// the same length agree, eight bytes (two slots) at a time.
func equalSlots(a, b []byte) int {
	b = b[:len(a)]
	n, i := 0, 0
	for ; i+8 <= len(a); i += 8 {
		x := binary.LittleEndian.Uint64(a[i:]) ^ binary.LittleEndian.Uint64(b[i:])
		if uint32(x) == 0 {
			n++
		}
		if x>>32 == 0 {
			n++
		}
	}
	if i < len(a) && binary.LittleEndian.Uint32(a[i:]) == binary.LittleEndian.Uint32(b[i:]) {
		n++
	}
	return n
}

// Cosine returns the cosine similarity of a and b, computed in float64 from
// the exact float32 values: dot(a, b) / (|a|·|b|), clamped to [−1, 1]. It
// is 0 if either vector is zero, and panics if the dimensions differ.
func Cosine(a, b []float32) float64 {
	if len(a) != len(b) {
		panic(fmt.Sprintf("lsh: Cosine of vectors of dimension %d and %d", len(a), len(b)))
	}
	return cosine(a, b, norm2(a))
}

// REQUIRES: len(a) == len(b), na == norm2(a).
func cosine(a, b []float32, na float64) float64 {
	b = b[:len(a)]
	var dot, nb float64
	for i, x := range a {
		y := float64(b[i])
		dot += float64(x) * y
		nb += y * y
	}
	if na == 0 || nb == 0 {
		return 0
	}
	return max(-1, min(1, dot/math.Sqrt(na*nb)))
}

// norm2 returns the squared Euclidean norm of v.
func norm2(v []float32) float64 {
	var s float64
	for _, x := range v {
		s += float64(x) * float64(x)
	}
	return s
}
