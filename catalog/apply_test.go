package catalog

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func TestClean(t *testing.T) {
	for in, want := range map[string]string{
		"Adele":                    "Adele",
		"  Sigur   Rós \t":         "Sigur Rós",
		"Bjo\u0308rk":              "Björk", // NFD → NFC
		"Zoe\u0308\u00a0Mørk":      "Zoë Mørk",
		"Hel\x00lo\u200b":          "Hel" + "lo\u200b",
		"\n\n":                     "",
		"Tab\tin\nthe\r\nmiddle  ": "Tab in the middle",
		"bad \ufffd byte":          "bad byte",
	} {
		if got := Clean(in); got != want {
			t.Errorf("Clean(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestDecode(t *testing.T) {
	for _, tc := range []struct {
		in  string
		err string
	}{
		{`{"batch":"b1","kind":"song","song_id":7,"title":"x","artist_id":3,"updated":"2026-11-20T10:00:00Z"}`, ""},
		{`{"batch":"b1","kind":"artist","artist_id":3,"updated":"2026-11-20T10:00:00+01:00"}`, ""},
		{`{"batch":"r1","kind":"rollback","song_id":7,"rollback":"b1"}`, ""},
		{`{"batch":"r1","kind":"rollback","artist_id":7,"to":"2026-11-20T10:00:00Z"}`, ""},
		{`{"batch":"b1","kind":"song","song_id":7,"updated":"2026-11-20T10:00:00Z","genre":"pop"}`, `unknown field "genre"`},
		{`{"batch":"","kind":"song","song_id":7,"updated":"2026-11-20T10:00:00Z"}`, "batch must be"},
		{`{"batch":"b1","kind":"album","song_id":7,"updated":"2026-11-20T10:00:00Z"}`, `kind "album"`},
		{`{"batch":"b1","kind":"song","updated":"2026-11-20T10:00:00Z"}`, "needs song_id"},
		{`{"batch":"b1","kind":"song","song_id":-7,"updated":"2026-11-20T10:00:00Z"}`, "positive"},
		{`{"batch":"b1","kind":"song","song_id":"7","updated":"2026-11-20T10:00:00Z"}`, "cannot unmarshal"},
		{`{"batch":"b1","kind":"song","song_id":7,"updated":"yesterday"}`, "updated"},
		{`{"batch":"b1","kind":"song","song_id":7,"name":"x","updated":"2026-11-20T10:00:00Z"}`, "no name"},
		{`{"batch":"b1","kind":"artist","artist_id":7,"title":"x","updated":"2026-11-20T10:00:00Z"}`, "no title"},
		{`{"batch":"r1","kind":"rollback","song_id":7,"artist_id":3,"rollback":"b1"}`, "one entity"},
		{`{"batch":"r1","kind":"rollback","song_id":7}`, "either rollback"},
		{`{"batch":"r1","kind":"rollback","song_id":7,"rollback":"b1","to":"2026-11-20T10:00:00Z"}`, "either rollback"},
		{`{"batch":"r1","kind":"rollback","song_id":7,"to":"soon"}`, "to \"soon\""},
		{`{"batch":"b1","kind":"song","song_id":7,"rollback":"b0","updated":"2026-11-20T10:00:00Z"}`, "only a rollback"},
		{`{"batch":"b1","kind":"song","song_id":7,"updated":"2026-11-20T10:00:00Z"} {}`, "trailing"},
		{"\xff\xfe", "invalid character"},
	} {
		_, err := Decode([]byte(tc.in))
		switch {
		case tc.err == "" && err != nil:
			t.Errorf("%s: %v", tc.in, err)
		case tc.err != "" && (err == nil || !errors.Is(err, ErrMalformed) || !strings.Contains(err.Error(), tc.err)):
			t.Errorf("%s: error %v, want one with %q", tc.in, err, tc.err)
		}
	}
}

func ptr(s string) *string { return &s }

// TestApply runs feeds of records through the rules, from an empty table,
// and checks each outcome and the entity's current version after it.
func TestApply(t *testing.T) {
	at := time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)
	song := func(batch string, artist int64, title *string, updated string) Record {
		return Record{Batch: batch, Kind: KindSong, SongID: 7, ArtistID: artist, Title: title, Updated: "2026-11-20T" + updated + "Z"}
	}
	type step struct {
		r       Record
		outcome Outcome
		reason  string
		// title, artist and batch of the current version afterwards;
		// title "" means no current version.
		title  string
		artist int64
		batch  string
	}
	for _, tc := range []struct {
		name  string
		steps []step
	}{
		{"new song, cleaned", []step{
			{song("b1", 3, ptr("  He\u0301llo \t World "), "10:00:00"), Accepted, "", "Héllo World", 3, "b1"},
		}},
		{"duplicates: same, other case, other form, fields left out", []step{
			{song("b1", 3, ptr("Hello"), "10:00:00"), Accepted, "", "Hello", 3, "b1"},
			{song("b1", 3, ptr("Hello"), "10:00:00"), Duplicate, "", "Hello", 3, "b1"},
			{song("b2", 3, ptr("HELLO "), "11:00:00"), Duplicate, "", "Hello", 3, "b1"},
			{song("b2", 0, nil, "11:00:00"), Duplicate, "", "Hello", 3, "b1"},
			{song("b2", 0, ptr("   "), "09:00:00"), Duplicate, "", "Hello", 3, "b1"},
		}},
		{"missing fields of a new song", []step{
			{song("b1", 3, nil, "10:00:00"), Rejected, "needs a title", "", 0, ""},
			{song("b1", 0, ptr("Hello"), "10:00:00"), Rejected, "needs a title and an artist_id", "", 0, ""},
			{song("b1", 3, ptr(" \x01\x02 "), "10:00:00"), Rejected, "needs a title", "", 0, ""},
		}},
		{"rename, partial update, out of order", []step{
			{song("b1", 3, ptr("Hello"), "10:00:00"), Accepted, "", "Hello", 3, "b1"},
			{song("b2", 0, ptr("Hello (Remastered)"), "12:00:00"), Accepted, "", "Hello (Remastered)", 3, "b2"},
			{song("b3", 3, ptr("Hello (Live)"), "11:00:00"), Rejected, "out of order", "Hello (Remastered)", 3, "b2"},
		}},
		{"conflicting artist", []step{
			{song("b1", 3, ptr("Hello"), "10:00:00"), Accepted, "", "Hello", 3, "b1"},
			{song("b2", 5, ptr("Hello"), "11:00:00"), Rejected, "conflicting artist_id 5: song 7 is by artist 3 (version 1, batch b1)", "Hello", 3, "b1"},
			{song("b2", 5, ptr("Goodbye"), "11:00:00"), Rejected, "conflicting artist_id 5", "Hello", 3, "b1"},
		}},
		{"rollback of a bad batch, twice; then a new version", []step{
			{song("b1", 3, ptr("Hello"), "10:00:00"), Accepted, "", "Hello", 3, "b1"},
			{song("bad", 3, ptr("undefined"), "11:00:00"), Accepted, "", "undefined", 3, "bad"},
			{Record{Batch: "r1", Kind: KindRollback, SongID: 7, Rollback: "bad"}, Accepted, "", "Hello", 3, "b1"},
			{Record{Batch: "r2", Kind: KindRollback, SongID: 7, Rollback: "bad"}, Duplicate, "", "Hello", 3, "b1"},
			{song("b3", 3, ptr("Hello!"), "12:00:00"), Accepted, "", "Hello!", 3, "b3"},
		}},
		{"rollback of everything", []step{
			{song("b1", 3, ptr("Hello"), "10:00:00"), Accepted, "", "Hello", 3, "b1"},
			{Record{Batch: "r1", Kind: KindRollback, SongID: 7, Rollback: "b1"}, Accepted, "", "", 0, ""},
			{song("b2", 5, ptr("Hello"), "09:00:00"), Accepted, "", "Hello", 5, "b2"},
		}},
		{"rollback to a time", []step{
			{song("b1", 3, ptr("Hello"), "10:00:00"), Accepted, "", "Hello", 3, "b1"},
			{song("b2", 3, ptr("Hallo"), "11:00:00"), Accepted, "", "Hallo", 3, "b2"},
			{Record{Batch: "r1", Kind: KindRollback, SongID: 7, To: "2026-11-23T12:30:00Z"}, Accepted, "", "Hello", 3, "b1"},
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var e *Entity
			for i, s := range tc.steps {
				// The second version of "rollback to a time" is accepted
				// an hour after the first.
				out, o, reason := Apply(e, s.r, at.Add(time.Duration(i)*time.Hour))
				if o != s.outcome || !strings.Contains(reason, s.reason) || (s.reason == "") != (reason == "") {
					t.Fatalf("step %d: outcome %d %q, want %d %q", i, o, reason, s.outcome, s.reason)
				}
				if o != Accepted && out != e {
					t.Fatalf("step %d: a record not accepted changed the entity", i)
				}
				e = out
				cur, ok := e.Current()
				if ok != (s.title != "") || cur.Title != s.title || cur.ArtistID != s.artist || cur.Batch != s.batch {
					t.Fatalf("step %d: current %+v (%t), want %q by %d from %s", i, cur, ok, s.title, s.artist, s.batch)
				}
			}
		})
	}
}

func TestApplyArtist(t *testing.T) {
	at := time.Now()
	r := Record{Batch: "b1", Kind: KindArtist, ArtistID: 3, Name: ptr("Sigur  Ro\u0301s"), Updated: "2026-11-20T10:00:00Z"}
	e, o, _ := Apply(nil, r, at)
	if cur, _ := e.Current(); o != Accepted || cur.Name != "Sigur Rós" || e.Key != "artist:3" || cur.N != 1 {
		t.Fatalf("new artist: %d %+v", o, e)
	}
	if _, o, reason := Apply(nil, Record{Batch: "b1", Kind: KindArtist, ArtistID: 4, Updated: r.Updated}, at); o != Rejected || reason != "a new artist needs a name" {
		t.Fatalf("artist without a name: %d %q", o, reason)
	}
	r.Name, r.Updated = ptr("Sigur Rós!"), "2026-11-21T10:00:00Z"
	e2, o, _ := Apply(e, r, at)
	if cur, _ := e2.Current(); o != Accepted || cur.N != 2 || len(e.Versions) != 1 {
		t.Fatalf("rename: %d %+v; the old entity must stay as it was: %+v", o, e2, e)
	}
}
