package events

// Decoding is on the hot path, so the JSON decoder was chosen by benchmark.
// Each candidate did the same validation (the same per-field code, from a
// struct with custom field and ts types for encoding/json and goccy) on the
// typical 166-byte record of BenchmarkDecode (all fields but event_id, plus
// one unknown field); go1.26.8, linux/amd64, 2 shared cores, -count=3:
//
//	candidate                           ns/op       B/op  allocs/op  records/s
//	encoding/json                       2070–2370    216  4          0.42–0.48M
//	github.com/goccy/go-json v0.12.0     710–800      80  8          1.24–1.40M
//	github.com/valyala/fastjson v1.6.10
//	  Parser alone (not strict, below)   630–750       0  0          1.33–1.58M
//	  ValidateBytes, then Parser         870–950       0  0          1.05–1.15M
//	this file's scanner (chosen)         395–415       0  0          2.40–2.53M
//
// The scanner is also the only candidate that is both strict and exact:
// fastjson's Parser accepts what is not JSON (1.2.3, NaN, inf, bad escapes,
// control characters in strings), so it needs ValidateBytes first, and
// neither reports where a syntax error is; encoding/json and goccy match
// keys case-insensitively ("USER_ID" is user_id) and let the last of
// duplicate keys win. The scanner reads the record once: it matches each
// key with a switch, checks the syntax of everything, including what it
// skips, and allocates nothing unless event_id is present (the string).

import (
	"strconv"
	"unicode/utf16"
	"unicode/utf8"
)

// Decoder decodes JSON listens.
//
// A Decoder is not safe for concurrent use: give each goroutine its own.
// The zero value is ready to use; reuse it, as it keeps a scratch buffer.
//
// What Decode accepts, beyond CONTRACT.md:
//   - The record must be one JSON value (RFC 8259) with optional white
//     space around it, an object, nested at most 10,000 deep, like
//     encoding/json. Strings may hold any bytes but control characters;
//     only event_id must be valid UTF-8.
//   - Keys match exactly (case-sensitive), after unescaping: "user\u005fid"
//     is user_id. Unknown keys are ignored, repeated or not.
//   - A known key given twice is invalid ("<field>: duplicate key"), even
//     with equal values, so that no other reader of the raw log can take a
//     different value than kappa does.
//   - user_id, song_id, artist_id, ms_played and an epoch-ms ts must be
//     plain JSON integers: an optional minus and digits, no fraction and no
//     exponent. 1.0 and 1e3 are "not an integer"; -0 is 0.
//   - A string ts is RFC 3339's date-time (section 5.6): exactly
//     YYYY-MM-DDTHH:MM:SS, an optional fraction of any number of digits,
//     then Z or ±HH:MM. 'T' and 'Z' may be lower case, as RFC 3339 allows;
//     a space for 'T', a missing offset, ±HHMM or a 1-digit field are not
//     accepted. Dates are checked (no February 30). Second 60 (a leap second)
//     is accepted and, as Unix time has no leap seconds, counts as second 0
//     of the next minute. The time is converted to UTC and truncated to the
//     millisecond toward minus infinity.
//   - JSON null is the same as absent, for every field.
//   - When a record is invalid for several reasons, a JSON syntax error wins,
//     then the first invalid field in the record, then missing fields
//     (user_id, song_id, artist_id, ts, in that order), then a lone lat or lng.
type Decoder struct {
	buf []byte // scratch for unescaped strings
}

// maxDepth is the deepest nesting of objects and arrays accepted, the
// record's own object included; encoding/json has the same limit.
const maxDepth = 10_000

// Bits for the known fields, in the seen and set masks of Decode.
const (
	fUserID uint16 = 1 << iota
	fSongID
	fArtistID
	fTS
	fMsPlayed
	fCountry
	fLat
	fLng
	fEventID
)

// Decode decodes the JSON record b into *l and validates it.
//
// On failure it returns an [*InvalidError], never another error type, and
// *l is unspecified. It does not keep b: l.EventID is a copy.
func (d *Decoder) Decode(b []byte, l *Listen) error {
	if len(b) > MaxRecordSize {
		return invalid("record", "over 64 KiB")
	}
	*l = Listen{}
	i := skipWS(b, 0)
	if i >= len(b) || b[i] != '{' {
		return notObject(b, i)
	}
	var (
		seen uint16 // known keys present
		set  uint16 // known keys with a non-null value
		bad  uint16 // the first invalid field…
		what string // …and what is wrong with it
	)
	i = skipWS(b, i+1)
	if i < len(b) && b[i] == '}' {
		i++
	} else {
		for {
			if i >= len(b) || b[i] != '"' {
				return syntaxError(i)
			}
			end, escaped, ok := scanString(b, i+1)
			if !ok {
				return syntaxError(end)
			}
			key := b[i+1 : end]
			if escaped {
				d.buf, _ = unescape(d.buf[:0], key)
				key = d.buf
			}
			f := fieldOf(key)
			i = skipWS(b, end+1)
			if i >= len(b) || b[i] != ':' {
				return syntaxError(i)
			}
			i = skipWS(b, i+1)
			var v value
			v, i, ok = scanValue(b, i, 1)
			if !ok {
				return syntaxError(i)
			}
			switch {
			case f == 0 || bad != 0:
				// Unknown, or the record is already invalid: only its
				// syntax matters now.
			case seen&f != 0:
				bad, what = f, "duplicate key"
			default:
				seen |= f
				if v.kind != kindNull {
					set |= f
					if what = d.setField(l, f, v); what != "" {
						bad = f
					}
				}
			}
			i = skipWS(b, i)
			if i >= len(b) {
				return syntaxError(i)
			}
			if b[i] == ',' {
				i = skipWS(b, i+1)
				continue
			}
			if b[i] != '}' {
				return syntaxError(i)
			}
			i++
			break
		}
	}
	if i = skipWS(b, i); i != len(b) {
		return syntaxError(i)
	}
	if bad != 0 {
		return invalid(fieldName(bad), what)
	}
	for _, f := range [...]uint16{fUserID, fSongID, fArtistID, fTS} {
		if set&f == 0 {
			return invalid(fieldName(f), "missing")
		}
	}
	switch set & (fLat | fLng) {
	case fLat:
		return invalid("lat", "without lng")
	case fLng:
		return invalid("lng", "without lat")
	case fLat | fLng:
		l.HasLoc = true
	}
	return nil
}

// setField sets the field f of l from v, which is not null. It returns
// what is wrong with v, or "".
func (d *Decoder) setField(l *Listen, f uint16, v value) string {
	switch f {
	case fUserID, fSongID, fArtistID:
		if v.kind != kindNumber || !v.integer {
			return "not an integer"
		}
		n, ok := parseInteger(v.raw)
		if !ok || n < 1 {
			return "out of range"
		}
		switch f {
		case fUserID:
			l.UserID = n
		case fSongID:
			l.SongID = n
		default:
			l.ArtistID = n
		}
	case fTS:
		switch {
		case v.kind == kindString:
			s, _ := d.content(v)
			ms, what := parseRFC3339(s)
			if what != "" {
				return what
			}
			l.TS = ms
		case v.kind == kindNumber && v.integer:
			n, ok := parseInteger(v.raw)
			if !ok || n < 0 || n > maxTS {
				return "out of range"
			}
			l.TS = n
		default:
			return "not RFC 3339 or epoch ms"
		}
	case fMsPlayed:
		if v.kind != kindNumber || !v.integer {
			return "not an integer"
		}
		n, ok := parseInteger(v.raw)
		if !ok || n < 0 || n > maxMsPlayed {
			return "out of range"
		}
		l.MsPlayed = int32(n)
	case fCountry:
		if v.kind != kindString {
			return "not a string"
		}
		s, _ := d.content(v)
		if len(s) != 2 {
			return "not an ISO 3166-1 alpha-2 code"
		}
		c, ok := countryOf(s[0], s[1])
		if !ok {
			return "not an ISO 3166-1 alpha-2 code"
		}
		l.Country = c
	case fLat, fLng:
		if v.kind != kindNumber {
			return "not a number"
		}
		// NB: string(v.raw) does not allocate for a short number, as
		// ParseFloat does not keep its argument.
		x, err := strconv.ParseFloat(string(v.raw), 64)
		if f == fLat {
			if err != nil || !(-90 <= x && x <= 90) {
				return "out of range"
			}
			l.Lat = x
		} else {
			if err != nil || !(-180 <= x && x <= 180) {
				return "out of range"
			}
			l.Lng = x
		}
	case fEventID:
		if v.kind != kindString {
			return "not a string"
		}
		s, lossy := d.content(v)
		if len(s) > maxEventIDLen {
			return "over 128 bytes"
		}
		if lossy || !utf8.Valid(s) {
			return "not valid UTF-8"
		}
		l.EventID = string(s)
	}
	return ""
}

// content returns the unescaped content of the string v, and whether it
// had a lone UTF-16 surrogate escape, which became U+FFFD. The result may
// be d.buf: use it before the next call.
func (d *Decoder) content(v value) ([]byte, bool) {
	if !v.escaped {
		return v.raw, false
	}
	var lossy bool
	d.buf, lossy = unescape(d.buf[:0], v.raw)
	return d.buf, lossy
}

// fieldOf returns the bit of the known field named k, or 0.
func fieldOf(k []byte) uint16 {
	switch string(k) {
	case "user_id":
		return fUserID
	case "song_id":
		return fSongID
	case "artist_id":
		return fArtistID
	case "ts":
		return fTS
	case "ms_played":
		return fMsPlayed
	case "country":
		return fCountry
	case "lat":
		return fLat
	case "lng":
		return fLng
	case "event_id":
		return fEventID
	}
	return 0
}

// fieldName returns the JSON name of the known field f.
func fieldName(f uint16) string {
	switch f {
	case fUserID:
		return "user_id"
	case fSongID:
		return "song_id"
	case fArtistID:
		return "artist_id"
	case fTS:
		return "ts"
	case fMsPlayed:
		return "ms_played"
	case fCountry:
		return "country"
	case fLat:
		return "lat"
	case fLng:
		return "lng"
	case fEventID:
		return "event_id"
	}
	return "?"
}

// invalid returns the InvalidError for field, with reason "field: what".
func invalid(field, what string) *InvalidError {
	return &InvalidError{Field: field, Reason: field + ": " + what}
}

// syntaxError returns the InvalidError for a JSON syntax error at offset
// off: the offset of the first byte that cannot start or continue valid
// JSON there, or len(b) when the record ends too soon.
func syntaxError(off int) *InvalidError {
	return invalid("json", "syntax error at offset "+strconv.Itoa(off))
}

// notObject returns the error for a record b whose first non-space byte,
// at i, does not open an object: a syntax error, or "record: not a JSON
// object" if b is some other valid JSON value.
func notObject(b []byte, i int) *InvalidError {
	_, end, ok := scanValue(b, i, 1)
	if !ok {
		return syntaxError(end)
	}
	if end = skipWS(b, end); end != len(b) {
		return syntaxError(end)
	}
	return invalid("record", "not a JSON object")
}

// kind is the type of a JSON value.
type kind uint8

const (
	kindNull kind = iota
	kindBool
	kindNumber
	kindString
	kindObject
	kindArray
)

// value is a scanned JSON value.
type value struct {
	kind kind
	// raw is, for a number, its token and, for a string, the bytes between
	// the quotes, still escaped.
	raw     []byte
	escaped bool // a string with backslash escapes
	integer bool // a number with no fraction and no exponent
}

// scanValue scans the JSON value that starts at b[i], at nesting depth
// depth (the record's object is depth 1). It returns the value and the
// offset just past it, or ok = false and the offset of the syntax error.
func scanValue(b []byte, i, depth int) (v value, next int, ok bool) {
	if i >= len(b) {
		return v, i, false
	}
	switch c := b[i]; {
	case c == '"':
		end, escaped, ok := scanString(b, i+1)
		if !ok {
			return v, end, false
		}
		return value{kind: kindString, raw: b[i+1 : end], escaped: escaped}, end + 1, true
	case c == '-' || '0' <= c && c <= '9':
		end, integer, ok := scanNumber(b, i)
		if !ok {
			return v, end, false
		}
		return value{kind: kindNumber, raw: b[i:end], integer: integer}, end, true
	case c == '{':
		v.kind = kindObject
		next, ok = skipObject(b, i, depth+1)
	case c == '[':
		v.kind = kindArray
		next, ok = skipArray(b, i, depth+1)
	case c == 'n':
		v.kind = kindNull
		next, ok = scanLiteral(b, i, "null")
	case c == 't':
		v.kind = kindBool
		next, ok = scanLiteral(b, i, "true")
	case c == 'f':
		v.kind = kindBool
		next, ok = scanLiteral(b, i, "false")
	default:
		return v, i, false
	}
	return v, next, ok
}

// skipObject checks the object that starts at b[i] ('{') at the given
// depth, and returns the offset just past it, or ok = false and the offset
// of the syntax error.
func skipObject(b []byte, i, depth int) (int, bool) {
	if depth > maxDepth {
		return i, false
	}
	i = skipWS(b, i+1)
	if i < len(b) && b[i] == '}' {
		return i + 1, true
	}
	for {
		if i >= len(b) || b[i] != '"' {
			return i, false
		}
		end, _, ok := scanString(b, i+1)
		if !ok {
			return end, false
		}
		i = skipWS(b, end+1)
		if i >= len(b) || b[i] != ':' {
			return i, false
		}
		if _, i, ok = scanValue(b, skipWS(b, i+1), depth); !ok {
			return i, false
		}
		if i = skipWS(b, i); i >= len(b) {
			return i, false
		}
		switch b[i] {
		case ',':
			i = skipWS(b, i+1)
		case '}':
			return i + 1, true
		default:
			return i, false
		}
	}
}

// skipArray is skipObject for the array that starts at b[i] ('[').
func skipArray(b []byte, i, depth int) (int, bool) {
	if depth > maxDepth {
		return i, false
	}
	i = skipWS(b, i+1)
	if i < len(b) && b[i] == ']' {
		return i + 1, true
	}
	for {
		var ok bool
		if _, i, ok = scanValue(b, i, depth); !ok {
			return i, false
		}
		if i = skipWS(b, i); i >= len(b) {
			return i, false
		}
		switch b[i] {
		case ',':
			i = skipWS(b, i+1)
		case ']':
			return i + 1, true
		default:
			return i, false
		}
	}
}

// scanString scans the rest of a string whose opening quote is at b[i-1].
// It returns the offset of the closing quote and whether the string has
// escapes, or ok = false and the offset of the syntax error: a control
// character, a bad escape or the end of b.
func scanString(b []byte, i int) (end int, escaped, ok bool) {
	for i < len(b) {
		switch c := b[i]; {
		case c == '"':
			return i, escaped, true
		case c == '\\':
			escaped = true
			if i+1 >= len(b) {
				return len(b), escaped, false
			}
			switch b[i+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				i += 2
			case 'u':
				for j := i + 2; j < i+6; j++ {
					if j >= len(b) || !isHex(b[j]) {
						return j, escaped, false
					}
				}
				i += 6
			default:
				return i + 1, escaped, false
			}
		case c < 0x20:
			return i, escaped, false
		default:
			i++
		}
	}
	return i, escaped, false
}

// scanNumber scans the number that starts at b[i] ('-' or a digit). It
// returns the offset just past it and whether it is an integer (no
// fraction, no exponent), or ok = false and the offset of the syntax error.
func scanNumber(b []byte, i int) (end int, integer, ok bool) {
	if b[i] == '-' {
		i++
	}
	switch {
	case i >= len(b):
		return i, false, false
	case b[i] == '0':
		i++
	case '1' <= b[i] && b[i] <= '9':
		i = skipDigits(b, i+1)
	default:
		return i, false, false
	}
	integer = true
	if i < len(b) && b[i] == '.' {
		integer = false
		j := skipDigits(b, i+1)
		if j == i+1 {
			return j, false, false
		}
		i = j
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		integer = false
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		j := skipDigits(b, i)
		if j == i {
			return j, false, false
		}
		i = j
	}
	return i, integer, true
}

// scanLiteral checks that lit (null, true, false) starts at b[i] and
// returns the offset past it, or ok = false and the offset of the first
// byte that differs.
func scanLiteral(b []byte, i int, lit string) (int, bool) {
	for j := 0; j < len(lit); j++ {
		if i+j >= len(b) || b[i+j] != lit[j] {
			return i + j, false
		}
	}
	return i + len(lit), true
}

// skipWS returns the offset of the first byte at or after i that is not
// JSON white space.
func skipWS(b []byte, i int) int {
	for i < len(b) {
		switch b[i] {
		case ' ', '\n', '\r', '\t':
			i++
		default:
			return i
		}
	}
	return i
}

// skipDigits returns the offset of the first byte at or after i that is
// not an ASCII digit.
func skipDigits(b []byte, i int) int {
	for i < len(b) && '0' <= b[i] && b[i] <= '9' {
		i++
	}
	return i
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

// unhex returns the value of the hex digit c, which isHex.
func unhex(c byte) rune {
	switch {
	case c <= '9':
		return rune(c - '0')
	case c <= 'F':
		return rune(c - 'A' + 10)
	}
	return rune(c - 'a' + 10)
}

// unescape appends the unescaped content of the JSON string s, which
// scanString accepted, to dst. A lone UTF-16 surrogate escape becomes
// U+FFFD, as in encoding/json, and makes lossy true.
func unescape(dst, s []byte) (_ []byte, lossy bool) {
	for i := 0; i < len(s); {
		c := s[i]
		if c != '\\' {
			dst = append(dst, c)
			i++
			continue
		}
		switch c = s[i+1]; c {
		case 'b':
			c = '\b'
		case 'f':
			c = '\f'
		case 'n':
			c = '\n'
		case 'r':
			c = '\r'
		case 't':
			c = '\t'
		case 'u':
			r := hex4(s[i+2:])
			i += 6
			if utf16.IsSurrogate(r) {
				if i+6 <= len(s) && s[i] == '\\' && s[i+1] == 'u' {
					if rr := utf16.DecodeRune(r, hex4(s[i+2:])); rr != utf8.RuneError {
						dst = utf8.AppendRune(dst, rr)
						i += 6
						continue
					}
				}
				r, lossy = utf8.RuneError, true
			}
			dst = utf8.AppendRune(dst, r)
			continue
		}
		// '"', '\\' and '/' stand for themselves.
		dst = append(dst, c)
		i += 2
	}
	return dst, lossy
}

// hex4 returns the value of the 4 hex digits at the start of s.
func hex4(s []byte) rune {
	return unhex(s[0])<<12 | unhex(s[1])<<8 | unhex(s[2])<<4 | unhex(s[3])
}

// parseInteger returns the value of a JSON integer token (an optional
// minus, then digits), or ok = false if it is below 0 or above 2^63-1.
// "-0" is 0.
func parseInteger(tok []byte) (n int64, ok bool) {
	neg := tok[0] == '-'
	if neg {
		tok = tok[1:]
	}
	const maxInt = 1<<63 - 1
	var u uint64
	for _, c := range tok {
		if u > maxInt/10 {
			return 0, false
		}
		if u = u*10 + uint64(c-'0'); u > maxInt {
			return 0, false
		}
	}
	if neg && u != 0 {
		return 0, false
	}
	return int64(u), true
}

// parseRFC3339 returns the Unix milliseconds of the RFC 3339 date-time s
// (see Decoder for what is accepted), or what is wrong with it.
func parseRFC3339(s []byte) (ms int64, what string) {
	const notTS = "not RFC 3339 or epoch ms"
	// YYYY-MM-DDTHH:MM:SS, then [.fraction], then Z or ±HH:MM.
	if len(s) < len("2006-01-02T15:04:05Z") ||
		s[4] != '-' || s[7] != '-' || s[10] != 'T' && s[10] != 't' || s[13] != ':' || s[16] != ':' {
		return 0, notTS
	}
	year, ok1 := digits(s[0:4])
	month, ok2 := digits(s[5:7])
	day, ok3 := digits(s[8:10])
	hour, ok4 := digits(s[11:13])
	minute, ok5 := digits(s[14:16])
	sec, ok6 := digits(s[17:19])
	if !(ok1 && ok2 && ok3 && ok4 && ok5 && ok6) ||
		month < 1 || month > 12 || day < 1 || day > daysIn(year, month) ||
		hour > 23 || minute > 59 || sec > 60 {
		return 0, notTS
	}
	i := 19
	var frac int64 // milliseconds
	if s[i] == '.' {
		j := skipDigits(s, i+1)
		if j == i+1 {
			return 0, notTS
		}
		for k := i + 1; k < i+4; k++ {
			frac *= 10
			if k < j {
				frac += int64(s[k] - '0')
			}
		}
		i = j
	}
	var offset int64 // minutes east of UTC
	switch {
	case i == len(s)-1 && (s[i] == 'Z' || s[i] == 'z'):
	case i == len(s)-6 && (s[i] == '+' || s[i] == '-') && s[i+3] == ':':
		oh, ok1 := digits(s[i+1 : i+3])
		om, ok2 := digits(s[i+4 : i+6])
		if !ok1 || !ok2 || oh > 23 || om > 59 {
			return 0, notTS
		}
		if offset = oh*60 + om; s[i] == '-' {
			offset = -offset
		}
	default:
		return 0, notTS
	}
	days := daysFromCivil(year, month, day)
	ms = (((days*24+hour)*60+minute-offset)*60+sec)*1000 + frac
	if ms < 0 || ms > maxTS {
		return 0, "out of range"
	}
	return ms, ""
}

// digits returns the value of s, which must be all ASCII digits.
func digits(s []byte) (int64, bool) {
	var n int64
	for _, c := range s {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int64(c-'0')
	}
	return n, true
}

// daysIn returns the number of days in the month of the year.
func daysIn(year, month int64) int64 {
	switch month {
	case 2:
		if year%4 == 0 && (year%100 != 0 || year%400 == 0) {
			return 29
		}
		return 28
	case 4, 6, 9, 11:
		return 30
	}
	return 31
}
