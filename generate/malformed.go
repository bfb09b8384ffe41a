package generate

import (
	"bytes"
	"strconv"
)

// Kinds of malformed lines, chosen uniformly. Every kind breaks a rule of
// the listen schema for sure; none is merely unusual (such as an unknown
// field or a lower-case country, which normal lines carry).
const (
	badTruncated     = iota // a strict prefix of a valid line
	badSyntax               // not JSON: trailing comma, quotes, colon, NaN, junk
	badMissing              // a required field is missing
	badIDRange              // an id is zero or negative
	badIDNotInteger         // an id is fractional or beyond 2^63-1
	badTS                   // ts is not a time
	badMsPlayed             // ms_played outside 0…86,400,000
	badCountry              // country is not an ISO 3166-1 alpha-2 code
	badHalfLocation         // lat without lng or lng without lat
	badLocationRange        // lat or lng out of range
	badEmptyObject          // {}
	badWrongType            // a field of the wrong JSON type
	badNotObject            // valid JSON, but not an object
	badEventID              // event_id longer than 128 bytes
	numBad
)

var (
	badTimes = [...]string{
		`"yesterday"`, `"2026-02-30T10:00:00Z"`, `"2026-03-01 10:00:00"`,
		`"2026-03-01T25:00:00Z"`, `"2026-03-01T10:00:00"`, `""`, `true`,
		`1772323200000.5`, `{"s":1}`, `"03/01/2026"`,
	}
	badCountries = [...]string{`"XX"`, `"ZZ"`, `"xx"`, `"GBR"`, `"G"`, `"1A"`, `"AA"`}
	notObjects   = [...]string{`[1,2,3]`, `"listen"`, `42`, `null`, `true`, `[]`}
)

// ids are the fields that must hold a positive int64.
var ids = [...]int{fUser, fSong, fArtist}

// appendMalformed appends a malformed line derived from ev and sets the
// key to the user_id the line still shows, or 0.
func (g *Generator) appendMalformed(dst []byte, ev *event) []byte {
	start := len(dst)
	dst = g.appendBroken(dst, ev)
	g.key = readableUser(dst[start:])
	return dst
}

// readableUser returns the user id that line spells as "user_id":N
// followed by ',' or '}', with N a positive int64; else 0.
func readableUser(line []byte) int64 {
	const key = `"user_id":`
	i := bytes.Index(line, []byte(key))
	if i < 0 {
		return 0
	}
	digits := line[i+len(key):]
	n := 0
	for n < len(digits) && digits[n] >= '0' && digits[n] <= '9' {
		n++
	}
	if n == 0 || n == len(digits) || (digits[n] != ',' && digits[n] != '}') {
		return 0
	}
	v, err := strconv.ParseInt(string(digits[:n]), 10, 64)
	if err != nil || v < 1 {
		return 0
	}
	return v
}

// appendBroken appends a malformed line derived from ev, of a kind chosen
// at random.
func (g *Generator) appendBroken(dst []byte, ev *event) []byte {
	start := len(dst)
	g.raw = g.raw[:0]
	p := patch{field: -1}
	breaks := func(field int) { p.field = field }
	switch g.below(numBad) {
	case badTruncated:
		dst = g.appendEvent(dst, ev, nil)
		n := uint64(len(dst) - start)
		return dst[:start+1+int(g.below(n-1))] // 1 … n-1 bytes

	case badSyntax:
		switch g.below(6) {
		case 0: // trailing comma
			dst = g.appendEvent(dst, ev, nil)
			return append(dst[:len(dst)-1], ',', '}')
		case 1: // first key in single quotes
			dst = g.appendEvent(dst, ev, nil)
			dst[start+1] = '\''
			dst[start+2+bytes.IndexByte(dst[start+2:], '"')] = '\''
			return dst
		case 2: // first key unquoted
			dst = g.appendEvent(dst, ev, nil)
			q := start + 2 + bytes.IndexByte(dst[start+2:], '"')
			dst = append(dst[:q], dst[q+1:]...)
			return append(dst[:start+1], dst[start+2:]...)
		case 3: // missing colon
			dst = g.appendEvent(dst, ev, nil)
			c := start + bytes.IndexByte(dst[start:], ':')
			return append(dst[:c], dst[c+1:]...)
		case 4: // NaN is not JSON
			ev.present |= 1<<fLat | 1<<fLng
			g.raw = append(g.raw, "NaN"...)
			breaks(fLat)
		default: // junk after the object
			dst = g.appendEvent(dst, ev, nil)
			return append(dst, '}')
		}

	case badMissing:
		breaks([...]int{fUser, fSong, fArtist, fTS}[g.below(4)])
		p.omit = true

	case badIDRange:
		f := ids[g.below(uint64(len(ids)))]
		breaks(f)
		if g.below(2) == 0 {
			g.raw = append(g.raw, '0')
		} else {
			g.raw = strconv.AppendInt(g.raw, -idOf(ev, f), 10)
		}

	case badIDNotInteger:
		f := ids[g.below(uint64(len(ids)))]
		breaks(f)
		switch g.below(3) {
		case 0:
			g.raw = append(strconv.AppendInt(g.raw, idOf(ev, f), 10), ".5"...)
		case 1:
			g.raw = append(g.raw, "9223372036854775808"...)
		default:
			g.raw = append(g.raw, "18446744073709551616"...)
		}

	case badTS:
		breaks(fTS)
		g.raw = append(g.raw, badTimes[g.below(uint64(len(badTimes)))]...)

	case badMsPlayed:
		breaks(fMs)
		if g.below(2) == 0 {
			g.raw = strconv.AppendInt(g.raw, -1-int64(g.below(300_000)), 10)
		} else {
			g.raw = strconv.AppendInt(g.raw, 86_400_001+int64(g.below(1<<40)), 10)
		}

	case badCountry:
		breaks(fCountry)
		g.raw = append(g.raw, badCountries[g.below(uint64(len(badCountries)))]...)

	case badHalfLocation:
		ev.present |= 1<<fLat | 1<<fLng
		breaks(fLat + int(g.below(2)))
		p.omit = true

	case badLocationRange:
		ev.present |= 1<<fLat | 1<<fLng
		sign := 1.0
		if g.below(2) == 0 {
			sign = -1
		}
		if g.below(2) == 0 {
			breaks(fLat)
			g.raw = appendFixed6(g.raw, sign*(90.5+89*g.float()))
		} else {
			breaks(fLng)
			g.raw = appendFixed6(g.raw, sign*(180.5+179*g.float()))
		}

	case badEmptyObject:
		return append(dst, '{', '}')

	case badWrongType:
		switch g.below(8) {
		case 0:
			breaks(fUser)
			g.raw = append(strconv.AppendInt(append(g.raw, '"'), ev.user, 10), '"')
		case 1:
			breaks(fSong)
			g.raw = append(g.raw, "true"...)
		case 2:
			breaks(fArtist)
			g.raw = append(strconv.AppendInt(append(g.raw, '['), ev.artist, 10), ']')
		case 3:
			breaks(fMs)
			g.raw = append(strconv.AppendInt(append(g.raw, '"'), ev.ms, 10), '"')
		case 4:
			ev.present |= 1<<fLat | 1<<fLng
			breaks(fLat)
			g.raw = append(appendFixed6(append(g.raw, '"'), ev.lat), '"')
		case 5:
			breaks(fCountry)
			g.raw = append(g.raw, "44"...)
		case 6:
			breaks(fEventID)
			g.raw = strconv.AppendUint(g.raw, ev.id>>40, 10)
		default:
			breaks(fSong)
			g.raw = append(g.raw, "null"...)
		}

	case badNotObject:
		return append(dst, notObjects[g.below(uint64(len(notObjects)))]...)

	case badEventID:
		breaks(fEventID)
		g.raw = append(g.raw, '"')
		for range 10 + g.below(6) { // 130 … 195 bytes
			g.raw = appendID(g.raw, g.pcg.Uint64())
		}
		g.raw = append(g.raw, '"')
	}
	p.raw = g.raw
	return g.appendEvent(dst, ev, &p)
}

// idOf returns the id field f of ev.
func idOf(ev *event, f int) int64 {
	switch f {
	case fUser:
		return ev.user
	case fSong:
		return ev.song
	default:
		return ev.artist
	}
}
