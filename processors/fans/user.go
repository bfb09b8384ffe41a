package fans

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"

	"github.com/uber/h3-go/v4"
)

// User is the fan-zones state of one user: the home (the location of the
// latest listen that has one, and its ts), the plays per artist, each
// counted up to MinPlays, beyond which the exact count does not matter for
// fandom, and what stage 2 counts of the user: the published home, its
// cell per configured resolution, and which artists the user counts as a
// fan of there.
//
// The zero value is a user with no plays and no home. A User is changed by
// [Processor.Apply] and [Processor.Publish] and stored with [User.Append]
// and [User.Decode]. It is not safe for concurrent use.
//
// Its locations are personal data: String and GoString leave them out, and
// so do encoding/json and slog (the fields are unexported).
type User struct {
	hasHome   bool
	ts        int64   // ts of the home's listen, when hasHome
	lat, lng  float64 // the home, when hasHome
	published bool    // stage 2 counts u's fans at cells
	// pubLat, pubLng are the published home and cells its cells,
	// ascending resolution, when published.
	pubLat, pubLng float64
	cells          []h3.Cell
	artists        []plays // ascending artist id; every plays.n ≥ 1
	changed        bool    // u changed since its Stage1 wrote it back
	// v1 is set by Decode of the version-1 form, which kept no counted
	// flags (all fans were counted): Apply and Publish set them first.
	v1 bool
}

// plays is the number of plays of one artist, capped at MinPlays, and
// whether stage 2 counts the user as a fan of it at the published cells.
type plays struct {
	artist  int64
	n       uint32
	counted bool
}

// HasHome reports whether a listen of u with a location has been seen.
func (u *User) HasHome() bool { return u.hasHome }

// Artists returns the number of distinct artists u played.
func (u *User) Artists() int { return len(u.artists) }

// Reset makes u the zero User, keeping its memory.
func (u *User) Reset() {
	*u = User{cells: u.cells[:0], artists: u.artists[:0]}
}

// String describes u without its locations, e.g.
// "fans.User{home: true, cells: 5, artists: 12}" (cells: of the published
// home).
func (u User) String() string {
	return fmt.Sprintf("fans.User{home: %t, cells: %d, artists: %d}", u.hasHome, len(u.cells), len(u.artists))
}

// GoString is String, so that %#v does not print the location either.
func (u User) GoString() string { return u.String() }

// ErrCorrupt is wrapped by the errors of [User.Decode] and [DecodeDelta].
var ErrCorrupt = errors.New("fans: corrupt encoding")

func corrupt(why string) error { return fmt.Errorf("%w: %s", ErrCorrupt, why) }

// The binary form of a User, version 2:
//
//	byte     version (2)
//	byte     flags: bit 0 = has home, bit 1 = published; other bits 0;
//	         published only with a home
//	if home:
//	  varint   ts (zig-zag)
//	  8 bytes  lat, 8 bytes lng: IEEE 754 bits, little-endian
//	if published:
//	  8 bytes  lat, 8 bytes lng of the published home, as above
//	  byte     number of cells n ≤ 16, then n × 8 bytes: cells, little-endian,
//	           resolutions strictly increasing
//	uvarint  number of artists m, then m × (uvarint artist id gap, uvarint
//	         plays << 1 | counted): the first gap is the id, the others the
//	         difference to the previous id (≥ 1); plays ≥ 1; counted only
//	         when published
//
// Version 1, written before publication was delayed, has no published
// home: its home and cells were counted, and so were its fans; its plays
// are not shifted. Decode reads it; Append writes version 2 once a
// Processor changed the user.
//
// A user with a home, five cells and k artists takes about 75 + 3k bytes.
const (
	userVersion1 = 1
	userVersion  = 2
	flagHome     = 1
	flagPub      = 2
	maxCells     = MaxResolution + 1
	maxPlaysEnc  = math.MaxUint32
	minArtistEnc = 2 // bytes per artist, at least
)

// Append appends the binary form of u to dst and returns the extended
// slice. [User.Decode] reads it back.
// A user decoded from version 1 and not yet changed by a Processor (which
// sets its counted flags) is appended in version 1.
func (u *User) Append(dst []byte) []byte {
	version, flags := byte(userVersion), byte(0)
	if u.hasHome {
		flags |= flagHome
	}
	if u.published && !u.v1 {
		flags |= flagPub
	}
	if u.v1 {
		version = userVersion1
	}
	dst = append(dst, version, flags)
	if u.hasHome {
		dst = binary.AppendVarint(dst, u.ts)
		dst = appendLatLng(dst, u.lat, u.lng)
	}
	if flags&flagPub != 0 {
		dst = appendLatLng(dst, u.pubLat, u.pubLng)
	}
	if u.published {
		dst = append(dst, byte(len(u.cells)))
		for _, c := range u.cells {
			dst = binary.LittleEndian.AppendUint64(dst, uint64(c))
		}
	}
	dst = binary.AppendUvarint(dst, uint64(len(u.artists)))
	prev := int64(0)
	for _, a := range u.artists {
		n := uint64(a.n)
		if !u.v1 {
			n <<= 1
			if a.counted {
				n |= 1
			}
		}
		dst = binary.AppendUvarint(dst, uint64(a.artist-prev))
		dst = binary.AppendUvarint(dst, n)
		prev = a.artist
	}
	return dst
}

func appendLatLng(dst []byte, lat, lng float64) []byte {
	dst = binary.LittleEndian.AppendUint64(dst, math.Float64bits(lat))
	return binary.LittleEndian.AppendUint64(dst, math.Float64bits(lng))
}

// Decode sets u to the User whose binary form (version 1 or 2) is all of
// b, reusing u's memory. It returns an error wrapping [ErrCorrupt] if b is
// not such a form (truncated, trailing bytes, unknown version, a value out
// of range); then u is the zero User. It never panics, and the error never
// holds a value read from b.
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
	version, flags := b[0], b[1]
	b = b[2:]
	switch {
	case version != userVersion && version != userVersion1:
		return corrupt("user: unknown version")
	case version == userVersion1 && flags&^flagHome != 0,
		version == userVersion && (flags&^(flagHome|flagPub) != 0 || flags == flagPub):
		return corrupt("user: unknown flags")
	}
	var err error
	if flags&flagHome != 0 {
		ts, n := varint(b)
		if n <= 0 {
			return corrupt("user: bad ts")
		}
		b = b[n:]
		if u.lat, u.lng, b, err = decodeLatLng(b); err != nil {
			return err
		}
		u.hasHome, u.ts = true, ts
	}
	u.v1 = version == userVersion1
	if u.v1 && u.hasHome {
		u.published, u.pubLat, u.pubLng = true, u.lat, u.lng
		if b, err = u.decodeCells(b); err != nil {
			return err
		}
	}
	if flags&flagPub != 0 {
		if u.pubLat, u.pubLng, b, err = decodeLatLng(b); err != nil {
			return err
		}
		if b, err = u.decodeCells(b); err != nil {
			return err
		}
		u.published = true
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
		counted := false
		if version == userVersion {
			counted, k = k&1 != 0, k>>1
		}
		if n <= 0 || k == 0 || k > maxPlaysEnc || counted && !u.published {
			return corrupt("user: bad plays")
		}
		b = b[n:]
		prev += int64(gap)
		u.artists = append(u.artists, plays{artist: prev, n: uint32(k), counted: counted})
	}
	if len(b) != 0 {
		return corrupt("user: trailing bytes")
	}
	return nil
}

// decodeLatLng decodes a location written by appendLatLng and returns the
// rest of b.
func decodeLatLng(b []byte) (lat, lng float64, rest []byte, err error) {
	if len(b) < 16 {
		return 0, 0, nil, corrupt("user: truncated location")
	}
	lat = math.Float64frombits(binary.LittleEndian.Uint64(b))
	lng = math.Float64frombits(binary.LittleEndian.Uint64(b[8:]))
	if !(lat >= -90 && lat <= 90) || !(lng >= -180 && lng <= 180) {
		return 0, 0, nil, corrupt("user: location out of range")
	}
	return lat, lng, b[16:], nil
}

// decodeCells decodes the published cells into u.cells and returns the
// rest of b.
func (u *User) decodeCells(b []byte) ([]byte, error) {
	if len(b) < 1 {
		return nil, corrupt("user: truncated cells")
	}
	nc := int(b[0])
	b = b[1:]
	if nc > maxCells || len(b) < 8*nc {
		return nil, corrupt("user: bad cells")
	}
	for i := range nc {
		c := h3.Cell(binary.LittleEndian.Uint64(b[8*i:]))
		if !isCell(c) || (i > 0 && resolution(c) <= resolution(u.cells[i-1])) {
			return nil, corrupt("user: bad cells")
		}
		u.cells = append(u.cells, c)
	}
	return b[8*nc:], nil
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
