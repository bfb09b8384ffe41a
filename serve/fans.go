package serve

import (
	"net/http"
	"slices"
	"strconv"

	"github.com/uber/h3-go/v4"

	"github.com/kappa-stream/kappa/processors/fans"
	"github.com/kappa-stream/kappa/processors/rollups"
	"github.com/kappa-stream/kappa/state"
)

const (
	defaultZoneLimit = 100
	maxZoneLimit     = 10_000
)

type zonesResponse struct {
	ArtistID int64      `json:"artist_id"`
	Res      int        `json:"res"`
	MinFans  int64      `json:"min_fans"`
	Zones    []zoneJSON `json:"zones"`
	// Next is the cursor of the following page; absent on the last.
	Next string `json:"next,omitempty"`
}

type zoneJSON struct {
	Cell string `json:"cell"`
	Fans int64  `json:"fans"`
}

type cellFansResponse struct {
	Cell string `json:"cell"`
	Res  int    `json:"res"`
	Fans int64  `json:"fans"`
	// Suppressed is true when the cell has fewer fans than the client's
	// floor (Floors.MinZoneFans); Fans is then 0.
	Suppressed bool `json:"suppressed,omitempty"`
}

// fanZones serves GET /v1/artists/{id}/fan-zones?res=&min_fans=&limit=&cursor=:
// the artist's cells at res with at least min_fans fans, most fans first,
// a page of limit after the cursor (zonepage.go).
func (s *Server) fanZones(w http.ResponseWriter, r *http.Request, v version) {
	if v.fans() == nil {
		fansOff(w, v)
		return
	}
	artist, err := parseID(r.PathValue("id"), "artist_id")
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	params := r.URL.Query()
	res, err := parseRes(params.Get("res"), v.fans())
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	if !s.checkRes(w, r, res) {
		return
	}
	minFans, limit := int64(1), defaultZoneLimit
	if v := params.Get("min_fans"); v != "" {
		if minFans, err = strconv.ParseInt(v, 10, 64); err != nil || minFans < 1 {
			writeError(w, http.StatusBadRequest, "min_fans must be a positive integer")
			return
		}
	}
	if v := params.Get("limit"); v != "" {
		if limit, err = strconv.Atoi(v); err != nil || limit < 1 || limit > maxZoneLimit {
			writeError(w, http.StatusBadRequest, "limit must be an integer in 1.."+strconv.Itoa(maxZoneLimit))
			return
		}
	}
	if f := s.floors(r); f != nil {
		minFans = max(minFans, f.MinZoneFans)
	}
	after, err := parseZoneCursor(params.Get("cursor"))
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	key := rollups.PartitionKey(nil, rollups.Artist, artist)
	s.routed(w, r, v, key, "artist_id "+strconv.FormatInt(artist, 10), func(store *state.Store) {
		zs, err := fans.Zones(store, artist, res, minFans, allZones)
		if err != nil {
			s.cfg.Logger.Error("fan zones query failed", "path", r.URL.Path, "err", err)
			writeError(w, http.StatusInternalServerError, "query failed")
			return
		}
		zs, next := zonePage(zs, after, limit)
		out := zonesResponse{ArtistID: artist, Res: res, MinFans: minFans, Zones: make([]zoneJSON, len(zs)), Next: next}
		for i, z := range zs {
			out.Zones[i] = zoneJSON{Cell: z.Cell.String(), Fans: z.Fans}
		}
		writeJSON(w, http.StatusOK, out)
	})
}

// cellFans serves GET /v1/cells/{cell}/fans?artist_id=: the number of
// fans of the artist whose home cell is cell.
func (s *Server) cellFans(w http.ResponseWriter, r *http.Request, v version) {
	if v.fans() == nil {
		fansOff(w, v)
		return
	}
	name := r.PathValue("cell")
	cell := h3.Cell(h3.IndexFromString(name))
	if len(name) != 15 || !cell.IsValid() {
		writeError(w, http.StatusBadRequest, "cell "+strconv.Quote(name)+" is not an H3 cell (15 hexadecimal digits, e.g. 872a1072bffffff)")
		return
	}
	if _, err := parseRes(strconv.Itoa(cell.Resolution()), v.fans()); err != nil {
		writeError(w, http.StatusBadRequest, "cell "+name+": "+err.Error())
		return
	}
	if !s.checkRes(w, r, cell.Resolution()) {
		return
	}
	artist, err := parseID(r.URL.Query().Get("artist_id"), "artist_id")
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	key := rollups.PartitionKey(nil, rollups.Artist, artist)
	s.routed(w, r, v, key, "artist_id "+strconv.FormatInt(artist, 10), func(store *state.Store) {
		n, err := fans.CellFans(store, artist, cell)
		if err != nil {
			s.cfg.Logger.Error("cell fans query failed", "path", r.URL.Path, "err", err)
			writeError(w, http.StatusInternalServerError, "query failed")
			return
		}
		out := cellFansResponse{Cell: cell.String(), Res: cell.Resolution(), Fans: n}
		if f := s.floors(r); f != nil && n < f.MinZoneFans {
			out.Fans, out.Suppressed = 0, true
		}
		writeJSON(w, http.StatusOK, out)
	})
}

// fansOff answers a fan-zone request to a version that does not count them.
func fansOff(w http.ResponseWriter, v version) {
	writeError(w, http.StatusNotFound, "fan zones are off in version "+v.name+" (kappa up, process or replay --fan-zones turns them on)")
}

// parseRes reads a resolution that the fan zones of c are counted at.
func parseRes(v string, c *fans.Config) (int, error) {
	kept := c.ResolutionsKept()
	res, err := strconv.Atoi(v)
	if err != nil || !slices.Contains(kept, res) {
		return 0, badRequest("res must be one of the resolutions fan zones are counted at: " + intsString(kept) + " (--h3-resolutions)")
	}
	return res, nil
}

func intsString(vs []int) string {
	var b []byte
	for i, v := range vs {
		if i > 0 {
			b = append(b, ',')
		}
		b = strconv.AppendInt(b, int64(v), 10)
	}
	return string(b)
}
