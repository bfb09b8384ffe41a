package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"
)

// The model: an independent computation of the rollups from raw JSON
// lines, with encoding/json and the rules of CONTRACT.md — what
//
//	SELECT song_id, date(ts), country, count(*), count(*) FILTER (WHERE ms_played >= 30000)
//	FROM listens WHERE valid GROUP BY 1, 2, 3
//
// returns. It shares no code with kappa's decoder.

type counts struct{ Plays, Streams int64 }

type cell struct {
	Day     string
	Country string // "" when absent
}

type model struct {
	songs   map[int64]map[cell]counts
	artists map[int64]map[cell]counts
	valid   int
	minDay  string
	maxDay  string
}

func newModel() *model {
	return &model{songs: map[int64]map[cell]counts{}, artists: map[int64]map[cell]counts{}}
}

type rawListen struct {
	UserID   int64           `json:"user_id"`
	SongID   int64           `json:"song_id"`
	ArtistID int64           `json:"artist_id"`
	TS       json.RawMessage `json:"ts"`
	MsPlayed int64           `json:"ms_played"`
	Country  *string         `json:"country"`
	Lat      *float64        `json:"lat"`
	Lng      *float64        `json:"lng"`
}

// add counts one line the generator produced as valid.
func (m *model) add(line []byte) error {
	l, t, err := parseRaw(line)
	if err != nil {
		return err
	}
	c := cell{Day: t.UTC().Format("2006-01-02")}
	if l.Country != nil {
		c.Country = strings.ToUpper(*l.Country)
	}
	d := counts{Plays: 1}
	if l.MsPlayed >= 30000 {
		d.Streams = 1
	}
	addCell(m.songs, l.SongID, c, d)
	addCell(m.artists, l.ArtistID, c, d)
	m.valid++
	if m.minDay == "" || c.Day < m.minDay {
		m.minDay = c.Day
	}
	if c.Day > m.maxDay {
		m.maxDay = c.Day
	}
	return nil
}

// parseRaw reads a line the generator produced as valid, and its event
// time.
func parseRaw(line []byte) (l rawListen, t time.Time, err error) {
	dec := json.NewDecoder(bytes.NewReader(line))
	dec.UseNumber()
	if err := dec.Decode(&l); err != nil {
		return l, t, fmt.Errorf("valid line does not parse: %w: %s", err, line)
	}
	if len(l.TS) > 0 && l.TS[0] == '"' {
		var s string
		if err := json.Unmarshal(l.TS, &s); err != nil {
			return l, t, err
		}
		if t, err = time.Parse(time.RFC3339Nano, s); err != nil {
			return l, t, fmt.Errorf("ts %q: %w", s, err)
		}
	} else {
		var ms int64
		if err := json.Unmarshal(l.TS, &ms); err != nil {
			return l, t, fmt.Errorf("ts %s: %w", l.TS, err)
		}
		t = time.UnixMilli(ms)
	}
	return l, t, nil
}

func addCell(m map[int64]map[cell]counts, id int64, c cell, d counts) {
	cells := m[id]
	if cells == nil {
		cells = map[cell]counts{}
		m[id] = cells
	}
	x := cells[c]
	x.Plays += d.Plays
	x.Streams += d.Streams
	cells[c] = x
}

// playsAnswer is the body of GET /v1/{songs|artists}/{id}/plays.
type playsAnswer struct {
	Plays   int64 `json:"plays"`
	Streams int64 `json:"streams"`
	Rows    []struct {
		Day     string  `json:"day"`
		Country *string `json:"country"`
		Plays   int64   `json:"plays"`
		Streams int64   `json:"streams"`
	} `json:"rows"`
}

// expected computes the answer for days [from, to], split by "day" or
// "country", restricted to one country unless it is "".
func expected(cells map[cell]counts, from, to, by, country string) string {
	rows := map[string]counts{}
	var total counts
	for c, n := range cells {
		if c.Day < from || c.Day > to || (country != "" && c.Country != country) {
			continue
		}
		k := c.Day
		if by == "country" {
			k = c.Country
		}
		r := rows[k]
		r.Plays += n.Plays
		r.Streams += n.Streams
		rows[k] = r
		total.Plays += n.Plays
		total.Streams += n.Streams
	}
	return render(total, rows)
}

// got renders an answer the same way as expected, for comparison.
func got(a playsAnswer, by string) string {
	rows := map[string]counts{}
	for _, r := range a.Rows {
		k := r.Day
		if by == "country" {
			k = ""
			if r.Country != nil {
				k = *r.Country
			}
		}
		if _, dup := rows[k]; dup {
			k += " (duplicate row)"
		}
		rows[k] = counts{r.Plays, r.Streams}
	}
	return render(counts{a.Plays, a.Streams}, rows)
}

func render(total counts, rows map[string]counts) string {
	keys := make([]string, 0, len(rows))
	for k := range rows {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	var b strings.Builder
	fmt.Fprintf(&b, "total %d/%d", total.Plays, total.Streams)
	for _, k := range keys {
		fmt.Fprintf(&b, " | %s %d/%d", k, rows[k].Plays, rows[k].Streams)
	}
	return b.String()
}
