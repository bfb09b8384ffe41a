package events

import (
	"bytes"
	"encoding/json"
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"
)

// FuzzDecodeListen checks that Decode never panics and returns only
// *InvalidError; that it agrees with encoding/json on what is JSON and on
// the values of the fields it accepts; and that a valid listen survives
// AppendJSON → Decode and AppendBinary → DecodeBinary unchanged.
func FuzzDecodeListen(f *testing.F) {
	for _, tc := range validCases() {
		if len(tc.in) <= 4096 {
			f.Add([]byte(tc.in))
		}
	}
	for _, tc := range invalidCases() {
		if len(tc.in) <= 4096 {
			f.Add([]byte(tc.in))
		}
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var d Decoder
		var l Listen
		err := d.Decode(b, &l)
		if err != nil {
			ie, ok := err.(*InvalidError)
			if !ok {
				t.Fatalf("Decode(%q) error %T %v, want *InvalidError", b, err, err)
			}
			if !documentedReason(ie) {
				t.Fatalf("Decode(%q): Field %q, Reason %q not documented", b, ie.Field, ie.Reason)
			}
			if len(b) > MaxRecordSize {
				return
			}
			if ie.Field == "json" && json.Valid(b) {
				t.Fatalf("Decode(%q) = %q, but encoding/json finds it valid", b, ie.Reason)
			}
			if ie.Field != "json" && !json.Valid(b) {
				t.Fatalf("Decode(%q) = %q, but encoding/json finds a syntax error", b, ie.Reason)
			}
			return
		}
		if !json.Valid(b) {
			t.Fatalf("Decode(%q) accepted invalid JSON: %+v", b, l)
		}
		checkWithEncodingJSON(t, b, &l)

		j := AppendJSON(nil, &l)
		var fromJSON Listen
		if err := d.Decode(j, &fromJSON); err != nil || fromJSON != l {
			t.Fatalf("Decode(AppendJSON) of %q:\n%s\n= %+v, %v; want %+v", b, j, fromJSON, err, l)
		}
		if j2 := AppendJSON(nil, &fromJSON); !bytes.Equal(j, j2) {
			t.Fatalf("canonical JSON not stable:\n%s\n%s", j, j2)
		}

		var fromBinary Listen
		if err := DecodeBinary(AppendBinary(nil, &l), &fromBinary); err != nil || fromBinary != l {
			t.Fatalf("binary round trip of %q = %+v, %v; want %+v", b, fromBinary, err, l)
		}
	})
}

// checkWithEncodingJSON checks l, decoded from b, against what
// encoding/json finds in b.
func checkWithEncodingJSON(t *testing.T, b []byte, l *Listen) {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var m map[string]any
	if err := dec.Decode(&m); err != nil {
		t.Fatalf("encoding/json cannot decode %q into a map: %v", b, err)
	}
	integer := func(key string) (int64, bool) {
		n, ok := m[key].(json.Number)
		if !ok {
			return 0, false
		}
		i, err := strconv.ParseInt(string(n), 10, 64)
		return i, err == nil
	}
	for _, f := range []struct {
		key string
		got int64
	}{{"user_id", l.UserID}, {"song_id", l.SongID}, {"artist_id", l.ArtistID}, {"ms_played", int64(l.MsPlayed)}} {
		if want, ok := integer(f.key); (ok || f.key != "ms_played") && want != f.got {
			t.Fatalf("%q: %s = %d, encoding/json has %v", b, f.key, f.got, m[f.key])
		}
	}
	switch ts := m["ts"].(type) {
	case json.Number:
		if want, ok := integer("ts"); !ok || want != l.TS {
			t.Fatalf("%q: ts = %d, encoding/json has %v", b, l.TS, ts)
		}
	case string:
		if tm, err := time.Parse(time.RFC3339Nano, ts); err == nil && tm.UnixMilli() != l.TS {
			t.Fatalf("%q: ts = %d, time.Parse has %d", b, l.TS, tm.UnixMilli())
		}
	default:
		t.Fatalf("%q: ts = %d, encoding/json has %v", b, l.TS, ts)
	}
	if c, _ := m["country"].(string); strings.ToUpper(c) != l.Country.String() {
		t.Fatalf("%q: country = %q, encoding/json has %q", b, l.Country, c)
	}
	if l.HasLoc {
		lat, err1 := m["lat"].(json.Number).Float64()
		lng, err2 := m["lng"].(json.Number).Float64()
		if err1 != nil || err2 != nil || lat != l.Lat || lng != l.Lng {
			t.Fatalf("%q: lat, lng = %v, %v; encoding/json has %v, %v", b, l.Lat, l.Lng, m["lat"], m["lng"])
		}
	} else if m["lat"] != nil || m["lng"] != nil {
		t.Fatalf("%q: no location, encoding/json has %v, %v", b, m["lat"], m["lng"])
	}
	if id, _ := m["event_id"].(string); id != l.EventID {
		t.Fatalf("%q: event_id = %q, encoding/json has %q", b, l.EventID, id)
	}
}

// FuzzDecodeBinary checks that DecodeBinary never panics, fails only with
// ErrCorrupt, and that what it accepts encodes and decodes back the same.
func FuzzDecodeBinary(f *testing.F) {
	for _, tc := range binaryCases() {
		f.Add(AppendBinary(nil, &tc.l))
	}
	f.Add([]byte{})
	f.Add([]byte{1, 0, 1, 1, 1, 0, 0})
	f.Add([]byte{1, flagEventID, 1, 1, 1, 0, 0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01, 'a'})
	f.Fuzz(func(t *testing.T, b []byte) {
		var l Listen
		if err := DecodeBinary(b, &l); err != nil {
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("DecodeBinary(%x) = %v, want ErrCorrupt", b, err)
			}
			return
		}
		var again Listen
		if err := DecodeBinary(AppendBinary(nil, &l), &again); err != nil || !sameListen(again, l) {
			t.Fatalf("DecodeBinary(%x) = %+v; round trip = %+v, %v", b, l, again, err)
		}
	})
}
