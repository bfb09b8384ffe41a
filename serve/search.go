package serve

import (
	"errors"
	"net/http"
	"strconv"
	"strings"

	"github.com/kappa-stream/kappa/catalog"
)

// Searcher finds catalog entries by name; its method is called
// concurrently. catalog.View is one.
type Searcher interface {
	// Search returns at most limit artists and at most limit songs
	// whose name or a word of it starts with q, compared case- and accent-insensitively,
	// best first; catalog.ErrNotRecovered while the catalog is loading.
	Search(q string, limit int) ([]catalog.Hit, error)
}

const (
	defaultSearchLimit = 10
	maxSearchLimit     = 100
	maxQueryLen        = 200
)

type searchResponse struct {
	Q       string         `json:"q"`
	Artists []searchArtist `json:"artists"`
	Songs   []searchSong   `json:"songs"`
}

type searchArtist struct {
	ArtistID int64  `json:"artist_id"`
	Name     string `json:"name"`
}

type searchSong struct {
	SongID     int64  `json:"song_id"`
	Title      string `json:"title"`
	ArtistID   int64  `json:"artist_id"`
	ArtistName string `json:"artist_name,omitempty"`
}

// search serves GET /v1/search?q=&limit=: the catalog's artists and
// songs whose name, or a word of it, starts with q (case and accents
// ignored), at most limit of each.
func (s *Server) search(w http.ResponseWriter, r *http.Request) {
	params := r.URL.Query()
	q := params.Get("q")
	if strings.TrimSpace(q) == "" || len(q) > maxQueryLen {
		writeError(w, http.StatusBadRequest, "q must be 1 to "+strconv.Itoa(maxQueryLen)+" bytes and not blank")
		return
	}
	limit := defaultSearchLimit
	if v := params.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > maxSearchLimit {
			writeError(w, http.StatusBadRequest, "limit must be an integer in 1.."+strconv.Itoa(maxSearchLimit))
			return
		}
		limit = n
	}
	hits, err := s.cfg.Search.Search(q, limit)
	switch {
	case errors.Is(err, catalog.ErrNotRecovered):
		unavailable(w, "the catalog is loading; retry")
		return
	case err != nil:
		s.cfg.Logger.Error("search failed", "err", err)
		writeError(w, http.StatusInternalServerError, "search failed")
		return
	}
	out := searchResponse{Q: q, Artists: []searchArtist{}, Songs: []searchSong{}}
	for _, h := range hits {
		switch h.Kind {
		case catalog.HitArtist:
			out.Artists = append(out.Artists, searchArtist{ArtistID: h.ID, Name: h.Name})
		case catalog.HitSong:
			out.Songs = append(out.Songs, searchSong{SongID: h.ID, Title: h.Name, ArtistID: h.ArtistID, ArtistName: s.artistName(h.ArtistID)})
		}
	}
	writeJSON(w, http.StatusOK, out)
}
