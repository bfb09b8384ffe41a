package fans

import (
	"cmp"
	"slices"

	"github.com/kappa-stream/kappa/state"
	"github.com/uber/h3-go/v4"
)

// Delta is a change to the number of fans of Artist whose home cell at
// resolution Res is Cell. [Processor.Publish] emits N = ±1.
type Delta struct {
	Artist int64
	Res    int // 0 … 15, the resolution of Cell
	Cell   h3.Cell
	N      int64
}

// compareDeltas orders deltas by key: (Artist, Res, Cell). Res is
// Cell's resolution, which is in the bits of a cell just below its mode:
// cells in numeric order are in (resolution, cell) order.
func compareDeltas(a, b Delta) int {
	if a.Artist != b.Artist {
		return cmp.Compare(a.Artist, b.Artist)
	}
	return cmp.Compare(a.Cell, b.Cell)
}

// sumDeltas sorts ds by key and sums the deltas of each key into one,
// leaving out those that sum to 0; it returns the sums in ds's memory.
func sumDeltas(ds []Delta) []Delta {
	slices.SortFunc(ds, compareDeltas)
	sums := ds[:0]
	for i := 0; i < len(ds); {
		d := ds[i]
		for i++; i < len(ds) && compareDeltas(ds[i], d) == 0; i++ {
			d.N += ds[i].N
		}
		if d.N != 0 {
			sums = append(sums, d) // NB: at or before the group just read
		}
	}
	return sums
}

// KeyLen is the length of a delta key.
const KeyLen = 8 + 1 + 8

// AppendPrefix appends the key prefix shared by all cells of artist at
// resolution res: 8-byte big-endian artist, then res in one byte. A scan of
// this prefix visits the cells of one (artist, res) in ascending cell order,
// which is also the order of their 15-digit hexadecimal names.
func AppendPrefix(dst []byte, artist int64, res int) []byte {
	dst = state.AppendUint64(dst, uint64(artist))
	return append(dst, byte(res))
}

// AppendKey appends the KeyLen-byte key of d, artist | res | cell, all
// big-endian, so that bytewise order is the order of (Artist, Res, Cell).
// Stage 2 uses it as the record key of the fan-deltas topic and the key
// of its counter store.
func (d *Delta) AppendKey(dst []byte) []byte {
	dst = AppendPrefix(dst, d.Artist, d.Res)
	return state.AppendUint64(dst, uint64(d.Cell))
}

// AppendValue appends d.N as a one-slot counter vector
// ([state.AppendCounters]), ready to be merged into a counter store.
func (d *Delta) AppendValue(dst []byte) []byte { return state.AppendCounters(dst, d.N) }

// DecodeDelta decodes a key written by [Delta.AppendKey] and a value
// written by [Delta.AppendValue]. It returns an error wrapping [ErrCorrupt]
// if either is not such an encoding; it never panics.
func DecodeDelta(key, value []byte) (Delta, error) {
	if len(key) != KeyLen {
		return Delta{}, corrupt("delta: key length")
	}
	d := Delta{
		Artist: int64(state.Uint64(key, 0)),
		Res:    int(key[8]),
		Cell:   h3.Cell(state.Uint64(key, 9)),
	}
	if d.Artist < 1 || !isCell(d.Cell) || resolution(d.Cell) != d.Res {
		return Delta{}, corrupt("delta: bad key")
	}
	if len(value) != 8 {
		return Delta{}, corrupt("delta: value length")
	}
	d.N = state.Counter(value, 0)
	return d, nil
}
