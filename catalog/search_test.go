package catalog

import (
	"fmt"
	"slices"
	"testing"
)

func TestFold(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"Beyoncé", "beyonce"},
		{"BEYONCE", "beyonce"},
		{"  Sigur   Rós ", "sigur ros"},
		{"Motörhead", "motorhead"},
		{"Ｍｏｔｏ", "ｍｏｔｏ"},
		{"Straße", "strasse"},
		{"", ""},
		{"\u0301", ""},
	} {
		if got := Fold(tc.in); got != tc.want {
			t.Errorf("Fold(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestIndexSearch(t *testing.T) {
	x := NewIndex([]Entry{
		{Kind: HitArtist, ID: 1, Name: "Beyoncé"},
		{Kind: HitSong, ID: 10, Name: "Beyond the Sea", ArtistID: 2},
		{Kind: HitArtist, ID: 2, Name: "Bobby Darin"},
		{Kind: HitSong, ID: 11, Name: "Halo", ArtistID: 1},
		{Kind: HitSong, ID: 12, Name: "Crazy in Love", ArtistID: 1},
		{Kind: HitArtist, ID: 3, Name: "Love"},
		{Kind: HitSong, ID: 13, Name: "", ArtistID: 3},
		{Kind: HitArtist, ID: 4, Name: "Sigur Rós"},
		{Kind: HitSong, ID: 14, Name: "Love Love Love", ArtistID: 4},
	})
	ids := func(hs []Hit) []string {
		var out []string
		for _, h := range hs {
			out = append(out, fmt.Sprintf("%s:%d", h.Kind, h.ID))
		}
		return out
	}
	for _, tc := range []struct {
		q     string
		limit int
		want  []string
	}{
		{"beyon", 10, []string{"artist:1", "song:10"}},
		{"BEYONCE", 10, []string{"artist:1"}},
		{"beyoncé", 10, []string{"artist:1"}},
		// exact first, then artists, then name starts, then shorter names
		{"love", 10, []string{"artist:3", "song:14", "song:12"}},
		{"lo", 1, []string{"artist:3", "song:14"}},
		{"ros", 10, []string{"artist:4"}},
		{"rós", 10, []string{"artist:4"}},
		{"sigur r", 10, []string{"artist:4"}},
		{"  sigur   ros ", 10, []string{"artist:4"}},
		{"the sea", 10, []string{"song:10"}},
		{"he sea", 10, nil},
		{"x", 10, nil},
		{"", 10, nil},
		{"   ", 10, nil},
		{"love", 0, nil},
		{"zzzzzzzzzzzzzzzzzzzzzzz", 10, nil},
	} {
		if got := ids(x.Search(tc.q, tc.limit)); !slices.Equal(got, tc.want) {
			t.Errorf("Search(%q, %d) = %v, want %v", tc.q, tc.limit, got, tc.want)
		}
	}
}

func TestParseKey(t *testing.T) {
	for _, tc := range []struct {
		key  string
		kind string
		id   int64
		ok   bool
	}{
		{SongKey(7), HitSong, 7, true},
		{ArtistKey(3), HitArtist, 3, true},
		{"song:0", "", 0, false},
		{"song:-1", "", 0, false},
		{"user:1", "", 0, false},
		{"song", "", 0, false},
		{"artist:x", "", 0, false},
	} {
		kind, id, ok := parseKey(tc.key)
		if ok != tc.ok || (ok && (kind != tc.kind || id != tc.id)) {
			t.Errorf("parseKey(%q) = %q, %d, %v; want %q, %d, %v", tc.key, kind, id, ok, tc.kind, tc.id, tc.ok)
		}
	}
}
