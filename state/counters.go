package state

import (
	"encoding/binary"
	"fmt"
	"io"

	"github.com/cockroachdb/pebble/v2"
)

// CounterMergerName names the merge operator that sums counter vectors. It
// is written into the store's manifest: renaming it makes old stores
// unreadable, so it carries a format version.
const CounterMergerName = "kappa.counters.v1"

// A counter vector is a value of n little-endian int64 slots. Merging two
// vectors adds them slot by slot; the shorter one counts as zeros in the
// slots it lacks. Deltas may be negative.

// AppendCounters appends the counter vector holding vs.
func AppendCounters(dst []byte, vs ...int64) []byte {
	for _, v := range vs {
		dst = binary.LittleEndian.AppendUint64(dst, uint64(v))
	}
	return dst
}

// Counter returns slot i of the counter vector v, or 0 when v is shorter.
func Counter(v []byte, i int) int64 {
	if len(v) < (i+1)*8 {
		return 0
	}
	return int64(binary.LittleEndian.Uint64(v[i*8:]))
}

// counterMerger is the pebble.Merger that sums counter vectors.
var counterMerger = &pebble.Merger{
	Name: CounterMergerName,
	Merge: func(_, value []byte) (pebble.ValueMerger, error) {
		m := &counterSum{}
		return m, m.add(value)
	},
}

// counterSum accumulates merge operands; addition commutes, so newer and
// older operands are handled alike.
type counterSum struct{ sum []int64 }

func (m *counterSum) add(v []byte) error {
	if len(v)%8 != 0 {
		return fmt.Errorf("state: counter value of %d bytes is not a multiple of 8", len(v))
	}
	for i := 0; i*8 < len(v); i++ {
		if i == len(m.sum) {
			m.sum = append(m.sum, 0)
		}
		m.sum[i] += int64(binary.LittleEndian.Uint64(v[i*8:]))
	}
	return nil
}

func (m *counterSum) MergeNewer(v []byte) error { return m.add(v) }
func (m *counterSum) MergeOlder(v []byte) error { return m.add(v) }

func (m *counterSum) Finish(bool) ([]byte, io.Closer, error) {
	return AppendCounters(make([]byte, 0, 8*len(m.sum)), m.sum...), nil, nil
}
