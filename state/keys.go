package state

import "encoding/binary"

// Keys are byte strings whose lexicographic order is the order of the
// values they encode, so that range scans over a prefix visit entries in
// key order. Every encoder appends a fixed-width big-endian form.

// AppendUint64 appends v in 8 big-endian bytes.
func AppendUint64(dst []byte, v uint64) []byte { return binary.BigEndian.AppendUint64(dst, v) }

// AppendUint32 appends v in 4 big-endian bytes.
func AppendUint32(dst []byte, v uint32) []byte { return binary.BigEndian.AppendUint32(dst, v) }

// AppendInt64 appends v so that negative values sort before positive ones.
func AppendInt64(dst []byte, v int64) []byte { return AppendUint64(dst, uint64(v)^(1<<63)) }

// Uint64 decodes the 8 bytes of b starting at off written by AppendUint64.
func Uint64(b []byte, off int) uint64 { return binary.BigEndian.Uint64(b[off:]) }

// Uint32 decodes the 4 bytes of b starting at off written by AppendUint32.
func Uint32(b []byte, off int) uint32 { return binary.BigEndian.Uint32(b[off:]) }

// Int64 decodes the 8 bytes of b starting at off written by AppendInt64.
func Int64(b []byte, off int) int64 { return int64(Uint64(b, off) ^ (1 << 63)) }

// PrefixEnd returns the smallest key greater than every key with the given
// prefix, or nil (no upper bound) when the prefix is all 0xff bytes.
func PrefixEnd(prefix []byte) []byte {
	end := append([]byte(nil), prefix...)
	for i := len(end) - 1; i >= 0; i-- {
		end[i]++
		if end[i] != 0 {
			return end[:i+1]
		}
	}
	return nil
}
