package serve

import (
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/kappa-stream/kappa/processors/live"
	"github.com/kappa-stream/kappa/processors/rollups"
	"github.com/kappa-stream/kappa/state"
)

const (
	defaultLast = 10
	timeLayout  = "2006-01-02T15:04:05.000Z"
)

type liveResponse struct {
	SongID int64 `json:"song_id"`
	// Title and ArtistName are the catalog's, when it knows the song.
	Title      string `json:"title,omitempty"`
	ArtistName string `json:"artist_name,omitempty"`
	Window     string `json:"window"`
	// Watermark is null until every partition of listens has had a
	// listen (its stream time).
	Watermark *string      `json:"watermark"`
	Windows   []liveWindow `json:"windows"`
}

type liveWindow struct {
	Start     string `json:"start"`
	End       string `json:"end"`
	Plays     uint64 `json:"plays"`
	Listeners uint64 `json:"listeners"`
}

// live serves GET /v1/songs/{id}/live?window=&last=: the song's last
// windows, newest first, from the one holding the largest event time its
// partition has seen.
func (s *Server) live(w http.ResponseWriter, r *http.Request, v version) {
	if v.live() == nil {
		writeError(w, http.StatusNotFound, "live windows are off in version "+v.name+" (--live-windows off)")
		return
	}
	song, size, last, err := parseLiveQuery(r, v.live())
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	key := rollups.PartitionKey(nil, rollups.Song, song)
	s.routed(w, r, v, key, "song_id "+strconv.FormatInt(song, 10), func(store *state.Store) {
		a, err := live.Query(store, *v.live(), song, size, last)
		if err != nil {
			s.cfg.Logger.Error("live query failed", "path", r.URL.Path, "err", err)
			writeError(w, http.StatusInternalServerError, "query failed")
			return
		}
		out := liveResponse{SongID: song, Window: live.FormatWindow(size), Windows: make([]liveWindow, 0, len(a.Windows))}
		out.Title, out.ArtistName = s.songNames(song)
		if a.HasWatermark {
			wm := a.Watermark.Format(timeLayout)
			out.Watermark = &wm
		}
		for _, win := range a.Windows {
			out.Windows = append(out.Windows, liveWindow{
				Start: win.Start.Format(timeLayout), End: win.End.Format(timeLayout),
				Plays: win.Plays, Listeners: win.Listeners,
			})
		}
		writeJSON(w, http.StatusOK, out)
	})
}

func parseLiveQuery(r *http.Request, c *live.Config) (song int64, size time.Duration, last int, err error) {
	if song, err = parseID(r.PathValue("id"), "song_id"); err != nil {
		return 0, 0, 0, err
	}
	params := r.URL.Query()
	kept := c.WindowSizes()
	size = kept[0]
	if v := params.Get("window"); v != "" {
		if size, err = live.ParseWindow(v); err != nil {
			return 0, 0, 0, badRequest(err.Error())
		}
		if !slices.Contains(kept, size) {
			names := make([]string, len(kept))
			for i, d := range kept {
				names[i] = live.FormatWindow(d)
			}
			return 0, 0, 0, badRequest("window " + v + " is not kept; kept: " + strings.Join(names, ", ") + " (--live-windows)")
		}
	}
	last = defaultLast
	if v := params.Get("last"); v != "" {
		most := c.MaxLast(size)
		if last, err = strconv.Atoi(v); err != nil || last < 1 || last > most {
			return 0, 0, 0, badRequest("last must be an integer in 1.." + strconv.Itoa(most) + ": the " +
				live.FormatWindow(size) + " windows the retention keeps (--live-retention divided by the window) and the newest")
		}
	}
	return song, size, last, nil
}
