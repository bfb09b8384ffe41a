package serve

import (
	"net/http"
	"strconv"
	"time"

	"github.com/kappa-stream/kappa/events"
	"github.com/kappa-stream/kappa/processors/rollups"
	"github.com/kappa-stream/kappa/state"
)

const (
	dayLayout = "2006-01-02"
	msPerDay  = 86_400_000
)

type playsResponse struct {
	SongID   *int64 `json:"song_id,omitempty"`
	ArtistID *int64 `json:"artist_id,omitempty"`
	// Title and ArtistName are the catalog's, when it knows the id.
	Title      string `json:"title,omitempty"`
	ArtistName string `json:"artist_name,omitempty"`
	From       string `json:"from"`
	To         string `json:"to"`
	Country    string `json:"country,omitempty"`
	Plays      int64  `json:"plays"`
	Streams    int64  `json:"streams"`
	Rows       []any  `json:"rows"`
}

type dayRow struct {
	Day     string `json:"day"`
	Plays   int64  `json:"plays"`
	Streams int64  `json:"streams"`
}

type countryRow struct {
	// Country is null for listens that carried no country.
	Country *string `json:"country"`
	Plays   int64   `json:"plays"`
	Streams int64   `json:"streams"`
}

func (s *Server) plays(e rollups.Entity, idField string) read {
	return func(w http.ResponseWriter, r *http.Request, v version) {
		q, err := parsePlaysQuery(r, e, idField)
		if err != nil {
			writeError(w, http.StatusBadRequest, err.Error())
			return
		}
		key := rollups.PartitionKey(nil, e, q.ID)
		what := idField + " " + strconv.FormatInt(q.ID, 10)
		s.routed(w, r, v, key, what, func(store *state.Store) {
			res, err := rollups.NewReader(store).Query(q)
			if err != nil {
				s.cfg.Logger.Error("plays query failed", "path", r.URL.Path, "err", err)
				writeError(w, http.StatusInternalServerError, "query failed")
				return
			}
			out := newPlaysResponse(q, res)
			if q.Entity == rollups.Song {
				out.Title, out.ArtistName = s.songNames(q.ID)
			} else {
				out.ArtistName = s.artistName(q.ID)
			}
			writeJSON(w, http.StatusOK, out)
		})
	}
}

// newPlaysResponse shapes the answer to q.
func newPlaysResponse(q rollups.Query, res rollups.Result) playsResponse {
	out := playsResponse{
		From:    dayString(q.From),
		To:      dayString(q.To),
		Country: q.Country.String(),
		Plays:   res.Plays,
		Streams: res.Streams,
		Rows:    make([]any, 0, len(res.Rows)),
	}
	if q.Entity == rollups.Song {
		out.SongID = &q.ID
	} else {
		out.ArtistID = &q.ID
	}
	for _, row := range res.Rows {
		if q.By == rollups.ByDay {
			out.Rows = append(out.Rows, dayRow{Day: dayString(row.Day), Plays: row.Plays, Streams: row.Streams})
			continue
		}
		cr := countryRow{Plays: row.Plays, Streams: row.Streams}
		if !row.Country.IsZero() {
			c := row.Country.String()
			cr.Country = &c
		}
		out.Rows = append(out.Rows, cr)
	}
	return out
}

func parsePlaysQuery(r *http.Request, e rollups.Entity, idField string) (rollups.Query, error) {
	q := rollups.Query{Entity: e}
	id, err := parseID(r.PathValue("id"), idField)
	if err != nil {
		return q, err
	}
	q.ID = id
	params := r.URL.Query()
	if q.From, err = parseDay(params, "from"); err != nil {
		return q, err
	}
	if q.To, err = parseDay(params, "to"); err != nil {
		return q, err
	}
	if q.From > q.To {
		return q, badRequest("from must not be after to")
	}
	switch by := params.Get("by"); by {
	case "", "day":
		q.By = rollups.ByDay
	case "country":
		q.By = rollups.ByCountry
	default:
		return q, badRequest("by must be day or country, not " + strconv.Quote(by))
	}
	if c := params.Get("country"); c != "" {
		country, ok := events.ParseCountry(c)
		if !ok {
			return q, badRequest("country must be an ISO 3166-1 alpha-2 code, not " + strconv.Quote(c))
		}
		q.Country = country
	}
	return q, nil
}

func parseDay(params map[string][]string, name string) (int32, error) {
	vs := params[name]
	if len(vs) == 0 || vs[0] == "" {
		return 0, badRequest(name + " is required (YYYY-MM-DD)")
	}
	t, err := time.Parse(dayLayout, vs[0])
	if err != nil || t.Year() < 1970 {
		return 0, badRequest(name + " must be a date YYYY-MM-DD from 1970-01-01 on, not " + strconv.Quote(vs[0]))
	}
	return int32(t.UnixMilli() / msPerDay), nil
}

func dayString(day int32) string {
	return time.UnixMilli(int64(day) * msPerDay).UTC().Format(dayLayout)
}

// parseID reads an id path or query value, 1 … 2^63-1.
func parseID(v, field string) (int64, error) {
	id, err := strconv.ParseInt(v, 10, 64)
	if err != nil || id < 1 {
		return 0, badRequest(field + " must be an integer in 1..9223372036854775807")
	}
	return id, nil
}

// songNames is a song's title and artist name from the catalog, empty
// when unknown.
func (s *Server) songNames(id int64) (title, artist string) {
	if s.cfg.Names == nil {
		return "", ""
	}
	if title, artist, ok := s.cfg.Names.Song(id); ok {
		return title, artist
	}
	return "", ""
}

// artistName is an artist's name from the catalog, empty when unknown.
func (s *Server) artistName(id int64) string {
	if s.cfg.Names == nil {
		return ""
	}
	if name, ok := s.cfg.Names.Artist(id); ok {
		return name
	}
	return ""
}
