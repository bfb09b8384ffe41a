package similar

import (
	"encoding/binary"
	"math"

	"github.com/kappa-stream/kappa/lsh"
)

// A user's item, in stage 2 and in the records that carry it, is the
// encoding of the MinHash signature of the user's artist set
// (Signature.AppendBinary, 4 bytes a slot) followed by the set itself
// (appendSet): the signature finds the user's buckets, the set scores
// the user exactly. Items written before the sets were kept have the
// signature only; they are scored by the signature's estimate.

// appendUserItem appends the item of a user with artist set set, whose
// signature is sig.
func appendUserItem(dst []byte, sig lsh.Signature, set []int64) []byte {
	dst, _ = sig.AppendBinary(dst)
	return appendSet(dst, set)
}

// splitUser splits a user's item into the encodings of its signature
// and of its artist set (empty when the item has none).
func (ix *Index) splitUser(item []byte) (sig, set []byte, err error) {
	n := 4 * ix.mh.Len()
	if len(item) < n {
		return nil, nil, corrupt("user item of %d bytes, below a signature's %d", len(item), n)
	}
	return item[:n], item[n:], nil
}

// jaccardEncoded returns the Jaccard similarity of q (ascending, distinct)
// and the set encoded in b (appendSet): |q ∩ b| / |q ∪ b|, 0 when both
// are empty. It reads b in place.
func jaccardEncoded(q []int64, b []byte) (float64, error) {
	n, w := binary.Uvarint(b)
	if w <= 0 || n > uint64(len(b)) {
		return 0, corrupt("set size")
	}
	b = b[w:]
	inter, i, prev := 0, 0, int64(0)
	for range n {
		gap, w := binary.Uvarint(b)
		if w <= 0 || gap == 0 || gap > uint64(math.MaxInt64-prev) {
			return 0, corrupt("set member")
		}
		b = b[w:]
		prev += int64(gap)
		for i < len(q) && q[i] < prev {
			i++
		}
		if i < len(q) && q[i] == prev {
			inter++
			i++
		}
	}
	if len(b) != 0 {
		return 0, corrupt("set: trailing bytes")
	}
	union := len(q) + int(n) - inter
	if union == 0 {
		return 0, nil
	}
	return float64(inter) / float64(union), nil
}

// scoreUsers scores the users of items (id and stored item) against the
// query user's item and returns the best n, by exact Jaccard of the
// artist sets (the signatures' estimate for an item without a set);
// users with nothing in common are left out.
func (ix *Index) scoreUsers(query []byte, items func(yield func(int64, []byte) bool), n int) ([]lsh.Scored, error) {
	qsig, qset, err := ix.splitUser(query)
	if err != nil {
		return nil, err
	}
	qs, err := ix.mh.ParseSignature(qsig)
	if err != nil {
		return nil, corrupt("query signature: %v", err)
	}
	var q []int64
	if len(qset) > 0 {
		if q, err = decodeSet(qset); err != nil {
			return nil, err
		}
	}
	var out []lsh.Scored
	for id, item := range items {
		sig, set, err := ix.splitUser(item)
		if err != nil {
			return nil, corrupt("item %d: %v", id, err)
		}
		var s float64
		if len(qset) > 0 && len(set) > 0 {
			if s, err = jaccardEncoded(q, set); err != nil {
				return nil, corrupt("item %d: %v", id, err)
			}
		} else {
			cs, err := ix.mh.ParseSignature(sig)
			if err != nil {
				return nil, corrupt("item %d: %v", id, err)
			}
			if !qs.IsEmpty() && !cs.IsEmpty() {
				s = lsh.Jaccard(qs, cs)
			}
		}
		if s > 0 {
			out = append(out, lsh.Scored{ID: id, Score: s})
		}
	}
	return lsh.TopK(out, n), nil
}
