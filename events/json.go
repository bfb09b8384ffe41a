package events

import (
	"math"
	"strconv"
	"unicode/utf8"
)

// AppendJSON appends the canonical JSON form of l to dst and returns the
// extended slice. Decoding it gives back l exactly if l is valid (as
// decoded by a Decoder).
//
// The form is one line with the keys in this order and no spaces:
//
//	{"user_id":1,"song_id":2,"artist_id":3,"ts":"2026-03-01T12:00:00.000Z","ms_played":0,"country":"GB","lat":51.5,"lng":-0.12,"event_id":"e1"}
//
// ts is RFC 3339 in UTC with exactly three fraction digits; country is
// omitted when absent, lat and lng when !HasLoc, event_id when empty.
// Numbers use the shortest form that reads back the same float64, as
// encoding/json writes them. For an l that is not valid the output is still
// JSON: a ts outside years 1970 … 9999 is written as epoch milliseconds, a
// Lat or Lng that is not finite as null, and invalid UTF-8 in EventID as
// U+FFFD.
func AppendJSON(dst []byte, l *Listen) []byte {
	dst = append(dst, `{"user_id":`...)
	dst = strconv.AppendInt(dst, l.UserID, 10)
	dst = append(dst, `,"song_id":`...)
	dst = strconv.AppendInt(dst, l.SongID, 10)
	dst = append(dst, `,"artist_id":`...)
	dst = strconv.AppendInt(dst, l.ArtistID, 10)
	dst = append(dst, `,"ts":`...)
	if 0 <= l.TS && l.TS <= maxTS {
		dst = appendTS(dst, l.TS)
	} else {
		dst = strconv.AppendInt(dst, l.TS, 10)
	}
	dst = append(dst, `,"ms_played":`...)
	dst = strconv.AppendInt(dst, int64(l.MsPlayed), 10)
	if !l.Country.IsZero() {
		dst = append(dst, `,"country":`...)
		dst = appendString(dst, string(l.Country[:]))
	}
	if l.HasLoc {
		dst = append(dst, `,"lat":`...)
		dst = appendFloat(dst, l.Lat)
		dst = append(dst, `,"lng":`...)
		dst = appendFloat(dst, l.Lng)
	}
	if l.EventID != "" {
		dst = append(dst, `,"event_id":`...)
		dst = appendString(dst, l.EventID)
	}
	return append(dst, '}')
}

// appendTS appends ms, 0 … maxTS, as a quoted "YYYY-MM-DDTHH:MM:SS.mmmZ".
func appendTS(dst []byte, ms int64) []byte {
	days := ms / msPerDay
	y, m, d := civilFromDays(days)
	ms -= days * msPerDay
	dst = append(dst, '"')
	dst = appendDigits(dst, y, 4)
	dst = append(dst, '-')
	dst = appendDigits(dst, m, 2)
	dst = append(dst, '-')
	dst = appendDigits(dst, d, 2)
	dst = append(dst, 'T')
	dst = appendDigits(dst, ms/3_600_000, 2)
	dst = append(dst, ':')
	dst = appendDigits(dst, ms/60_000%60, 2)
	dst = append(dst, ':')
	dst = appendDigits(dst, ms/1000%60, 2)
	dst = append(dst, '.')
	dst = appendDigits(dst, ms%1000, 3)
	return append(dst, 'Z', '"')
}

// appendDigits appends n, 0 ≤ n < 10^width, as width decimal digits.
func appendDigits(dst []byte, n int64, width int) []byte {
	for i := width - 1; i >= 0; i-- {
		p := int64(1)
		for range i {
			p *= 10
		}
		dst = append(dst, byte('0'+n/p%10))
	}
	return dst
}

// appendFloat appends f as encoding/json does, or null if f is not finite.
func appendFloat(dst []byte, f float64) []byte {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return append(dst, "null"...)
	}
	format := byte('f')
	if abs := math.Abs(f); abs != 0 && (abs < 1e-6 || abs >= 1e21) {
		format = 'e'
	}
	dst = strconv.AppendFloat(dst, f, format, -1, 64)
	if format == 'e' {
		// Clean up e-09 to e-9, as encoding/json does.
		if n := len(dst); n >= 4 && dst[n-4] == 'e' && dst[n-3] == '-' && dst[n-2] == '0' {
			dst[n-2] = dst[n-1]
			dst = dst[:n-1]
		}
	}
	return dst
}

// appendString appends s as a JSON string. It escapes '"', '\\' and
// control characters, and writes invalid UTF-8 as U+FFFD.
func appendString(dst []byte, s string) []byte {
	const hex = "0123456789abcdef"
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c >= utf8.RuneSelf {
			r, size := utf8.DecodeRuneInString(s[i:])
			if r == utf8.RuneError && size == 1 {
				dst = append(dst, s[start:i]...)
				dst = append(dst, `\ufffd`...)
				i++
				start = i
				continue
			}
			i += size
			continue
		}
		if c >= 0x20 && c != '"' && c != '\\' {
			i++
			continue
		}
		dst = append(dst, s[start:i]...)
		switch c {
		case '"', '\\':
			dst = append(dst, '\\', c)
		case '\n':
			dst = append(dst, '\\', 'n')
		case '\r':
			dst = append(dst, '\\', 'r')
		case '\t':
			dst = append(dst, '\\', 't')
		default:
			dst = append(dst, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
		}
		i++
		start = i
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}
