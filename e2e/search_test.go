package e2e

import (
	"fmt"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"
	"unicode"

	"golang.org/x/text/unicode/norm"

	"github.com/kappa-stream/kappa/generate"
)

// searchAnswer is the body of GET /v1/search.
type searchAnswer struct {
	Artists []struct {
		ArtistID int64  `json:"artist_id"`
		Name     string `json:"name"`
	} `json:"artists"`
	Songs []struct {
		SongID   int64  `json:"song_id"`
		Title    string `json:"title"`
		ArtistID int64  `json:"artist_id"`
	} `json:"songs"`
}

// plain is s lower-cased without accents (marks of the NFD form), as the
// test compares names: its own rule, not the catalog's code.
func plain(s string) string {
	var b strings.Builder
	for _, r := range norm.NFD.String(s) {
		if !unicode.Is(unicode.Mn, r) {
			b.WriteRune(unicode.ToLower(r))
		}
	}
	return b.String()
}

// matches reports whether name, or a word of it, starts with q (plain).
func matches(name, q string) bool {
	p := plain(name)
	if strings.HasPrefix(p, q) {
		return true
	}
	for i := range len(p) {
		if p[i] == ' ' && strings.HasPrefix(p[i+1:], q) {
			return true
		}
	}
	return false
}

// checkSearch asks /v1/search for accented names' prefixes, upper-cased
// and without accents, and compares the hits with the matches among the
// generator's clean catalog (every match, when fewer than the limit).
func checkSearch(t *testing.T, httpAddr string, cfg generate.Config) {
	t.Helper()
	g, err := generate.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	feed := g.CatalogFeed()
	// Names with an accent followed by a letter: the query is the name
	// up to that letter, upper-cased and without the accent (with it,
	// NFD puts the accent after its letter, and a query that ends at the
	// accented letter matches without removing accents).
	prefix := func(name string) string {
		r := []rune(name)
		for i := range len(r) - 1 {
			if plain(string(r[i])) != strings.ToLower(string(r[i])) && r[i+1] != ' ' {
				return plain(string(r[:i+2]))
			}
		}
		return ""
	}
	var artistNames, titles []string
	for _, name := range feed.Artists {
		if prefix(name) != "" {
			artistNames = append(artistNames, name)
		}
	}
	for _, s := range feed.Songs {
		if prefix(s.Title) != "" {
			titles = append(titles, s.Title)
		}
	}
	slices.Sort(artistNames)
	slices.Sort(titles)
	if len(artistNames) < 2 || len(titles) < 2 {
		t.Fatalf("the catalog has %d artist names and %d titles with accents; the test needs 2 of each", len(artistNames), len(titles))
	}
	c := newClient(httpAddr)
	for _, name := range append(artistNames[:2], titles[:2]...) {
		q := prefix(name)
		var artists, songs []string
		for id, n := range feed.Artists {
			if matches(n, q) {
				artists = append(artists, fmt.Sprint(id))
			}
		}
		for id, s := range feed.Songs {
			if matches(s.Title, q) {
				songs = append(songs, fmt.Sprint(id))
			}
		}
		slices.Sort(artists)
		slices.Sort(songs)
		t.Logf("search %q (for %q): %d artists, %d songs match", strings.ToUpper(q), name, len(artists), len(songs))
		const limit = 100
		query := strings.ToUpper(q)
		// NB: the index is rebuilt every 15 s while the catalog arrives.
		waitFor(t, time.Minute, "the search for "+query, func() (bool, string) {
			var a searchAnswer
			if _, err := c.getJSON("/v1/search?limit=100&q="+url.QueryEscape(query), &a); err != nil {
				return false, err.Error()
			}
			var gotA, gotS []string
			for _, x := range a.Artists {
				gotA = append(gotA, fmt.Sprint(x.ArtistID))
				if feed.Artists[x.ArtistID] != x.Name {
					return false, fmt.Sprintf("artist %d named %q, the catalog %q", x.ArtistID, x.Name, feed.Artists[x.ArtistID])
				}
			}
			for _, x := range a.Songs {
				gotS = append(gotS, fmt.Sprint(x.SongID))
				if s := feed.Songs[x.SongID]; s.Title != x.Title || s.ArtistID != x.ArtistID {
					return false, fmt.Sprintf("song %d: %q by %d, the catalog %+v", x.SongID, x.Title, x.ArtistID, s)
				}
			}
			slices.Sort(gotA)
			slices.Sort(gotS)
			ok := func(got, want []string) bool {
				if len(want) <= limit {
					return slices.Equal(got, want)
				}
				for _, id := range got {
					if _, found := slices.BinarySearch(want, id); !found {
						return false
					}
				}
				return len(got) == limit
			}
			return ok(gotA, artists) && ok(gotS, songs), fmt.Sprintf("q=%s: artists %v want %v; %d songs, want %d", query, gotA, artists, len(gotS), len(songs))
		})
	}
}
