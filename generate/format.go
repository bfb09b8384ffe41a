package generate

// Hand-rolled encoders: Next must not allocate and must stay fast, so
// timestamps, coordinates and event ids are appended digit by digit.

import "strconv"

const msPerDay = 24 * 60 * 60 * 1000

// Timestamp encodings a line can use for ts.
const (
	tsUTC       = iota // "2026-03-01T12:34:56Z"
	tsUTCMillis        // "2026-03-01T12:34:56.789Z"
	tsOffset           // "2026-03-01T13:34:56+01:00", same instant
	tsEpochMs          // 1772368496789
)

// appendTwo appends v (0…99) as two digits.
func appendTwo(dst []byte, v int64) []byte {
	return append(dst, byte('0'+v/10), byte('0'+v%10))
}

// dateCache remembers the last formatted date: event times move slowly,
// so most timestamps fall on the day before.
type dateCache struct {
	day  int64
	date [10]byte // "YYYY-MM-DD"
	ok   bool
}

// appendDate appends days since the epoch as YYYY-MM-DD.
func (c *dateCache) appendDate(dst []byte, days int64) []byte {
	if !c.ok || c.day != days {
		y, m, d := civil(days)
		b := c.date[:0]
		b = appendTwo(b, y/100)
		b = appendTwo(b, y%100)
		b = append(b, '-')
		b = appendTwo(b, m)
		b = append(b, '-')
		appendTwo(b, d)
		c.day, c.ok = days, true
	}
	return append(dst, c.date[:]...)
}

// appendTS appends the instant ms (Unix milliseconds) in the given form;
// for tsOffset the local time at offsetMin minutes east of UTC. Seconds
// are truncated in the forms without a fraction. c may be nil.
func appendTS(dst []byte, c *dateCache, ms int64, form int, offsetMin int32) []byte {
	if form == tsEpochMs {
		return strconv.AppendInt(dst, ms, 10)
	}
	local := ms
	if form == tsOffset {
		local += int64(offsetMin) * 60_000
	}
	days, rem := floorDiv(local, msPerDay)
	if c == nil {
		c = new(dateCache)
	}
	dst = append(dst, '"')
	dst = c.appendDate(dst, days)
	dst = append(dst, 'T')
	secs := rem / 1000
	dst = appendTwo(dst, secs/3600)
	dst = append(dst, ':')
	dst = appendTwo(dst, secs/60%60)
	dst = append(dst, ':')
	dst = appendTwo(dst, secs%60)
	switch form {
	case tsUTC:
		dst = append(dst, 'Z')
	case tsUTCMillis:
		f := rem % 1000
		dst = append(dst, '.', byte('0'+f/100), byte('0'+f/10%10), byte('0'+f%10), 'Z')
	default:
		off := int64(offsetMin)
		sign := byte('+')
		if off < 0 {
			sign, off = '-', -off
		}
		dst = append(dst, sign)
		dst = appendTwo(dst, off/60)
		dst = append(dst, ':')
		dst = appendTwo(dst, off%60)
	}
	return append(dst, '"')
}

// floorDiv returns the floor quotient and the non-negative remainder.
func floorDiv(a, b int64) (q, r int64) {
	q, r = a/b, a%b
	if r < 0 {
		q--
		r += b
	}
	return q, r
}

// civil converts days since 1970-01-01 to a proleptic Gregorian date
// (Howard Hinnant's days_from_civil inverse).
func civil(days int64) (y, m, d int64) {
	z := days + 719468
	era, _ := floorDiv(z, 146097)
	doe := z - era*146097
	yoe := (doe - doe/1460 + doe/36524 - doe/146096) / 365
	y = yoe + era*400
	doy := doe - (365*yoe + yoe/4 - yoe/100)
	mp := (5*doy + 2) / 153
	d = doy - (153*mp+2)/5 + 1
	if mp < 10 {
		m = mp + 3
	} else {
		m = mp - 9
	}
	if m <= 2 {
		y++
	}
	return y, m, d
}

// appendFixed6 appends x with exactly six decimals, rounded half away
// from zero (a value that rounds to zero is written without a sign).
func appendFixed6(dst []byte, x float64) []byte {
	neg := x < 0
	if neg {
		x = -x
	}
	v := int64(x*1e6 + 0.5)
	if neg && v != 0 {
		dst = append(dst, '-')
	}
	dst = strconv.AppendInt(dst, v/1_000_000, 10)
	f := v % 1_000_000
	return append(dst, '.',
		byte('0'+f/100_000), byte('0'+f/10_000%10), byte('0'+f/1000%10),
		byte('0'+f/100%10), byte('0'+f/10%10), byte('0'+f%10))
}

// base32 is Crockford's alphabet in lower case.
const base32 = "0123456789abcdefghjkmnpqrstvwxyz"

// appendID appends v as 13 base32 digits.
func appendID(dst []byte, v uint64) []byte {
	var b [13]byte
	for i := len(b) - 1; i >= 0; i-- {
		b[i] = base32[v&31]
		v >>= 5
	}
	return append(dst, b[:]...)
}

// mix is the SplitMix64 finalizer: a bijection of uint64 that spreads
// every input bit over the output.
func mix(z uint64) uint64 {
	z ^= z >> 30
	z *= 0xbf58476d1ce4e5b9
	z ^= z >> 27
	z *= 0x94d049bb133111eb
	z ^= z >> 31
	return z
}

// unit maps 64 random bits to a float64 in [0, 1).
func unit(h uint64) float64 { return float64(h>>11) * (1.0 / (1 << 53)) }
