package events

import (
	"errors"
	"math"
	"strings"
	"testing"
)

// sameListen is == but compares Lat and Lng bit for bit, so that NaN
// equals NaN and -0 differs from 0.
func sameListen(a, b Listen) bool {
	return math.Float64bits(a.Lat) == math.Float64bits(b.Lat) &&
		math.Float64bits(a.Lng) == math.Float64bits(b.Lng) &&
		a.UserID == b.UserID && a.SongID == b.SongID && a.ArtistID == b.ArtistID &&
		a.TS == b.TS && a.MsPlayed == b.MsPlayed && a.Country == b.Country &&
		a.HasLoc == b.HasLoc && a.EventID == b.EventID
}

// binaryCases are listens, valid or not, that must survive AppendBinary
// and DecodeBinary.
func binaryCases() []struct {
	name string
	l    Listen
} {
	return []struct {
		name string
		l    Listen
	}{
		{"typical", Listen{UserID: 1234567, SongID: 987654321, ArtistID: 45678, TS: 1772368496789, MsPlayed: 183000, Country: Country{'G', 'B'}}},
		{"with location and event_id", Listen{UserID: 1, SongID: 2, ArtistID: 3, TS: tsNoon, MsPlayed: 30000, Country: Country{'D', 'E'}, HasLoc: true, Lat: 51.5072, Lng: -0.1276, EventID: "0b7c1a2e-9f1d-4c55-8d3e-2c1f6b9a7e01"}},
		{"zero", Listen{}},
		{"max", Listen{UserID: math.MaxInt64, SongID: math.MaxInt64, ArtistID: math.MaxInt64, TS: math.MaxInt64, MsPlayed: math.MaxInt32, Country: Country{0xff, 0xff}, HasLoc: true, Lat: math.MaxFloat64, Lng: math.Inf(1), EventID: strings.Repeat("\xff", 300)}},
		{"min", Listen{UserID: math.MinInt64, SongID: -1, ArtistID: math.MinInt64, TS: math.MinInt64, MsPlayed: math.MinInt32, Country: Country{0, 'A'}, HasLoc: true, Lat: math.Copysign(0, -1), Lng: math.NaN(), EventID: "\x00"}},
		{"location 0,0", Listen{UserID: 1, SongID: 1, ArtistID: 1, HasLoc: true}},
		{"smallest float", Listen{UserID: 1, SongID: 1, ArtistID: 1, HasLoc: true, Lat: math.SmallestNonzeroFloat64, Lng: -math.SmallestNonzeroFloat64}},
	}
}

func TestBinaryRoundTrip(t *testing.T) {
	for _, tc := range binaryCases() {
		t.Run(tc.name, func(t *testing.T) {
			b := AppendBinary([]byte("prefix"), &tc.l)
			if string(b[:6]) != "prefix" {
				t.Fatalf("AppendBinary overwrote dst: %q", b)
			}
			b = b[6:]
			var got Listen
			if err := DecodeBinary(b, &got); err != nil {
				t.Fatalf("DecodeBinary(%x): %v", b, err)
			}
			if !sameListen(got, tc.l) {
				t.Errorf("round trip =\n%+v, want\n%+v", got, tc.l)
			}
			// Every truncation, and any extra byte, is an error.
			for n := range len(b) {
				if err := DecodeBinary(b[:n], &got); !errors.Is(err, ErrCorrupt) {
					t.Errorf("DecodeBinary(%x) (truncated to %d) = %v, want ErrCorrupt", b[:n], n, err)
				}
			}
			if err := DecodeBinary(append(b[:len(b):len(b)], 0), &got); !errors.Is(err, ErrCorrupt) {
				t.Errorf("DecodeBinary with a trailing byte = %v, want ErrCorrupt", err)
			}
		})
	}
}

func TestBinaryRoundTripDecoded(t *testing.T) {
	var d Decoder
	for _, tc := range validCases() {
		t.Run(tc.name, func(t *testing.T) {
			var l, got Listen
			if err := d.Decode([]byte(tc.in), &l); err != nil {
				t.Fatal(err)
			}
			if err := DecodeBinary(AppendBinary(nil, &l), &got); err != nil || got != l {
				t.Errorf("round trip = %+v, %v; want %+v", got, err, l)
			}
		})
	}
}

func TestBinaryLocationDroppedWithoutHasLoc(t *testing.T) {
	l := Listen{UserID: 1, SongID: 2, ArtistID: 3, Lat: 1, Lng: 2}
	var got Listen
	if err := DecodeBinary(AppendBinary(nil, &l), &got); err != nil || got.Lat != 0 || got.Lng != 0 || got.HasLoc {
		t.Errorf("got %+v, %v; want Lat and Lng 0", got, err)
	}
}

func TestBinarySize(t *testing.T) {
	cases := binaryCases()
	for _, tc := range []struct {
		l    Listen
		size int
	}{
		{cases[0].l, 24},
		{cases[1].l, 2 + 3 + 6 + 3 + 2 + 16 + 1 + 36}, // ids 1, 2, 3: 1 byte each
	} {
		if n := len(AppendBinary(nil, &tc.l)); n != tc.size {
			t.Errorf("%+v: %d bytes, want %d", tc.l, n, tc.size)
		}
	}
}

func TestDecodeBinaryCorrupt(t *testing.T) {
	// A valid listen is 1, 0, then user, song, artist, ts, ms_played: 1, 1, 1, 0, 0.
	for _, tc := range []struct {
		name string
		in   []byte
		why  string
	}{
		{"nil", nil, "truncated"},
		{"format only", []byte{1}, "truncated"},
		{"format 0", []byte{0, 0, 1, 1, 1, 0, 0}, "unknown format"},
		{"format 2", []byte{2, 0, 1, 1, 1, 0, 0}, "unknown format"},
		{"unknown flag", []byte{1, 8, 1, 1, 1, 0, 0}, "unknown flags"},
		{"no ids", []byte{1, 0}, "bad varint"},
		{"varint overflow", []byte{1, 0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01, 1, 1, 0, 0}, "bad varint"},
		{"ms_played over int32", []byte{1, 0, 1, 1, 1, 0, 0x80, 0x80, 0x80, 0x80, 0x10}, "ms_played out of range"},
		{"zero country", []byte{1, flagCountry, 1, 1, 1, 0, 0, 0, 0}, "zero country"},
		{"country truncated", []byte{1, flagCountry, 1, 1, 1, 0, 0, 'G'}, "truncated"},
		{"location truncated", []byte{1, flagLoc, 1, 1, 1, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9}, "truncated"},
		{"empty event_id", []byte{1, flagEventID, 1, 1, 1, 0, 0, 0}, "empty event_id"},
		{"event_id truncated", []byte{1, flagEventID, 1, 1, 1, 0, 0, 3, 'a', 'b'}, "truncated"},
		{"event_id length huge", []byte{1, flagEventID, 1, 1, 1, 0, 0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01, 'a'}, "truncated"},
		{"event_id length missing", []byte{1, flagEventID, 1, 1, 1, 0, 0}, "bad varint"},
		{"trailing bytes", []byte{1, 0, 1, 1, 1, 0, 0, 0}, "trailing bytes"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var l Listen
			err := DecodeBinary(tc.in, &l)
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("DecodeBinary(%x) = %v, want ErrCorrupt", tc.in, err)
			}
			if want := "events: corrupt binary listen: " + tc.why; err.Error() != want {
				t.Errorf("DecodeBinary(%x) = %q, want %q", tc.in, err, want)
			}
		})
	}
	var l Listen
	if err := DecodeBinary([]byte{1, 0, 1, 1, 1, 0, 0}, &l); err != nil || l != (Listen{UserID: 1, SongID: 1, ArtistID: 1}) {
		t.Errorf("the minimal valid input: %+v, %v", l, err)
	}
}

func BenchmarkAppendBinary(b *testing.B) {
	l := binaryCases()[0].l
	buf := make([]byte, 0, 64)
	b.ReportAllocs()
	for b.Loop() {
		buf = AppendBinary(buf[:0], &l)
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
}

func BenchmarkDecodeBinary(b *testing.B) {
	l := binaryCases()[0].l
	buf := AppendBinary(nil, &l)
	b.ReportAllocs()
	b.SetBytes(int64(len(buf)))
	for b.Loop() {
		if err := DecodeBinary(buf, &l); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
}
