// Package events defines the listen event of topic listens and its codecs.
//
// A listen arrives as one JSON object per record (CONTRACT.md, "Listen
// event"). [Decoder] turns such a record into a validated [Listen] or an
// [*InvalidError] whose Reason goes into the kappa-error header of the
// record's copy in listens.dlq. Internal topics carry listens in a compact
// binary form ([AppendBinary], [DecodeBinary]); [AppendJSON] writes the
// canonical JSON form, which decodes back to the same Listen.
package events

// MaxRecordSize is the largest valid record, in bytes. A longer record is
// invalid whatever it holds.
const MaxRecordSize = 64 << 10

const (
	maxMsPlayed   = 86_400_000 // ms_played: 0 … one day
	minStreamMs   = 30_000     // a stream is a play of at least 30 s
	maxEventIDLen = 128        // event_id: at most 128 bytes, after JSON unescaping

	msPerDay = 86_400_000
	// maxTS is 9999-12-31T23:59:59.999Z in Unix milliseconds: the latest
	// valid ts. The earliest is 0, 1970-01-01T00:00:00.000Z.
	maxTS = 253_402_300_799_999
)

// Listen is one valid listen event.
//
// The zero value is not a valid listen: UserID, SongID and ArtistID are at
// least 1 in a decoded Listen. Lat and Lng mean something only when HasLoc
// is true; the codecs write them only then and decode them as 0 otherwise.
type Listen struct {
	UserID   int64   // 1 … 2^63-1
	SongID   int64   // 1 … 2^63-1
	ArtistID int64   // 1 … 2^63-1
	TS       int64   // event time, Unix milliseconds UTC, 0 … 253402300799999 (years 1970 … 9999)
	MsPlayed int32   // 0 … 86_400_000; absent = 0
	Country  Country // zero value = absent
	HasLoc   bool    // Lat and Lng are set
	Lat, Lng float64 // degrees, −90 … 90 and −180 … 180, when HasLoc
	EventID  string  // at most 128 bytes of valid UTF-8; may be empty
}

// Day returns the UTC day of the listen's TS: the number of days since
// 1970-01-01, floor(TS / 86_400_000), rounding down for a negative TS too.
func (l *Listen) Day() int32 {
	return int32(floorDiv(l.TS, msPerDay))
}

// IsStream reports whether the listen is a stream (royalty-eligible): a play
// of at least 30,000 ms.
func (l *Listen) IsStream() bool {
	return l.MsPlayed >= minStreamMs
}

// InvalidError says why a record is not a valid listen.
//
// Reason always starts with Field and ": ", so that Reason alone is the
// short, stable text for the kappa-error header of a dead-lettered record:
// "user_id: missing", "ts: not RFC 3339 or epoch ms", "lat: without lng",
// "record: over 64 KiB", "json: syntax error at offset 12". Field is a
// listen field's JSON name, or "record" for the record as a whole (too
// long, not a JSON object), or "json" for a JSON syntax error.
//
// The reasons of a [Decoder], after "<Field>: ", are these, and only these:
//   - record: "over 64 KiB", "not a JSON object"
//   - json: "syntax error at offset N", N being the byte offset in the
//     record of the first byte that cannot be valid JSON there (the record's
//     length if it ends too soon)
//   - any field: "duplicate key"
//   - user_id, song_id, artist_id: "missing", "not an integer", "out of range"
//   - ts: "missing", "not RFC 3339 or epoch ms", "out of range"
//   - ms_played: "not an integer", "out of range"
//   - country: "not a string", "not an ISO 3166-1 alpha-2 code"
//   - lat, lng: "not a number", "out of range"; lat: "without lng";
//     lng: "without lat"
//   - event_id: "not a string", "over 128 bytes", "not valid UTF-8"
type InvalidError struct {
	Field  string
	Reason string
}

// Error returns "events: invalid listen: " followed by e.Reason, for
// example "events: invalid listen: user_id: missing".
func (e *InvalidError) Error() string {
	return "events: invalid listen: " + e.Reason
}

// floorDiv returns a / b rounded toward minus infinity; b must be > 0.
func floorDiv(a, b int64) int64 {
	q := a / b
	if a%b < 0 {
		q--
	}
	return q
}

// daysFromCivil returns the number of days from 1970-01-01 to the given
// proleptic Gregorian date (negative before it). Month is 1 … 12, day
// 1 … 31. Howard Hinnant's algorithm
// (https://howardhinnant.github.io/date_algorithms.html).
func daysFromCivil(y, m, d int64) int64 {
	if m <= 2 {
		y--
	}
	era := floorDiv(y, 400)
	yoe := y - era*400 // 0 … 399
	mp := (m + 9) % 12 // March = 0
	doy := (153*mp+2)/5 + d - 1
	doe := yoe*365 + yoe/4 - yoe/100 + doy // 0 … 146096
	return era*146097 + doe - 719468
}

// civilFromDays is the inverse of daysFromCivil.
func civilFromDays(z int64) (y, m, d int64) {
	z += 719468
	era := floorDiv(z, 146097)
	doe := z - era*146097
	yoe := (doe - doe/1460 + doe/36524 - doe/146096) / 365
	doy := doe - (365*yoe + yoe/4 - yoe/100)
	mp := (5*doy + 2) / 153
	d = doy - (153*mp+2)/5 + 1
	if mp < 10 {
		m = mp + 3
	} else {
		m = mp - 9
	}
	y = yoe + era*400
	if m <= 2 {
		y++
	}
	return y, m, d
}
