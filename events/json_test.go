package events

import (
	"bytes"
	"encoding/json"
	"math"
	"strings"
	"testing"
	"time"
)

func TestAppendJSON(t *testing.T) {
	for _, tc := range []struct {
		name string
		l    Listen
		want string
	}{
		{"minimal", want(nil), `{"user_id":1,"song_id":2,"artist_id":3,"ts":"2026-03-01T12:00:00.000Z","ms_played":0}`},
		{"all fields", Listen{UserID: 1234567, SongID: 987654321, ArtistID: 45678, TS: 1772368496789, MsPlayed: 183000, Country: Country{'G', 'B'}, HasLoc: true, Lat: 51.5072, Lng: -0.1276, EventID: "e-1"},
			`{"user_id":1234567,"song_id":987654321,"artist_id":45678,"ts":"2026-03-01T12:34:56.789Z","ms_played":183000,"country":"GB","lat":51.5072,"lng":-0.1276,"event_id":"e-1"}`},
		{"first and last ts", Listen{UserID: 1, SongID: 1, ArtistID: 1, TS: 0, HasLoc: true, Lat: -90, Lng: 180},
			`{"user_id":1,"song_id":1,"artist_id":1,"ts":"1970-01-01T00:00:00.000Z","ms_played":0,"lat":-90,"lng":180}`},
		{"last ts", Listen{UserID: 1, SongID: 1, ArtistID: 1, TS: maxTS},
			`{"user_id":1,"song_id":1,"artist_id":1,"ts":"9999-12-31T23:59:59.999Z","ms_played":0}`},
		{"tiny floats", Listen{UserID: 1, SongID: 1, ArtistID: 1, HasLoc: true, Lat: 1e-7, Lng: -0.000001},
			`{"user_id":1,"song_id":1,"artist_id":1,"ts":"1970-01-01T00:00:00.000Z","ms_played":0,"lat":1e-7,"lng":-0.000001}`},
		{"negative zero", Listen{UserID: 1, SongID: 1, ArtistID: 1, HasLoc: true, Lat: math.Copysign(0, -1)},
			`{"user_id":1,"song_id":1,"artist_id":1,"ts":"1970-01-01T00:00:00.000Z","ms_played":0,"lat":-0,"lng":0}`},
		{"escaped event_id", Listen{UserID: 1, SongID: 1, ArtistID: 1, EventID: "a\"b\\c\n\r\t\x00\x1f/é🎵<>&"},
			`{"user_id":1,"song_id":1,"artist_id":1,"ts":"1970-01-01T00:00:00.000Z","ms_played":0,"event_id":"a\"b\\c\n\r\t\u0000\u001f/é🎵<>&"}`},
		// Listens that are not valid still give JSON.
		{"ts before 1970", Listen{TS: -1}, `{"user_id":0,"song_id":0,"artist_id":0,"ts":-1,"ms_played":0}`},
		{"ts after 9999", Listen{TS: maxTS + 1}, `{"user_id":0,"song_id":0,"artist_id":0,"ts":253402300800000,"ms_played":0}`},
		{"not finite", Listen{HasLoc: true, Lat: math.NaN(), Lng: math.Inf(-1)}, `{"user_id":0,"song_id":0,"artist_id":0,"ts":"1970-01-01T00:00:00.000Z","ms_played":0,"lat":null,"lng":null}`},
		{"invalid UTF-8 and odd country", Listen{Country: Country{'"', 0}, EventID: "a\xffb\xe2\x82"}, `{"user_id":0,"song_id":0,"artist_id":0,"ts":"1970-01-01T00:00:00.000Z","ms_played":0,"country":"\"\u0000","event_id":"a\ufffdb\ufffd\ufffd"}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := string(AppendJSON([]byte("x"), &tc.l))
			if got != "x"+tc.want {
				t.Errorf("AppendJSON =\n%s\nwant\n%s", got[1:], tc.want)
			}
			if !json.Valid([]byte(got[1:])) {
				t.Errorf("AppendJSON gave invalid JSON %s", got[1:])
			}
		})
	}
}

func TestJSONRoundTrip(t *testing.T) {
	var d Decoder
	for _, tc := range validCases() {
		t.Run(tc.name, func(t *testing.T) {
			var l, got Listen
			if err := d.Decode([]byte(tc.in), &l); err != nil {
				t.Fatal(err)
			}
			j := AppendJSON(nil, &l)
			if err := d.Decode(j, &got); err != nil || got != l {
				t.Fatalf("Decode(%s) = %+v, %v; want %+v", j, got, err, l)
			}
			if j2 := AppendJSON(nil, &got); !bytes.Equal(j, j2) {
				t.Errorf("canonical form is not stable:\n%s\n%s", j, j2)
			}
		})
	}
	for _, tc := range binaryCases()[:2] {
		var got Listen
		j := AppendJSON(nil, &tc.l)
		if err := d.Decode(j, &got); err != nil || got != tc.l {
			t.Errorf("Decode(%s) = %+v, %v; want %+v", j, got, err, tc.l)
		}
	}
}

// TestAppendFloat checks appendFloat against encoding/json.
func TestAppendFloat(t *testing.T) {
	floats := []float64{0, 1, -1, 0.1, 51.5072, -0.1276, 89.99999999999999, 180, 1e-6, 9.99e-7, 1e-7, 1.5e-300, 1e20, 1e21, 123456789.123, math.MaxFloat64, math.SmallestNonzeroFloat64}
	for i := range 2000 {
		floats = append(floats, math.Float64frombits(uint64(i)*0x9e3779b97f4a7c15))
	}
	for _, f := range floats {
		if math.IsNaN(f) || math.IsInf(f, 0) {
			continue
		}
		want, err := json.Marshal(f)
		if err != nil {
			t.Fatal(err)
		}
		if got := appendFloat(nil, f); string(got) != string(want) {
			t.Errorf("appendFloat(%v) = %s, want %s", f, got, want)
		}
	}
}

// TestAppendTS checks appendTS against the time package.
func TestAppendTS(t *testing.T) {
	for ms := int64(0); ms <= maxTS; ms += 1_234_567_891_237 {
		want := `"` + time.UnixMilli(ms).UTC().Format("2006-01-02T15:04:05.000Z07:00") + `"`
		if got := appendTS(nil, ms); string(got) != want {
			t.Errorf("appendTS(%d) = %s, want %s", ms, got, want)
		}
	}
}

// TestAppendString checks that encoding/json reads back what appendString
// writes, with invalid UTF-8 as U+FFFD, as json.Marshal writes it.
func TestAppendString(t *testing.T) {
	var all strings.Builder
	for c := range 256 {
		all.WriteByte(byte(c))
	}
	for _, s := range []string{"", "plain", all.String(), "é🎵\u2028", "\xff", "\xe2\x82", "a\xed\xa0\x80b"} {
		var got, want string
		if err := json.Unmarshal(appendString(nil, s), &got); err != nil {
			t.Fatalf("appendString(%q) = %s: %v", s, appendString(nil, s), err)
		}
		m, _ := json.Marshal(s)
		if err := json.Unmarshal(m, &want); err != nil {
			t.Fatal(err)
		}
		if got != want {
			t.Errorf("appendString(%q) reads back as %q, want %q", s, got, want)
		}
	}
}

func BenchmarkAppendJSON(b *testing.B) {
	l := binaryCases()[0].l
	buf := make([]byte, 0, 256)
	b.ReportAllocs()
	for b.Loop() {
		buf = AppendJSON(buf[:0], &l)
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
}
