package generate

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"strings"
	"time"

	"golang.org/x/text/unicode/norm"
)

// Feed is a messy third-party catalog feed of a Generator's songs and
// artists (kappa's catalog.feed, CONTRACT-style records keyed by entity:
// "song:<id>", "artist:<id>"), and the clean state it should leave.
type Feed struct {
	// Lines are the feed records, JSON, in feed order; Keys their keys.
	Lines [][]byte
	Keys  []string
	// Songs and Artists are the clean state after Lines: each song's
	// title and artist, each artist's name (Unicode NFC, trimmed, single
	// spaces).
	Songs   map[int64]FeedSong
	Artists map[int64]string
	// Mess counts the kinds of mess in Lines.
	Mess map[string]int
	// Bad is a batch of valid records, not in Lines, that renames songs
	// wrongly: a bad batch to roll back. BadBatch is its id.
	Bad      [][]byte
	BadKeys  []string
	BadBatch string
}

// FeedSong is a song's clean metadata.
type FeedSong struct {
	Title    string
	ArtistID int64
}

// feedBatch is the number of records of one feed batch.
const feedBatch = 250

// feedStart is the feed's first updated time.
var feedStart = time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)

// feedRecord is a record as the feed sends it.
type feedRecord struct {
	Batch    string  `json:"batch"`
	Kind     string  `json:"kind"`
	SongID   int64   `json:"song_id,omitempty"`
	ArtistID int64   `json:"artist_id,omitempty"`
	Title    *string `json:"title,omitempty"`
	Name     *string `json:"name,omitempty"`
	Updated  string  `json:"updated"`
}

// CatalogFeed returns the catalog feed of the generator's songs (the live
// drop's too) and artists, with every kind of mess a real feed has:
// first records in decomposed Unicode with stray white space, exact
// duplicates re-sent, case variants, records without a title, songs
// whose first record lacks its title, conflicting artist ids, renames
// followed by older records arriving late, and a whole batch of garbage.
// The same seed gives the same feed.
func (g *Generator) CatalogFeed() *Feed {
	r := rand.New(rand.NewPCG(uint64(g.cfg.Seed), 0x66656564))
	f := &Feed{Songs: map[int64]FeedSong{}, Artists: map[int64]string{}, Mess: map[string]int{}}
	var firsts, tail [][]feedRecord
	clock := feedStart
	tick := func() string {
		clock = clock.Add(time.Second)
		return clock.Format(time.RFC3339)
	}
	messy := func(s string) string {
		f.Mess["decomposed, stray spaces"]++
		return " " + strings.Replace(norm.NFD.String(s), " ", " \t ", 1) + "  "
	}
	for id := int64(1); id <= int64(g.cfg.Artists); id++ {
		name := feedName(r, 2)
		f.Artists[id] = name
		first := name
		if r.Float64() < 0.2 {
			first = messy(name)
		}
		firsts = append(firsts, []feedRecord{{Kind: "artist", ArtistID: id, Name: &first, Updated: tick()}})
	}
	songs := int64(g.cfg.Songs)
	if g.hasDrop {
		songs++
	}
	for id := int64(1); id <= songs; id++ {
		artist := g.drop.ArtistID
		if id <= int64(g.cfg.Songs) {
			artist = g.cat.artistOfSong(id)
		}
		title := feedName(r, 1+r.IntN(3))
		f.Songs[id] = FeedSong{Title: title, ArtistID: artist}
		first := feedRecord{Kind: "song", SongID: id, ArtistID: artist, Title: &title, Updated: tick()}
		switch u := r.Float64(); {
		case u < 0.2:
			t := messy(title)
			first.Title = &t
			firsts = append(firsts, []feedRecord{first})
		case u < 0.25:
			f.Mess["first record without a title"]++
			untitled := first
			untitled.Title = nil
			firsts = append(firsts, []feedRecord{untitled})
			tail = append(tail, []feedRecord{first})
		case u < 0.35:
			f.Mess["exact duplicate"]++
			firsts = append(firsts, []feedRecord{first})
			tail = append(tail, []feedRecord{first})
		case u < 0.40:
			f.Mess["case variant"]++
			firsts = append(firsts, []feedRecord{first})
			upper := strings.ToUpper(title)
			tail = append(tail, []feedRecord{{Kind: "song", SongID: id, ArtistID: artist, Title: &upper}})
		case u < 0.45:
			f.Mess["no title, artist only"]++
			firsts = append(firsts, []feedRecord{first})
			tail = append(tail, []feedRecord{{Kind: "song", SongID: id, ArtistID: artist}})
		case u < 0.48:
			f.Mess["conflicting artist_id"]++
			firsts = append(firsts, []feedRecord{first})
			other := 1 + (artist+int64(r.IntN(g.cfg.Artists-1)))%int64(g.cfg.Artists)
			tail = append(tail, []feedRecord{{Kind: "song", SongID: id, ArtistID: other, Title: &title}})
		case u < 0.55:
			f.Mess["rename, then an older record late"]++
			firsts = append(firsts, []feedRecord{first})
			renamed, demo := title+" (Remastered)", title+" (Demo)"
			f.Songs[id] = FeedSong{Title: renamed, ArtistID: artist}
			// NB: the late record's time is set below, before the rename's.
			tail = append(tail, []feedRecord{
				{Kind: "song", SongID: id, Title: &renamed},
				{Kind: "song", SongID: id, Title: &demo, Updated: "late"},
			})
		default:
			firsts = append(firsts, []feedRecord{first})
		}
	}
	r.Shuffle(len(tail), func(i, j int) { tail[i], tail[j] = tail[j], tail[i] })
	for _, group := range tail {
		for i := range group {
			if group[i].Updated == "" {
				group[i].Updated = tick()
			}
		}
		for i := range group {
			if group[i].Updated == "late" {
				t, _ := time.Parse(time.RFC3339, group[0].Updated)
				group[i].Updated = t.Add(-time.Hour).Format(time.RFC3339)
			}
		}
	}
	n := 0
	batch := func() string { return fmt.Sprintf("feed-%d-%04d", g.cfg.Seed, n/feedBatch+1) }
	for _, group := range append(firsts, tail...) {
		for _, rec := range group {
			rec.Batch = batch()
			f.add(rec)
			n++
		}
	}
	garbage := fmt.Sprintf("feed-%d-garbage", g.cfg.Seed)
	for i := range 100 {
		f.Mess["garbage"]++
		id := 1 + r.Int64N(songs)
		var line string
		switch i % 4 {
		case 0:
			line = fmt.Sprintf(`{"batch":%q,"kind":"song","song_id":%d,"title":"\u0000`, garbage, id)
		case 1:
			line = fmt.Sprintf(`{"batch":%q,"kind":"album","song_id":%d,"updated":%q}`, garbage, id, tick())
		case 2:
			line = fmt.Sprintf(`{"batch":%q,"kind":"song","song_id":"%d","updated":%q}`, garbage, id, tick())
		default:
			line = "<feed><song>broken</song></feed>"
		}
		f.Lines = append(f.Lines, []byte(line))
		f.Keys = append(f.Keys, fmt.Sprintf("song:%d", id))
	}
	f.BadBatch = fmt.Sprintf("feed-%d-bad", g.cfg.Seed)
	for range 50 {
		id := 1 + r.Int64N(songs)
		wrong := "Untitled Track " + fmt.Sprint(r.IntN(100))
		rec := feedRecord{Batch: f.BadBatch, Kind: "song", SongID: id, Title: &wrong, Updated: tick()}
		b, _ := json.Marshal(rec)
		f.Bad = append(f.Bad, b)
		f.BadKeys = append(f.BadKeys, fmt.Sprintf("song:%d", id))
	}
	return f
}

func (f *Feed) add(rec feedRecord) {
	// NB: a struct of strings and integers always marshals.
	b, _ := json.Marshal(rec)
	f.Lines = append(f.Lines, b)
	if rec.Kind == "song" {
		f.Keys = append(f.Keys, fmt.Sprintf("song:%d", rec.SongID))
	} else {
		f.Keys = append(f.Keys, fmt.Sprintf("artist:%d", rec.ArtistID))
	}
}

// feedSyllables make up names and titles; some carry diacritics, so
// that decomposed forms differ from composed ones.
var feedSyllables = []string{"ka", "lo", "mé", "ri", "sø", "an", "to", "vi", "ël", "na", "ru", "zo", "bå", "dè", "fi", "gu", "ñe", "pa", "sa", "te", "ul", "yo", "xi", "wa"}

// feedName is n capitalised words of two or three syllables.
func feedName(r *rand.Rand, n int) string {
	words := make([]string, n)
	for i := range words {
		var w strings.Builder
		for range 2 + r.IntN(2) {
			w.WriteString(feedSyllables[r.IntN(len(feedSyllables))])
		}
		s := []rune(w.String())
		words[i] = strings.ToUpper(string(s[0])) + string(s[1:])
	}
	return strings.Join(words, " ")
}
