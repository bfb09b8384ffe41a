package lsh

import (
	"encoding/binary"
	"fmt"
)

// Bucket identifies one LSH bucket. Table is the band (MinHash) or table
// (hyperplanes) index; Hash is the hash of the band's rows (MinHash) or the
// table's sign bits (hyperplanes). Two items are candidates of each other
// when they share a Bucket. Bucket ids are stable: the same configuration
// gives the same ids on every instance, platform and replay.
type Bucket struct {
	Table uint16
	Hash  uint64
}

// KeyLen is the length of a bucket key (Bucket.AppendKey).
const KeyLen = 10

// AppendKey appends the KeyLen-byte key of b to dst: Table then Hash, big
// endian, so that keys order by table then hash. A store keyed by bucket
// (bucket key | member id) scans one bucket as one prefix.
func (b Bucket) AppendKey(dst []byte) []byte {
	dst = binary.BigEndian.AppendUint16(dst, b.Table)
	return binary.BigEndian.AppendUint64(dst, b.Hash)
}

// ParseKey decodes a bucket key written by AppendKey: the first KeyLen
// bytes of key (the rest, such as a member id, is ignored).
func ParseKey(key []byte) (Bucket, error) {
	if len(key) < KeyLen {
		return Bucket{}, fmt.Errorf("lsh: bucket key of %d bytes, want at least %d", len(key), KeyLen)
	}
	return Bucket{Table: binary.BigEndian.Uint16(key), Hash: binary.BigEndian.Uint64(key[2:])}, nil
}

// String returns "table:hash" with the hash in 16 hex digits.
func (b Bucket) String() string { return fmt.Sprintf("%d:%016x", b.Table, b.Hash) }

// Diff compares the buckets of an item before and after a change and
// returns the buckets to leave (in before, not in after) and to join (in
// after, not in before), each in table order. Emitting −removed and +added,
// and nothing for the buckets in both, keeps a bucket store exact: every
// bucket entry is added once and removed once. An empty before (a new item)
// adds every bucket of after; an empty after removes every bucket of
// before.
//
// Both slices must be as MinHash.Buckets or Hyperplanes.Buckets return them:
// in strictly increasing Table order (at most one bucket per table); Diff
// panics otherwise. removed and added are nil when empty and do not alias
// before or after.
func Diff(before, after []Bucket) (removed, added []Bucket) {
	checkOrder(before)
	checkOrder(after)
	i, j := 0, 0
	for i < len(before) && j < len(after) {
		o, n := before[i], after[j]
		switch {
		case o.Table < n.Table:
			removed = append(removed, o)
			i++
		case o.Table > n.Table:
			added = append(added, n)
			j++
		default:
			if o.Hash != n.Hash {
				removed = append(removed, o)
				added = append(added, n)
			}
			i++
			j++
		}
	}
	removed = append(removed, before[i:]...)
	added = append(added, after[j:]...)
	return removed, added
}

func checkOrder(bs []Bucket) {
	for i := 1; i < len(bs); i++ {
		if bs[i-1].Table >= bs[i].Table {
			panic(fmt.Sprintf("lsh: Diff: buckets not in increasing table order at %d (%s after %s)", i, bs[i], bs[i-1]))
		}
	}
}
