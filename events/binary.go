package events

import (
	"encoding/binary"
	"errors"
	"math"
)

// The binary form of a listen, for internal topics. All integers are
// varints (encoding/binary), signed ones zigzag-encoded:
//
//	format   byte     binaryV1
//	flags    byte     flagLoc | flagCountry | flagEventID
//	user_id  uvarint  (the int64 as uint64, as are song_id and artist_id)
//	song_id  uvarint
//	artist_id uvarint
//	ts       varint
//	ms_played varint
//	country  2 bytes  if flagCountry
//	lat, lng 8 bytes each, IEEE 754 bits little-endian, if flagLoc
//	event_id uvarint length > 0, then the bytes, if flagEventID
//
// A typical listen without event_id takes about 24 bytes, 40 with a
// location. A new format gets a new format byte; DecodeBinary keeps
// reading the old ones.
const binaryV1 = 1

const (
	flagLoc = 1 << iota
	flagCountry
	flagEventID
)

// ErrCorrupt is wrapped by the errors of DecodeBinary.
var ErrCorrupt = errors.New("events: corrupt binary listen")

// AppendBinary appends the binary form of l to dst and returns the extended
// slice. Any Listen can be encoded; DecodeBinary gives it back exactly,
// except for Lat and Lng when HasLoc is false, which it sets to 0.
func AppendBinary(dst []byte, l *Listen) []byte {
	var flags byte
	if l.HasLoc {
		flags |= flagLoc
	}
	if !l.Country.IsZero() {
		flags |= flagCountry
	}
	if l.EventID != "" {
		flags |= flagEventID
	}
	dst = append(dst, binaryV1, flags)
	dst = binary.AppendUvarint(dst, uint64(l.UserID))
	dst = binary.AppendUvarint(dst, uint64(l.SongID))
	dst = binary.AppendUvarint(dst, uint64(l.ArtistID))
	dst = binary.AppendVarint(dst, l.TS)
	dst = binary.AppendVarint(dst, int64(l.MsPlayed))
	if flags&flagCountry != 0 {
		dst = append(dst, l.Country[0], l.Country[1])
	}
	if flags&flagLoc != 0 {
		dst = binary.LittleEndian.AppendUint64(dst, math.Float64bits(l.Lat))
		dst = binary.LittleEndian.AppendUint64(dst, math.Float64bits(l.Lng))
	}
	if flags&flagEventID != 0 {
		dst = binary.AppendUvarint(dst, uint64(len(l.EventID)))
		dst = append(dst, l.EventID...)
	}
	return dst
}

// DecodeBinary decodes the binary form of a listen, all of b, into *l.
//
// It returns an error wrapping ErrCorrupt if b is truncated, has bytes
// left over, has an unknown format byte or flag, or holds something
// AppendBinary never writes; then *l is unspecified. It never panics. It
// does not check that the listen is valid by CONTRACT.md: it trusts the
// writer for that. It does not keep b: l.EventID is a copy.
func DecodeBinary(b []byte, l *Listen) error {
	if len(b) < 2 {
		return corrupt("truncated")
	}
	if b[0] != binaryV1 {
		return corrupt("unknown format")
	}
	flags := b[1]
	if flags&^(flagLoc|flagCountry|flagEventID) != 0 {
		return corrupt("unknown flags")
	}
	r := binReader{b: b[2:]}
	*l = Listen{
		UserID:   int64(r.uvarint()),
		SongID:   int64(r.uvarint()),
		ArtistID: int64(r.uvarint()),
		TS:       r.varint(),
	}
	ms := r.varint()
	if ms < math.MinInt32 || ms > math.MaxInt32 {
		return corrupt("ms_played out of range")
	}
	l.MsPlayed = int32(ms)
	if flags&flagCountry != 0 {
		if c := r.bytes(2); c != nil {
			l.Country = Country{c[0], c[1]}
			if l.Country.IsZero() {
				return corrupt("zero country")
			}
		}
	}
	if flags&flagLoc != 0 {
		l.HasLoc = true
		l.Lat = math.Float64frombits(r.uint64())
		l.Lng = math.Float64frombits(r.uint64())
	}
	if flags&flagEventID != 0 {
		n := r.uvarint()
		if n == 0 && r.err == "" {
			return corrupt("empty event_id")
		}
		if n > uint64(len(r.b)) {
			return corrupt("truncated")
		}
		l.EventID = string(r.bytes(int(n)))
	}
	switch {
	case r.err != "":
		return corrupt(r.err)
	case len(r.b) != 0:
		return corrupt("trailing bytes")
	}
	return nil
}

func corrupt(why string) error {
	return &corruptError{why}
}

// corruptError is an error of DecodeBinary.
type corruptError struct{ why string }

func (e *corruptError) Error() string { return ErrCorrupt.Error() + ": " + e.why }

func (e *corruptError) Unwrap() error { return ErrCorrupt }

// binReader reads the parts of a binary listen from b. After the first
// failure it sets err and returns zeros.
type binReader struct {
	b   []byte
	err string
}

func (r *binReader) uvarint() uint64 {
	if r.err != "" {
		return 0
	}
	x, n := binary.Uvarint(r.b)
	if n <= 0 {
		r.err = "bad varint"
		return 0
	}
	r.b = r.b[n:]
	return x
}

func (r *binReader) varint() int64 {
	if r.err != "" {
		return 0
	}
	x, n := binary.Varint(r.b)
	if n <= 0 {
		r.err = "bad varint"
		return 0
	}
	r.b = r.b[n:]
	return x
}

func (r *binReader) uint64() uint64 {
	if p := r.bytes(8); p != nil {
		return binary.LittleEndian.Uint64(p)
	}
	return 0
}

// bytes returns the next n bytes, or nil if there are fewer.
func (r *binReader) bytes(n int) []byte {
	if r.err != "" {
		return nil
	}
	if n > len(r.b) {
		r.err = "truncated"
		return nil
	}
	p := r.b[:n]
	r.b = r.b[n:]
	return p
}
