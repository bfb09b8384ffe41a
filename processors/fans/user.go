package fans

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"

	"github.com/uber/h3-go/v4"
)

// User is the fan-zones state of one user: the home (its ts, location and
// cell per configured resolution) and the plays per artist, each counted
// up to MinPlays, beyond which the exact count does not matter for fandom.
//
// The zero value is a user with no plays and no home. A User is changed by
// [Processor.Apply] and stored with [User.Append] and [User.Decode]. It is
// not safe for concurrent use.
//
// Its location is personal data: String and GoString leave it out, and so
// do encoding/json and slog (the fields are unexported).
type User struct {
	hasHome  bool
	ts       int64     // ts of the home's listen, when hasHome
	lat, lng float64   // the home, when hasHome
	cells    []h3.Cell // home cells, ascending resolution, when hasHome
	artists  []plays   // ascending artist id; every plays.n ≥ 1
	changed  bool      // Apply changed u since its Collector wrote it back
}

// plays is the number of plays of one artist, capped at MinPlays.
type plays struct {
	artist int64
	n      uint32
}

// HasHome reports whether a listen of u with a location has been seen.
func (u *User) HasHome() bool { return u.hasHome }

// Artists returns the number of distinct artists u played.
func (u *User) Artists() int { return len(u.artists) }

// Reset makes u the zero User, keeping its memory.
func (u *User) Reset() {
	*u = User{cells: u.cells[:0], artists: u.artists[:0]}
}

// String describes u without its location, e.g.
// "fans.User{home: true, cells: 5, artists: 12}".
func (u User) String() string {
	return fmt.Sprintf("fans.User{home: %t, cells: %d, artists: %d}", u.hasHome, len(u.cells), len(u.artists))
}

// GoString is String, so that %#v does not print the location either.
func (u User) GoString() string { return u.String() }

// ErrCorrupt is wrapped by the errors of [User.Decode] and [DecodeDelta].
var ErrCorrupt = errors.New("fans: corrupt encoding")

func corrupt(why string) error { return fmt.Errorf("%w: %s", ErrCorrupt, why) }

// The binary form of a User, version 1:
//
//	byte     version (1)
//	byte     flags: bit 0 = has home; other bits 0
//	if home:
//	  varint   ts (zig-zag)
//	  8 bytes  lat, 8 bytes lng: IEEE 754 bits, little-endian
//	  byte     number of cells n ≤ 16, then n × 8 bytes: cells, little-endian,
//	           resolutions strictly increasing
//	uvarint  number of artists m, then m × (uvarint artist id gap, uvarint plays):
//	         the first gap is the id, the others the difference to the
//	         previous id (≥ 1); plays ≥ 1
//
// A user with a home, five cells and k artists takes about 60 + 3k bytes.
const (
	userVersion  = 1
	flagHome     = 1
	maxCells     = MaxResolution + 1
	maxPlaysEnc  = math.MaxUint32
	minArtistEnc = 2 // bytes per artist, at least
)

// Append appends the binary form of u to dst and returns the extended
// slice. [User.Decode] reads it back.
func (u *User) Append(dst []byte) []byte {
	dst = append(dst, userVersion)
	if !u.hasHome {
		dst = append(dst, 0)
	} else {
		dst = append(dst, flagHome)
		dst = binary.AppendVarint(dst, u.ts)
		dst = binary.LittleEndian.AppendUint64(dst, math.Float64bits(u.lat))
		dst = binary.LittleEndian.AppendUint64(dst, math.Float64bits(u.lng))
		dst = append(dst, byte(len(u.cells)))
		for _, c := range u.cells {
			dst = binary.LittleEndian.AppendUint64(dst, uint64(c))
		}
	}
	dst = binary.AppendUvarint(dst, uint64(len(u.artists)))
	prev := int64(0)
	for _, a := range u.artists {
		dst = binary.AppendUvarint(dst, uint64(a.artist-prev))
		dst = binary.AppendUvarint(dst, uint64(a.n))
		prev = a.artist
	}
	return dst
}

// Decode sets u to the User whose binary form is all of b, reusing u's
// memory. It returns an error wrapping [ErrCorrupt] if b is not such a form
// (truncated, trailing bytes, unknown version, a value out of range); then
// u is the zero User. It never panics, and the error never holds a value
// read from b.
func (u *User) Decode(b []byte) error {
	u.Reset()
	if err := u.decode(b); err != nil {
		u.Reset()
		return err
	}
	return nil
}

func (u *User) decode(b []byte) error {
	if len(b) < 2 {
		return corrupt("user: truncated")
	}
	if b[0] != userVersion {
		return corrupt("user: unknown version")
	}
	flags := b[1]
	b = b[2:]
	if flags&^flagHome != 0 {
		return corrupt("user: unknown flags")
	}
	if flags&flagHome != 0 {
		ts, n := varint(b)
		if n <= 0 {
			return corrupt("user: bad ts")
		}
		b = b[n:]
		if len(b) < 17 {
			return corrupt("user: truncated home")
		}
		lat := math.Float64frombits(binary.LittleEndian.Uint64(b))
		lng := math.Float64frombits(binary.LittleEndian.Uint64(b[8:]))
		if !(lat >= -90 && lat <= 90) || !(lng >= -180 && lng <= 180) {
			return corrupt("user: home out of range")
		}
		nc := int(b[16])
		b = b[17:]
		if nc > maxCells || len(b) < 8*nc {
			return corrupt("user: bad cells")
		}
		for i := range nc {
			c := h3.Cell(binary.LittleEndian.Uint64(b[8*i:]))
			if !isCell(c) || (i > 0 && resolution(c) <= resolution(u.cells[i-1])) {
				return corrupt("user: bad cells")
			}
			u.cells = append(u.cells, c)
		}
		b = b[8*nc:]
		u.hasHome, u.ts, u.lat, u.lng = true, ts, lat, lng
	}
	m, n := uvarint(b)
	if n <= 0 || m > uint64(len(b)-n)/minArtistEnc {
		return corrupt("user: bad artist count")
	}
	b = b[n:]
	u.artists = grow(u.artists, int(m))
	prev := int64(0)
	for range m {
		gap, n := uvarint(b)
		if n <= 0 || gap == 0 || gap > uint64(math.MaxInt64-prev) {
			return corrupt("user: bad artist")
		}
		b = b[n:]
		k, n := uvarint(b)
		if n <= 0 || k == 0 || k > maxPlaysEnc {
			return corrupt("user: bad plays")
		}
		b = b[n:]
		prev += int64(gap)
		u.artists = append(u.artists, plays{artist: prev, n: uint32(k)})
	}
	if len(b) != 0 {
		return corrupt("user: trailing bytes")
	}
	return nil
}

// uvarint is binary.Uvarint accepting only the shortest encoding, so that
// a User has one binary form: n ≤ 0 means an error.
func uvarint(b []byte) (uint64, int) {
	v, n := binary.Uvarint(b)
	if n > 1 && b[n-1] == 0 {
		return 0, -1 // NB: a last byte of 0 adds nothing: not the shortest form
	}
	return v, n
}

// varint is binary.Varint accepting only the shortest encoding.
func varint(b []byte) (int64, int) {
	ux, n := uvarint(b)
	x := int64(ux >> 1)
	if ux&1 != 0 {
		x = ^x
	}
	return x, n
}

// grow returns s with room for n more elements.
func grow[T any](s []T, n int) []T {
	if cap(s)-len(s) < n {
		s = append(make([]T, 0, len(s)+n), s...)
	}
	return s
}

// resolution returns the resolution of an H3 cell index, read from its
// bits 52 … 55 (no cgo call).
func resolution(c h3.Cell) int { return int(uint64(c)>>52) & 0xf }

// isCell reports whether c has the shape of an H3 cell index: reserved bit
// 0 and mode 1 (cell). It does not check the base cell and digits.
func isCell(c h3.Cell) bool { return uint64(c)>>59 == 1 }
