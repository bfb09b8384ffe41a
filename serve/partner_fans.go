package serve

import (
	"cmp"
	"fmt"
	"net/http"
	"slices"
	"strconv"

	"github.com/uber/h3-go/v4"

	"github.com/kappa-stream/kappa/privacy"
	"github.com/kappa-stream/kappa/processors/dp"
	"github.com/kappa-stream/kappa/processors/rollups"
	"github.com/kappa-stream/kappa/state"
)

// Partner fan cells: limits.
const (
	// maxChildLevels is how many resolutions below within= a fan-cells
	// request may ask for (7³ = 343 cells).
	maxChildLevels = 3
	// DefaultPartnerSelectDelta is the δ of the partition selection of
	// the top fan cells.
	DefaultPartnerSelectDelta = 1e-6
	defaultTopCells           = 10
	maxTopCells               = 1000
)

type partnerCell struct {
	Cell  string           `json:"cell"`
	Value int64            `json:"value"`
	CI    privacy.Interval `json:"ci"`
}

type partnerCellsResponse struct {
	ArtistID int64         `json:"artist_id"`
	Res      int           `json:"res"`
	Within   string        `json:"within,omitempty"`
	Day      string        `json:"day"`
	Cells    []partnerCell `json:"cells"`
	Epsilon  float64       `json:"epsilon"`
	Delta    float64       `json:"delta"`
	Mech     string        `json:"mechanism"`
	Bounds   partnerBounds `json:"bounds"`
	Charged  bool          `json:"charged"`
	// EpsilonCharged is what this request was charged (with the top
	// cells: the noise's ε and the selection's).
	EpsilonCharged float64 `json:"epsilon_charged"`
}

// fanCells serves GET /partner/v1/artists/{id}/fan-cells (top: false)
// and …/top-fan-cells (top: true).
func (p *partnerAPI) fanCells(top bool) partnerHandler {
	return func(w http.ResponseWriter, r *http.Request, key privacy.Partner) {
		id, err := parseID(r.PathValue("id"), "artist_id")
		if err != nil {
			writeError(w, http.StatusBadRequest, err.Error())
			return
		}
		params := r.URL.Query()
		day, err := parseDay(params, "day")
		if err != nil {
			writeError(w, http.StatusBadRequest, err.Error())
			return
		}
		res, err := strconv.Atoi(params.Get("res"))
		if err != nil {
			writeError(w, http.StatusBadRequest, "res must be an H3 resolution")
			return
		}
		var within h3.Cell
		limit := defaultTopCells
		if top {
			if l := params.Get("limit"); l != "" {
				if limit, err = strconv.Atoi(l); err != nil || limit < 1 || limit > maxTopCells {
					writeError(w, http.StatusBadRequest, fmt.Sprintf("limit must be 1 … %d", maxTopCells))
					return
				}
			}
		} else {
			within = h3.Cell(h3.IndexFromString(params.Get("within")))
			if !within.IsValid() {
				writeError(w, http.StatusBadRequest, "within must be a valid H3 cell, not "+strconv.Quote(params.Get("within")))
				return
			}
			if wr := within.Resolution(); res <= wr || res > wr+maxChildLevels {
				writeError(w, http.StatusBadRequest, fmt.Sprintf("res must be %d … %d, below within's resolution %d by at most %d",
					wr+1, wr+maxChildLevels, wr, maxChildLevels))
				return
			}
		}
		if r.Header.Get(forwardedHeader) == "" && params.Has("version") {
			params.Del("version")
			r.URL.RawQuery = params.Encode()
		}
		p.s.versioned(func(w http.ResponseWriter, r *http.Request, v version) {
			cfg := dp.ConfigOf(v.Processors[dp.Spec.Name])
			if cfg == nil {
				writeError(w, http.StatusNotFound, "the partner API is off: the serving version keeps no bounded tables (--dp)")
				return
			}
			if !slices.Contains(cfg.Resolutions, res) {
				writeError(w, http.StatusBadRequest, fmt.Sprintf("res must be one of %v", cfg.Resolutions))
				return
			}
			what := "artist_id " + strconv.FormatInt(id, 10)
			p.s.routed(w, r, v, rollups.PartitionKey(nil, rollups.Artist, id), what, func(store *state.Store) {
				p.answerCells(w, r, key, store, *cfg, id, day, res, within, top, limit)
			})
		})(w, r)
	}
}

func (p *partnerAPI) answerCells(w http.ResponseWriter, r *http.Request, key privacy.Partner, store *state.Store, cfg dp.Config,
	id int64, day int32, res int, within h3.Cell, top bool, limit int) {
	if !p.closed(w, store, cfg, day) {
		return
	}
	l0, linf := cfg.Bounds(dp.ArtistFans)
	params := privacy.Params{Mechanism: privacy.Count, L0: l0, LInf: linf, Epsilon: p.cfg.Epsilon}
	rid := fmt.Sprintf("%s/%d/%s/%d/top", dp.ArtistFans, id, dayString(day), res)
	var children []h3.Cell
	if top {
		params.Mechanism, params.SelectEpsilon, params.SelectDelta = privacy.SelectCount, p.cfg.Epsilon, DefaultPartnerSelectDelta
	} else {
		rid = fmt.Sprintf("%s/%d/%s/%s/%d", dp.ArtistFans, id, dayString(day), within, res)
		children = within.Children(res)
	}
	req := privacy.Request{Key: key, Endpoint: r.Pattern, Query: canonicalQuery(r.URL.Query()),
		Needs: []privacy.Need{{ID: rid, Params: params, Day: day}}}
	req.Exact = func([]string) (map[string]map[string]int64, error) {
		var counts map[h3.Cell]int64
		var err error
		if top {
			counts, err = dp.FanCellsAt(store, id, day, res)
		} else {
			counts, err = dp.FanCells(store, id, day, children)
		}
		if err != nil {
			return nil, err
		}
		vals := make(map[string]int64, len(counts))
		for c, n := range counts {
			vals[c.String()] = n
		}
		return map[string]map[string]int64{rid: vals}, nil
	}
	ans, ok := p.release(w, r, req)
	if !ok {
		return
	}
	rel := ans.Releases[rid]
	out := partnerCellsResponse{ArtistID: id, Res: res, Day: dayString(day), Cells: []partnerCell{},
		Epsilon: rel.Params.Cost(), Delta: rel.Params.Delta + rel.Params.SelectDelta, Mech: string(rel.Params.Mechanism),
		Bounds:  partnerBounds{MaxItems: rel.Params.L0, L0: rel.Params.L0, LInf: rel.Params.LInf},
		Charged: ans.Charged, EpsilonCharged: ans.Epsilon}
	if !top {
		out.Within = within.String()
	}
	for part, v := range rel.Values {
		ci, err := privacy.SumInterval([]privacy.Release{rel}, part, p.cfg.Alpha)
		if err != nil {
			p.s.cfg.Logger.Error("a partner interval failed", "err", err)
			writeError(w, http.StatusInternalServerError, "query failed")
			return
		}
		out.Cells = append(out.Cells, partnerCell{Cell: part, Value: v, CI: ci})
	}
	if top {
		slices.SortFunc(out.Cells, func(a, b partnerCell) int {
			return cmp.Or(cmp.Compare(b.Value, a.Value), cmp.Compare(a.Cell, b.Cell))
		})
		out.Cells = out.Cells[:min(limit, len(out.Cells))]
	} else {
		slices.SortFunc(out.Cells, func(a, b partnerCell) int { return cmp.Compare(a.Cell, b.Cell) })
	}
	writeJSON(w, http.StatusOK, out)
}
