package events

import (
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"
)

// ids is the start of most test records: the three required ids.
const ids = `"user_id":1,"song_id":2,"artist_id":3`

// tsNoon is 2026-03-01T12:00:00Z in Unix milliseconds.
const tsNoon = 1772366400000

// rec returns a JSON object with the given members, and the three ids and
// ts = 2026-03-01T12:00:00Z before them.
func rec(members ...string) string {
	return "{" + strings.Join(append([]string{ids, `"ts":"2026-03-01T12:00:00Z"`}, members...), ",") + "}"
}

// withTS returns a JSON object with the three ids and the given ts.
func withTS(ts string) string {
	return `{` + ids + `,"ts":` + ts + `}`
}

// want returns the listen of rec() changed by mod.
func want(mod func(l *Listen)) Listen {
	l := Listen{UserID: 1, SongID: 2, ArtistID: 3, TS: tsNoon}
	if mod != nil {
		mod(&l)
	}
	return l
}

func atTS(ms int64) Listen {
	return want(func(l *Listen) { l.TS = ms })
}

// validCases are records Decode must accept, and the listens they hold.
func validCases() []struct {
	name string
	in   string
	want Listen
} {
	return []struct {
		name string
		in   string
		want Listen
	}{
		{"minimal", rec(), want(nil)},
		{"all fields", `{"user_id":1234567,"song_id":987654321,"artist_id":45678,"ts":"2026-03-01T12:34:56.789Z","ms_played":183000,"country":"GB","lat":51.5072,"lng":-0.1276,"event_id":"e-1"}`,
			Listen{UserID: 1234567, SongID: 987654321, ArtistID: 45678, TS: 1772368496789, MsPlayed: 183000, Country: Country{'G', 'B'}, HasLoc: true, Lat: 51.5072, Lng: -0.1276, EventID: "e-1"}},
		{"any key order", `{"ts":"2026-03-01T12:00:00Z","artist_id":3,"song_id":2,"user_id":1}`, want(nil)},
		{"white space", " \t\r\n{ \"user_id\" : 1 ,\n\"song_id\":2\t,\"artist_id\":\r\n3 , \"ts\" : \"2026-03-01T12:00:00Z\" } \r\n", want(nil)},
		{"max ids", `{"user_id":9223372036854775807,"song_id":9223372036854775807,"artist_id":9223372036854775807,"ts":0}`,
			Listen{UserID: 1<<63 - 1, SongID: 1<<63 - 1, ArtistID: 1<<63 - 1}},
		{"escaped key", `{"user\u005fid":1,"song_id":2,"artist_id":3,"\u0074s":"2026-03-01T12:00:00Z"}`, want(nil)},
		{"unknown fields", rec(`"x":{"a":[1,2.5e-3,{"b":null}],"c":"d"}`, `"y":[]`, `"z":true`, `"w":false`, `"v":null`, `"u":-0.5E+7`, `"USER_ID":"shout"`), want(nil)},
		{"repeated unknown key", rec(`"x":1`, `"x":"two"`), want(nil)},
		{"unknown string with any escape and raw UTF-8", rec(`"x":"\" \\ \/ \b \f \n \r \t \u00e9 \ud800 é 🎵"`), want(nil)},
		{"invalid UTF-8 in an unknown field", rec("\"x\":\"\xff\xfe\""), want(nil)},

		{"ts epoch ms", withTS(`1772366400000`), want(nil)},
		{"ts epoch 0", withTS(`0`), atTS(0)},
		{"ts epoch -0", withTS(`-0`), atTS(0)},
		{"ts epoch max", withTS(`253402300799999`), atTS(maxTS)},
		{"ts first ms", withTS(`"1970-01-01T00:00:00Z"`), atTS(0)},
		{"ts first ms with offset", withTS(`"1970-01-01T01:00:00+01:00"`), atTS(0)},
		{"ts last ms", withTS(`"9999-12-31T23:59:59.999Z"`), atTS(maxTS)},
		{"ts last ms truncated", withTS(`"9999-12-31T23:59:59.999999999999Z"`), atTS(maxTS)},
		{"ts last ms with offset", withTS(`"9999-12-31T22:59:59.999-01:00"`), atTS(maxTS)},
		{"ts fraction 1 digit", withTS(`"2026-03-01T12:00:00.1Z"`), atTS(tsNoon + 100)},
		{"ts fraction 2 digits", withTS(`"2026-03-01T12:00:00.12Z"`), atTS(tsNoon + 120)},
		{"ts fraction 4 digits truncated", withTS(`"2026-03-01T12:00:00.9999Z"`), atTS(tsNoon + 999)},
		{"ts fraction 9 digits", withTS(`"2026-03-01T12:00:00.123456789Z"`), atTS(tsNoon + 123)},
		{"ts fraction 30 digits", withTS(`"2026-03-01T12:00:00.000999999999999999999999999999Z"`), atTS(tsNoon)},
		{"ts positive offset", withTS(`"2026-03-01T14:00:00.123+02:00"`), atTS(tsNoon + 123)},
		{"ts negative offset", withTS(`"2026-03-01T06:30:00-05:30"`), atTS(tsNoon)},
		{"ts offset -00:00", withTS(`"2026-03-01T12:00:00-00:00"`), atTS(tsNoon)},
		{"ts offset +23:59", withTS(`"2026-03-02T11:59:00+23:59"`), atTS(tsNoon)},
		{"ts offset across a day", withTS(`"2026-02-28T23:00:00-13:00"`), atTS(tsNoon)},
		{"ts lower-case t and z", withTS(`"2026-03-01t12:00:00z"`), want(nil)},
		{"ts escaped", withTS(`"2026-03-01T12:00:00\u005a"`), want(nil)},
		{"ts leap second", withTS(`"2016-12-31T23:59:60Z"`), atTS(1483228800000)},
		{"ts leap second with fraction", withTS(`"2016-12-31T23:59:60.5Z"`), atTS(1483228800500)},
		{"ts February 29 in a leap year", withTS(`"2024-02-29T00:00:00Z"`), atTS(1709164800000)},
		{"ts February 29 in 2000", withTS(`"2000-02-29T00:00:00Z"`), atTS(951782400000)},

		{"ms_played 0", rec(`"ms_played":0`), want(nil)},
		{"ms_played -0", rec(`"ms_played":-0`), want(nil)},
		{"ms_played max", rec(`"ms_played":86400000`), want(func(l *Listen) { l.MsPlayed = 86_400_000 })},
		{"ms_played null", rec(`"ms_played":null`), want(nil)},

		{"country upper", rec(`"country":"GB"`), want(func(l *Listen) { l.Country = Country{'G', 'B'} })},
		{"country lower", rec(`"country":"gb"`), want(func(l *Listen) { l.Country = Country{'G', 'B'} })},
		{"country mixed", rec(`"country":"dE"`), want(func(l *Listen) { l.Country = Country{'D', 'E'} })},
		{"country escaped", rec(`"country":"\u0067b"`), want(func(l *Listen) { l.Country = Country{'G', 'B'} })},
		{"country null", rec(`"country":null`), want(nil)},

		{"location", rec(`"lat":51.5072`, `"lng":-0.1276`), want(func(l *Listen) { l.HasLoc, l.Lat, l.Lng = true, 51.5072, -0.1276 })},
		{"location integers", rec(`"lat":-90`, `"lng":180`), want(func(l *Listen) { l.HasLoc, l.Lat, l.Lng = true, -90, 180 })},
		{"location bounds", rec(`"lat":90.0`, `"lng":-180.000`), want(func(l *Listen) { l.HasLoc, l.Lat, l.Lng = true, 90, -180 })},
		{"location exponents", rec(`"lat":1.5e1`, `"lng":-25E-1`), want(func(l *Listen) { l.HasLoc, l.Lat, l.Lng = true, 15, -2.5 })},
		{"location zero", rec(`"lat":0`, `"lng":-0`), want(func(l *Listen) { l.HasLoc = true })},
		{"location underflow is 0", rec(`"lat":1e-400`, `"lng":0`), want(func(l *Listen) { l.HasLoc = true })},
		{"location both null", rec(`"lat":null`, `"lng":null`), want(nil)},

		{"event_id", rec(`"event_id":"0b7c1a2e-9f1d-4c55-8d3e-2c1f6b9a7e01"`), want(func(l *Listen) { l.EventID = "0b7c1a2e-9f1d-4c55-8d3e-2c1f6b9a7e01" })},
		{"event_id empty", rec(`"event_id":""`), want(nil)},
		{"event_id null", rec(`"event_id":null`), want(nil)},
		{"event_id escapes", rec(`"event_id":"a\"b\\c\/d\b\f\n\r\t\u00e9\ud83c\udfb5"`), want(func(l *Listen) { l.EventID = "a\"b\\c/d\b\f\n\r\té🎵" })},
		{"event_id 128 bytes", rec(`"event_id":"` + strings.Repeat("x", 128) + `"`), want(func(l *Listen) { l.EventID = strings.Repeat("x", 128) })},
		{"event_id 128 bytes escaped", rec(`"event_id":"` + strings.Repeat(`\u0041`, 128) + `"`), want(func(l *Listen) { l.EventID = strings.Repeat("A", 128) })},
		{"event_id 64 two-byte runes", rec(`"event_id":"` + strings.Repeat("é", 64) + `"`), want(func(l *Listen) { l.EventID = strings.Repeat("é", 64) })},

		{"depth 10000", `{"x":` + strings.Repeat("[", maxDepth-1) + strings.Repeat("]", maxDepth-1) + "," + ids + `,"ts":0}`, atTS(0)},
		{"exactly 64 KiB", padTo(rec(), MaxRecordSize), want(nil)},
	}
}

// padTo returns the object record with an unknown string field added that
// makes it n bytes long.
func padTo(record string, n int) string {
	const pre = `,"pad":""`
	body := record[:len(record)-1]
	return body + pre[:len(pre)-1] + strings.Repeat("p", n-len(record)-len(pre)) + `"}`
}

func TestDecodeValid(t *testing.T) {
	var d Decoder
	for _, tc := range validCases() {
		t.Run(tc.name, func(t *testing.T) {
			var l Listen
			if err := d.Decode([]byte(tc.in), &l); err != nil {
				t.Fatalf("Decode(%.200q): %v", tc.in, err)
			}
			if l != tc.want {
				t.Errorf("Decode(%.200q) =\n%+v, want\n%+v", tc.in, l, tc.want)
			}
		})
	}
}

// invalidCases are records Decode must reject, with the Field of the error
// and, unless empty, its Reason.
func invalidCases() []struct {
	name   string
	in     string
	field  string
	reason string
} {
	return []struct {
		name   string
		in     string
		field  string
		reason string
	}{
		// The record as a whole.
		{"over 64 KiB", padTo(rec(), MaxRecordSize+1), "record", "record: over 64 KiB"},
		{"over 64 KiB and not JSON", strings.Repeat("x", MaxRecordSize+1), "record", "record: over 64 KiB"},
		{"array", `[` + rec() + `]`, "record", "record: not a JSON object"},
		{"string", `"user_id"`, "record", "record: not a JSON object"},
		{"number", ` 12 `, "record", "record: not a JSON object"},
		{"null", `null`, "record", "record: not a JSON object"},

		// JSON syntax.
		{"empty", ``, "json", "json: syntax error at offset 0"},
		{"only space", " \n", "json", "json: syntax error at offset 2"},
		{"not JSON", `hello`, "json", "json: syntax error at offset 0"},
		{"bad literal", `nul`, "json", "json: syntax error at offset 3"},
		{"truncated", rec()[:30], "json", "json: syntax error at offset 30"},
		{"unclosed object", `{`, "json", "json: syntax error at offset 1"},
		{"trailing comma", `{` + ids + `,}`, "json", "json: syntax error at offset 39"},
		{"missing colon", `{"user_id" 1}`, "json", "json: syntax error at offset 11"},
		{"missing comma", `{"user_id":1 "song_id":2}`, "json", "json: syntax error at offset 13"},
		{"unquoted key", `{user_id:1}`, "json", "json: syntax error at offset 1"},
		{"single quotes", `{'user_id':1}`, "json", "json: syntax error at offset 1"},
		{"trailing data", rec() + ` x`, "json", ""},
		{"two objects", rec() + rec(), "json", ""},
		{"comment", rec() + ` // c`, "json", ""},
		{"NaN", rec(`"lat":NaN`, `"lng":0`), "json", ""},
		{"Infinity", rec(`"lat":Infinity`, `"lng":0`), "json", ""},
		{"number plus", rec(`"ms_played":+1`), "json", ""},
		{"number leading zero", rec(`"ms_played":01`), "json", ""},
		{"number dot end", rec(`"lat":1.`, `"lng":0`), "json", ""},
		{"number dot start", rec(`"lat":.5`, `"lng":0`), "json", ""},
		{"number two dots", rec(`"lat":1.2.3`, `"lng":0`), "json", ""},
		{"number bare minus", rec(`"lat":-`, `"lng":0`), "json", ""},
		{"number empty exponent", rec(`"lat":1e`, `"lng":0`), "json", ""},
		{"number hex", rec(`"ms_played":0x10`), "json", ""},
		{"bad escape", rec(`"x":"\x"`), "json", ""},
		{"short unicode escape", rec(`"x":"\u12"`), "json", ""},
		{"non-hex unicode escape", rec(`"x":"\u12g4"`), "json", ""},
		{"raw control character", rec("\"event_id\":\"a\x01b\""), "json", ""},
		{"raw tab in string", rec("\"x\":\"a\tb\""), "json", ""},
		{"raw newline in key", rec("\"x\ny\":1"), "json", ""},
		{"unterminated string", `{"user_id":1,"x":"abc`, "json", "json: syntax error at offset 21"},
		{"unclosed nested array", rec(`"x":[1,2`), "json", ""},
		{"mismatched brackets", rec(`"x":[1}`), "json", ""},
		{"value missing", `{"user_id":}`, "json", "json: syntax error at offset 11"},
		{"depth 10001", `{"x":` + strings.Repeat("[", maxDepth) + strings.Repeat("]", maxDepth) + "," + ids + `,"ts":0}`, "json", "json: syntax error at offset 10004"},
		{"syntax error after an invalid field", `{"user_id":0,"x":tru}`, "json", ""},
		{"byte order mark", "\xef\xbb\xbf" + rec(), "json", "json: syntax error at offset 0"},

		// Required ids.
		{"user_id missing", `{"song_id":2,"artist_id":3,"ts":0}`, "user_id", "user_id: missing"},
		{"song_id missing", `{"user_id":1,"artist_id":3,"ts":0}`, "song_id", "song_id: missing"},
		{"artist_id missing", `{"user_id":1,"song_id":2,"ts":0}`, "artist_id", "artist_id: missing"},
		{"empty object", `{}`, "user_id", "user_id: missing"},
		{"user_id null", `{"user_id":null,"song_id":2,"artist_id":3,"ts":0}`, "user_id", "user_id: missing"},
		{"user_id upper case key", `{"USER_ID":1,"song_id":2,"artist_id":3,"ts":0}`, "user_id", "user_id: missing"},
		{"user_id 0", `{"user_id":0,"song_id":2,"artist_id":3,"ts":0}`, "user_id", "user_id: out of range"},
		{"user_id -0", `{"user_id":-0,"song_id":2,"artist_id":3,"ts":0}`, "user_id", "user_id: out of range"},
		{"user_id negative", `{"user_id":-1,"song_id":2,"artist_id":3,"ts":0}`, "user_id", "user_id: out of range"},
		{"user_id 2^63", `{"user_id":9223372036854775808,"song_id":2,"artist_id":3,"ts":0}`, "user_id", "user_id: out of range"},
		{"user_id 2^64", `{"user_id":18446744073709551616,"song_id":2,"artist_id":3,"ts":0}`, "user_id", "user_id: out of range"},
		{"user_id huge", `{"user_id":1` + strings.Repeat("0", 400) + `,"song_id":2,"artist_id":3,"ts":0}`, "user_id", "user_id: out of range"},
		{"user_id 1.0", `{"user_id":1.0,"song_id":2,"artist_id":3,"ts":0}`, "user_id", "user_id: not an integer"},
		{"user_id 1e3", `{"user_id":1e3,"song_id":2,"artist_id":3,"ts":0}`, "user_id", "user_id: not an integer"},
		{"user_id 1.5", `{"user_id":1.5,"song_id":2,"artist_id":3,"ts":0}`, "user_id", "user_id: not an integer"},
		{"user_id string", `{"user_id":"1","song_id":2,"artist_id":3,"ts":0}`, "user_id", "user_id: not an integer"},
		{"user_id bool", `{"user_id":true,"song_id":2,"artist_id":3,"ts":0}`, "user_id", "user_id: not an integer"},
		{"user_id object", `{"user_id":{},"song_id":2,"artist_id":3,"ts":0}`, "user_id", "user_id: not an integer"},
		{"user_id array", `{"user_id":[1],"song_id":2,"artist_id":3,"ts":0}`, "user_id", "user_id: not an integer"},
		{"song_id 0", `{"user_id":1,"song_id":0,"artist_id":3,"ts":0}`, "song_id", "song_id: out of range"},
		{"song_id float", `{"user_id":1,"song_id":2.5,"artist_id":3,"ts":0}`, "song_id", "song_id: not an integer"},
		{"artist_id negative", `{"user_id":1,"song_id":2,"artist_id":-3,"ts":0}`, "artist_id", "artist_id: out of range"},
		{"artist_id string", `{"user_id":1,"song_id":2,"artist_id":"3","ts":0}`, "artist_id", "artist_id: not an integer"},

		// ts.
		{"ts missing", `{` + ids + `}`, "ts", "ts: missing"},
		{"ts null", withTS(`null`), "ts", "ts: missing"},
		{"ts empty", withTS(`""`), "ts", "ts: not RFC 3339 or epoch ms"},
		{"ts date only", withTS(`"2026-03-01"`), "ts", "ts: not RFC 3339 or epoch ms"},
		{"ts no offset", withTS(`"2026-03-01T12:00:00"`), "ts", "ts: not RFC 3339 or epoch ms"},
		{"ts no offset with fraction", withTS(`"2026-03-01T12:00:00.123"`), "ts", "ts: not RFC 3339 or epoch ms"},
		{"ts space for T", withTS(`"2026-03-01 12:00:00Z"`), "ts", "ts: not RFC 3339 or epoch ms"},
		{"ts no seconds", withTS(`"2026-03-01T12:00Z"`), "ts", "ts: not RFC 3339 or epoch ms"},
		{"ts offset without colon", withTS(`"2026-03-01T12:00:00+0200"`), "ts", "ts: not RFC 3339 or epoch ms"},
		{"ts offset hours only", withTS(`"2026-03-01T12:00:00+02"`), "ts", "ts: not RFC 3339 or epoch ms"},
		{"ts offset hour 24", withTS(`"2026-03-01T12:00:00+24:00"`), "ts", "ts: not RFC 3339 or epoch ms"},
		{"ts offset minute 60", withTS(`"2026-03-01T12:00:00+02:60"`), "ts", "ts: not RFC 3339 or epoch ms"},
		{"ts offset and Z", withTS(`"2026-03-01T12:00:00Z+02:00"`), "ts", "ts: not RFC 3339 or epoch ms"},
		{"ts two Z", withTS(`"2026-03-01T12:00:00ZZ"`), "ts", "ts: not RFC 3339 or epoch ms"},
		{"ts UTC name", withTS(`"2026-03-01T12:00:00 UTC"`), "ts", "ts: not RFC 3339 or epoch ms"},
		{"ts empty fraction", withTS(`"2026-03-01T12:00:00.Z"`), "ts", "ts: not RFC 3339 or epoch ms"},
		{"ts comma fraction", withTS(`"2026-03-01T12:00:00,5Z"`), "ts", "ts: not RFC 3339 or epoch ms"},
		{"ts 1-digit month", withTS(`"2026-3-01T12:00:00Z"`), "ts", "ts: not RFC 3339 or epoch ms"},
		{"ts 1-digit hour", withTS(`"2026-03-01T1:00:00Z"`), "ts", "ts: not RFC 3339 or epoch ms"},
		{"ts month 13", withTS(`"2026-13-01T12:00:00Z"`), "ts", "ts: not RFC 3339 or epoch ms"},
		{"ts month 0", withTS(`"2026-00-01T12:00:00Z"`), "ts", "ts: not RFC 3339 or epoch ms"},
		{"ts day 0", withTS(`"2026-03-00T12:00:00Z"`), "ts", "ts: not RFC 3339 or epoch ms"},
		{"ts April 31", withTS(`"2026-04-31T12:00:00Z"`), "ts", "ts: not RFC 3339 or epoch ms"},
		{"ts February 29 in 2026", withTS(`"2026-02-29T12:00:00Z"`), "ts", "ts: not RFC 3339 or epoch ms"},
		{"ts February 29 in 2100", withTS(`"2100-02-29T12:00:00Z"`), "ts", "ts: not RFC 3339 or epoch ms"},
		{"ts hour 24", withTS(`"2026-03-01T24:00:00Z"`), "ts", "ts: not RFC 3339 or epoch ms"},
		{"ts minute 60", withTS(`"2026-03-01T12:60:00Z"`), "ts", "ts: not RFC 3339 or epoch ms"},
		{"ts second 61", withTS(`"2026-03-01T12:00:61Z"`), "ts", "ts: not RFC 3339 or epoch ms"},
		{"ts 5-digit year", withTS(`"10000-01-01T00:00:00Z"`), "ts", "ts: not RFC 3339 or epoch ms"},
		{"ts negative year", withTS(`"-2026-03-01T12:00:00Z"`), "ts", "ts: not RFC 3339 or epoch ms"},
		{"ts leading space", withTS(`" 2026-03-01T12:00:00Z"`), "ts", "ts: not RFC 3339 or epoch ms"},
		{"ts trailing space", withTS(`"2026-03-01T12:00:00Z "`), "ts", "ts: not RFC 3339 or epoch ms"},
		{"ts non-ASCII digits", withTS(`"２０２６-03-01T12:00:00Z"`), "ts", "ts: not RFC 3339 or epoch ms"},
		{"ts epoch ms as string", withTS(`"1772366400000"`), "ts", "ts: not RFC 3339 or epoch ms"},
		{"ts epoch float", withTS(`1772366400000.5`), "ts", "ts: not RFC 3339 or epoch ms"},
		{"ts epoch exponent", withTS(`1.7723664e12`), "ts", "ts: not RFC 3339 or epoch ms"},
		{"ts bool", withTS(`true`), "ts", "ts: not RFC 3339 or epoch ms"},
		{"ts object", withTS(`{"t":0}`), "ts", "ts: not RFC 3339 or epoch ms"},
		{"ts before 1970", withTS(`"1969-12-31T23:59:59.999Z"`), "ts", "ts: out of range"},
		{"ts before 1970 by offset", withTS(`"1970-01-01T00:30:00+01:00"`), "ts", "ts: out of range"},
		{"ts year 0", withTS(`"0000-01-01T00:00:00Z"`), "ts", "ts: out of range"},
		{"ts after 9999 by offset", withTS(`"9999-12-31T23:59:59-01:00"`), "ts", "ts: out of range"},
		{"ts after 9999 by leap second", withTS(`"9999-12-31T23:59:60Z"`), "ts", "ts: out of range"},
		{"ts epoch -1", withTS(`-1`), "ts", "ts: out of range"},
		{"ts epoch after 9999", withTS(`253402300800000`), "ts", "ts: out of range"},
		{"ts epoch overflow", withTS(`99999999999999999999`), "ts", "ts: out of range"},

		// ms_played.
		{"ms_played negative", rec(`"ms_played":-1`), "ms_played", "ms_played: out of range"},
		{"ms_played over a day", rec(`"ms_played":86400001`), "ms_played", "ms_played: out of range"},
		{"ms_played overflow", rec(`"ms_played":9223372036854775808`), "ms_played", "ms_played: out of range"},
		{"ms_played float", rec(`"ms_played":1.5`), "ms_played", "ms_played: not an integer"},
		{"ms_played exponent", rec(`"ms_played":3e4`), "ms_played", "ms_played: not an integer"},
		{"ms_played string", rec(`"ms_played":"30000"`), "ms_played", "ms_played: not an integer"},

		// country.
		{"country empty", rec(`"country":""`), "country", "country: not an ISO 3166-1 alpha-2 code"},
		{"country UK", rec(`"country":"UK"`), "country", "country: not an ISO 3166-1 alpha-2 code"},
		{"country EU", rec(`"country":"EU"`), "country", "country: not an ISO 3166-1 alpha-2 code"},
		{"country XX", rec(`"country":"XX"`), "country", "country: not an ISO 3166-1 alpha-2 code"},
		{"country XK", rec(`"country":"XK"`), "country", "country: not an ISO 3166-1 alpha-2 code"},
		{"country deleted AN", rec(`"country":"AN"`), "country", "country: not an ISO 3166-1 alpha-2 code"},
		{"country alpha-3", rec(`"country":"GBR"`), "country", "country: not an ISO 3166-1 alpha-2 code"},
		{"country one letter", rec(`"country":"G"`), "country", "country: not an ISO 3166-1 alpha-2 code"},
		{"country padded", rec(`"country":" GB"`), "country", "country: not an ISO 3166-1 alpha-2 code"},
		{"country digits", rec(`"country":"12"`), "country", "country: not an ISO 3166-1 alpha-2 code"},
		{"country number", rec(`"country":44`), "country", "country: not a string"},
		{"country bool", rec(`"country":false`), "country", "country: not a string"},

		// lat and lng.
		{"lat alone", rec(`"lat":1`), "lat", "lat: without lng"},
		{"lng alone", rec(`"lng":1`), "lng", "lng: without lat"},
		{"lat with null lng", rec(`"lat":1`, `"lng":null`), "lat", "lat: without lng"},
		{"lng with null lat", rec(`"lat":null`, `"lng":1`), "lng", "lng: without lat"},
		{"lat over 90", rec(`"lat":90.000001`, `"lng":0`), "lat", "lat: out of range"},
		{"lat under -90", rec(`"lat":-91`, `"lng":0`), "lat", "lat: out of range"},
		{"lng over 180", rec(`"lat":0`, `"lng":180.5`), "lng", "lng: out of range"},
		{"lng under -180", rec(`"lat":0`, `"lng":-1e3`), "lng", "lng: out of range"},
		{"lat overflow", rec(`"lat":1e400`, `"lng":0`), "lat", "lat: out of range"},
		{"lat string", rec(`"lat":"51.5"`, `"lng":0`), "lat", "lat: not a number"},
		{"lng bool", rec(`"lat":0`, `"lng":true`), "lng", "lng: not a number"},
		{"lat array", rec(`"lat":[51.5,0]`, `"lng":0`), "lat", "lat: not a number"},

		// event_id.
		{"event_id 129 bytes", rec(`"event_id":"` + strings.Repeat("x", 129) + `"`), "event_id", "event_id: over 128 bytes"},
		{"event_id 129 bytes escaped", rec(`"event_id":"` + strings.Repeat(`\u0041`, 129) + `"`), "event_id", "event_id: over 128 bytes"},
		{"event_id 65 two-byte runes", rec(`"event_id":"` + strings.Repeat("é", 65) + `"`), "event_id", "event_id: over 128 bytes"},
		{"event_id invalid UTF-8", rec("\"event_id\":\"a\xffb\""), "event_id", "event_id: not valid UTF-8"},
		{"event_id lone surrogate", rec(`"event_id":"a\ud800b"`), "event_id", "event_id: not valid UTF-8"},
		{"event_id reversed surrogates", rec(`"event_id":"\udfb5\ud83c"`), "event_id", "event_id: not valid UTF-8"},
		{"event_id number", rec(`"event_id":12`), "event_id", "event_id: not a string"},
		{"event_id object", rec(`"event_id":{}`), "event_id", "event_id: not a string"},

		// Duplicate keys.
		{"duplicate user_id", `{"user_id":1,"user_id":1,"song_id":2,"artist_id":3,"ts":0}`, "user_id", "user_id: duplicate key"},
		{"duplicate user_id different", `{"user_id":1,"song_id":2,"artist_id":3,"ts":0,"user_id":7}`, "user_id", "user_id: duplicate key"},
		{"duplicate escaped", `{"user_id":1,"user\u005fid":1,"song_id":2,"artist_id":3,"ts":0}`, "user_id", "user_id: duplicate key"},
		{"duplicate with null", withTS(`null,"ts":0`), "ts", "ts: duplicate key"},
		{"duplicate optional", rec(`"country":"GB"`, `"country":"GB"`), "country", "country: duplicate key"},
		{"duplicate lat", rec(`"lat":1`, `"lng":2`, `"lat":1`), "lat", "lat: duplicate key"},

		// Which error wins.
		{"first invalid field wins", `{"ms_played":-1,"user_id":0,"song_id":2,"artist_id":3,"ts":0}`, "ms_played", "ms_played: out of range"},
		{"invalid field before missing", `{"song_id":0}`, "song_id", "song_id: out of range"},
		{"missing before lone lat", `{"lat":1,"user_id":1,"song_id":2,"artist_id":3}`, "ts", "ts: missing"},
	}
}

func TestDecodeInvalid(t *testing.T) {
	var d Decoder
	for _, tc := range invalidCases() {
		t.Run(tc.name, func(t *testing.T) {
			var l Listen
			err := d.Decode([]byte(tc.in), &l)
			if err == nil {
				t.Fatalf("Decode(%.200q) = nil error, %+v", tc.in, l)
			}
			ie, ok := err.(*InvalidError)
			if !ok {
				t.Fatalf("Decode(%.200q) error %T %q, want *InvalidError", tc.in, err, err)
			}
			if ie.Field != tc.field || tc.reason != "" && ie.Reason != tc.reason {
				t.Errorf("Decode(%.200q) = Field %q, Reason %q; want %q, %q", tc.in, ie.Field, ie.Reason, tc.field, tc.reason)
			}
			if !documentedReason(ie) {
				t.Errorf("Field %q, Reason %q: not documented on InvalidError", ie.Field, ie.Reason)
			}
			if got, want := err.Error(), "events: invalid listen: "+ie.Reason; got != want {
				t.Errorf("Error() = %q, want %q", got, want)
			}
		})
	}
}

// documentedReason reports whether e is one of the errors listed in the
// doc comment of InvalidError.
func documentedReason(e *InvalidError) bool {
	what, ok := strings.CutPrefix(e.Reason, e.Field+": ")
	if !ok {
		return false
	}
	switch e.Field {
	case "record":
		return what == "over 64 KiB" || what == "not a JSON object"
	case "json":
		n, ok := strings.CutPrefix(what, "syntax error at offset ")
		_, err := strconv.ParseUint(n, 10, 32)
		return ok && err == nil
	}
	if what == "duplicate key" {
		return fieldOf([]byte(e.Field)) != 0
	}
	switch e.Field {
	case "user_id", "song_id", "artist_id":
		return what == "missing" || what == "not an integer" || what == "out of range"
	case "ts":
		return what == "missing" || what == "not RFC 3339 or epoch ms" || what == "out of range"
	case "ms_played":
		return what == "not an integer" || what == "out of range"
	case "country":
		return what == "not a string" || what == "not an ISO 3166-1 alpha-2 code"
	case "lat":
		return what == "not a number" || what == "out of range" || what == "without lng"
	case "lng":
		return what == "not a number" || what == "out of range" || what == "without lat"
	case "event_id":
		return what == "not a string" || what == "over 128 bytes" || what == "not valid UTF-8"
	}
	return false
}

func TestDecodeReuse(t *testing.T) {
	var d Decoder
	var l Listen
	first := []byte(rec(`"event_id":"\u0041BC"`, `"country":"gb"`, `"lat":1`, `"lng":2`, `"ms_played":5`))
	if err := d.Decode(first, &l); err != nil {
		t.Fatal(err)
	}
	copy(first, strings.Repeat(" ", len(first))) // Decode must not keep first.
	if l.EventID != "ABC" {
		t.Errorf("EventID = %q after the record changed, want ABC", l.EventID)
	}
	// A second record must not inherit anything from the first.
	if err := d.Decode([]byte(rec()), &l); err != nil {
		t.Fatal(err)
	}
	if l != want(nil) {
		t.Errorf("second Decode = %+v, want %+v", l, want(nil))
	}
	// Nor after an invalid one.
	if err := d.Decode([]byte(rec(`"event_id":"x"`, `"lat":1`)), &l); err == nil {
		t.Fatal("lat without lng: no error")
	}
	if err := d.Decode([]byte(rec()), &l); err != nil || l != want(nil) {
		t.Errorf("Decode after an error = %+v, %v", l, err)
	}
}

func TestDecodeAllocs(t *testing.T) {
	var d Decoder
	var l Listen
	for _, tc := range []struct {
		name string
		in   string
		max  float64
	}{
		{"no event_id", benchRecord, 0},
		{"escaped key and ts", `{"user\u005fid":1,"song_id":2,"artist_id":3,"ts":"2026-03-01T12:00:00\u005a"}`, 0},
		{"event_id", rec(`"event_id":"0b7c1a2e-9f1d-4c55-8d3e-2c1f6b9a7e01"`), 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := []byte(tc.in)
			if err := d.Decode(b, &l); err != nil { // Warm up d's buffer.
				t.Fatal(err)
			}
			n := testing.AllocsPerRun(100, func() {
				if err := d.Decode(b, &l); err != nil {
					t.Fatal(err)
				}
			})
			if n > tc.max {
				t.Errorf("%v allocations per Decode, want at most %v", n, tc.max)
			}
		})
	}
}

// TestParseRFC3339Time checks parseRFC3339 against the time package on
// times it formats, with many offsets and fraction lengths.
func TestParseRFC3339Time(t *testing.T) {
	zones := []*time.Location{
		time.UTC,
		time.FixedZone("", 2*3600),
		time.FixedZone("", -(5*3600 + 30*60)),
		time.FixedZone("", 23*3600+59*60),
		time.FixedZone("", -(23*3600 + 59*60)),
		time.FixedZone("", 45*60),
	}
	layouts := []string{time.RFC3339, time.RFC3339Nano, "2006-01-02T15:04:05.0Z07:00", "2006-01-02T15:04:05.000000Z07:00"}
	// A deterministic walk over the whole range (a day in from each end, so
	// that no offset takes it out), with prime steps so that every part of
	// the date and time varies.
	const days = maxTS / msPerDay
	for k := int64(0); k < 20_000; k++ {
		sec := 86400 + k*1_000_003*7919%((days-2)*86400)
		nsec := k * 104_729 * 7919 % 1e9
		tm := time.Unix(sec, nsec).In(zones[k%int64(len(zones))])
		s := tm.Format(layouts[k/7%int64(len(layouts))])
		got, what := parseRFC3339([]byte(s))
		parsed, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			t.Fatalf("time.Parse(%q): %v", s, err)
		}
		if want := parsed.UnixMilli(); what != "" || got != want {
			t.Fatalf("parseRFC3339(%q) = %d, %q; want %d", s, got, what, want)
		}
	}
}

func TestDaysFromCivil(t *testing.T) {
	for days := int64(-800_000); days <= 3_000_000; days += 97 {
		tm := time.Unix(days*86400, 0).UTC()
		y, m, d := civilFromDays(days)
		if y != int64(tm.Year()) || m != int64(tm.Month()) || d != int64(tm.Day()) {
			t.Fatalf("civilFromDays(%d) = %d-%d-%d, want %s", days, y, m, d, tm.Format(time.DateOnly))
		}
		if got := daysFromCivil(y, m, d); got != days {
			t.Fatalf("daysFromCivil(%d, %d, %d) = %d, want %d", y, m, d, got, days)
		}
	}
}

func TestInvalidErrorAs(t *testing.T) {
	var d Decoder
	var l Listen
	err := d.Decode([]byte(`{}`), &l)
	var ie *InvalidError
	if !errors.As(err, &ie) || ie.Field != "user_id" {
		t.Fatalf("errors.As(%v) = %v, %+v", err, errors.As(err, &ie), ie)
	}
}

// benchRecord is a typical record: 166 bytes, no event_id, one unknown field.
const benchRecord = `{"user_id":1234567,"song_id":987654321,"artist_id":45678,"ts":"2026-03-01T12:34:56.789Z","ms_played":183000,"country":"GB","lat":51.5072,"lng":-0.1276,"client":"ios"}`

func BenchmarkDecode(b *testing.B) {
	for _, bc := range []struct {
		name string
		in   string
	}{
		{"typical", benchRecord},
		{"epoch_ms", `{"user_id":1234567,"song_id":987654321,"artist_id":45678,"ts":1772368496789,"ms_played":183000}`},
		{"event_id", `{"user_id":1234567,"song_id":987654321,"artist_id":45678,"ts":"2026-03-01T14:34:56.789+02:00","ms_played":183000,"country":"gb","event_id":"0b7c1a2e-9f1d-4c55-8d3e-2c1f6b9a7e01"}`},
	} {
		b.Run(bc.name, func(b *testing.B) {
			in := []byte(bc.in)
			var d Decoder
			var l Listen
			b.ReportAllocs()
			b.SetBytes(int64(len(in)))
			for b.Loop() {
				if err := d.Decode(in, &l); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
		})
	}
}
