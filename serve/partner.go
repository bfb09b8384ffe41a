package serve

import (
	"errors"
	"fmt"
	"math"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/kappa-stream/kappa/events"
	"github.com/kappa-stream/kappa/privacy"
	"github.com/kappa-stream/kappa/processors/dp"
	"github.com/kappa-stream/kappa/processors/rollups"
	"github.com/kappa-stream/kappa/state"
)

// Defaults of Partner.
const (
	DefaultPartnerEpsilon = 0.5
	DefaultPartnerAlpha   = 0.05
	// maxPartnerDays caps the days of one partner request.
	maxPartnerDays = 366
)

// Partner wires the partner API, /partner/v1: differentially private
// aggregates of closed days, drawn once and charged to the calling key's
// privacy budget (package privacy). It needs the dp processor (--dp) in
// the version it reads.
type Partner struct {
	// Auth identifies the partner key of a request (required).
	Auth PartnerAuth
	// Releases draws and keeps the releases and the budgets (required).
	Releases *privacy.Service
	// Epsilon is the ε of each release drawn (default
	// DefaultPartnerEpsilon); a request that draws new releases charges
	// its key this ε once.
	Epsilon float64
	// Alpha is the confidence intervals' 1 − level (default
	// DefaultPartnerAlpha: 95% intervals).
	Alpha float64
}

// PartnerAuth is what the partner API needs from the API keys: the
// partner key a request carries (Authorization: Bearer) with its budget.
// Its methods are called concurrently.
type PartnerAuth interface {
	// Partner returns r's partner key. An error wrapping ErrNoKey is
	// answered 401 (no key, or not a valid one); one wrapping
	// ErrNotPartner 403 (a valid key of another role).
	Partner(r *http.Request) (privacy.Partner, error)
}

// Errors of PartnerAuth.
var (
	ErrNoKey      = errors.New("serve: a valid API key is required (Authorization: Bearer <key>)")
	ErrNotPartner = errors.New("serve: the partner API takes partner keys only")
)

type partnerAPI struct {
	cfg       Partner
	s         *Server
	countries []events.Country // every assigned code, the zero Country (none) first
}

// partnerRoutes registers /partner/v1.
func (s *Server) partnerRoutes(cfg Partner) error {
	switch {
	case cfg.Auth == nil:
		return errors.New("serve: the partner API needs its auth")
	case cfg.Releases == nil:
		return errors.New("serve: the partner API needs its releases")
	}
	if cfg.Epsilon == 0 {
		cfg.Epsilon = DefaultPartnerEpsilon
	}
	if cfg.Alpha == 0 {
		cfg.Alpha = DefaultPartnerAlpha
	}
	if !(cfg.Epsilon > 0) || math.IsInf(cfg.Epsilon, 0) || !(cfg.Alpha > 0 && cfg.Alpha < 1) {
		return fmt.Errorf("serve: partner ε %g and α %g: want ε > 0 and 0 < α < 1", cfg.Epsilon, cfg.Alpha)
	}
	p := &partnerAPI{cfg: cfg, s: s, countries: []events.Country{{}}}
	for a := byte('A'); a <= 'Z'; a++ {
		for b := byte('A'); b <= 'Z'; b++ {
			if c, ok := events.ParseCountry(string([]byte{a, b})); ok {
				p.countries = append(p.countries, c)
			}
		}
	}
	s.mux.HandleFunc("GET /partner/v1/songs/{id}/listeners", p.authed(p.counts(dp.SongListeners, "song_id")))
	s.mux.HandleFunc("GET /partner/v1/artists/{id}/listeners", p.authed(p.counts(dp.ArtistListeners, "artist_id")))
	s.mux.HandleFunc("GET /partner/v1/songs/{id}/plays", p.authed(p.counts(dp.SongPlays, "song_id")))
	s.mux.HandleFunc("GET /partner/v1/artists/{id}/fan-cells", p.authed(p.fanCells(false)))
	s.mux.HandleFunc("GET /partner/v1/artists/{id}/top-fan-cells", p.authed(p.fanCells(true)))
	s.mux.HandleFunc("GET /partner/v1/budget", p.authed(p.budget))
	return nil
}

type partnerHandler func(w http.ResponseWriter, r *http.Request, key privacy.Partner)

// authed answers 401/403 for a request without a partner key.
func (p *partnerAPI) authed(h partnerHandler) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		key, err := p.cfg.Auth.Partner(r)
		switch {
		case errors.Is(err, ErrNotPartner):
			writeError(w, http.StatusForbidden, ErrNotPartner.Error())
			return
		case err != nil:
			w.Header().Set("WWW-Authenticate", "Bearer")
			writeError(w, http.StatusUnauthorized, ErrNoKey.Error())
			return
		}
		h(w, r, key)
	}
}

type budgetResponse struct {
	Key           string  `json:"key"`
	EpsilonBudget float64 `json:"epsilon_budget"`
	EpsilonSpent  float64 `json:"epsilon_spent"`
	// Window is "30d", "12h" …; null for a budget for good.
	Window   *string    `json:"window"`
	ResetsAt *time.Time `json:"resets_at"`
}

func (p *partnerAPI) budget(w http.ResponseWriter, r *http.Request, key privacy.Partner) {
	b, err := p.cfg.Releases.Budget(r.Context(), key)
	if err != nil {
		p.s.cfg.Logger.Error("reading a partner budget failed", "err", err)
		unavailable(w, "the budgets cannot be read right now; retry")
		return
	}
	out := budgetResponse{Key: b.Key, EpsilonBudget: b.EpsilonBudget, EpsilonSpent: round(b.EpsilonSpent)}
	if b.Window > 0 {
		win := formatWindow(b.Window)
		out.Window = &win
	}
	if !b.ResetsAt.IsZero() {
		at := b.ResetsAt.UTC()
		out.ResetsAt = &at
	}
	writeJSON(w, http.StatusOK, out)
}

// formatWindow writes a budget window in days when it is whole days.
func formatWindow(d time.Duration) string {
	if d%(24*time.Hour) == 0 {
		return strconv.FormatInt(int64(d/(24*time.Hour)), 10) + "d"
	}
	return d.String()
}

// round drops the float noise of sums of ε (0.1+0.2).
func round(x float64) float64 { return math.Round(x*1e9) / 1e9 }

type partnerDayRow struct {
	Day   string           `json:"day"`
	Value int64            `json:"value"`
	CI    privacy.Interval `json:"ci"`
}

type partnerCountryRow struct {
	// Country is null for the listens without a country.
	Country *string          `json:"country"`
	Value   int64            `json:"value"`
	CI      privacy.Interval `json:"ci"`
}

type partnerBounds struct {
	// MaxItems is K, MaxPlays C: a user counts in at most K songs
	// (artists) per day, with at most C plays each.
	MaxItems int64 `json:"max_items"`
	MaxPlays int64 `json:"max_plays,omitempty"`
	L0       int64 `json:"l0"`
	LInf     int64 `json:"linf"`
}

type partnerResponse struct {
	SongID   *int64        `json:"song_id,omitempty"`
	ArtistID *int64        `json:"artist_id,omitempty"`
	From     string        `json:"from"`
	To       string        `json:"to"`
	By       string        `json:"by"`
	Rows     []any         `json:"rows"`
	Epsilon  float64       `json:"epsilon"`
	Delta    float64       `json:"delta"`
	Mech     string        `json:"mechanism"`
	Bounds   partnerBounds `json:"bounds"`
	// Charged says whether this request drew new releases and was
	// charged EpsilonCharged (the same request again is free).
	Charged        bool    `json:"charged"`
	EpsilonCharged float64 `json:"epsilon_charged"`
}

// counts serves the listeners and plays endpoints.
func (p *partnerAPI) counts(kind dp.Kind, idField string) partnerHandler {
	return func(w http.ResponseWriter, r *http.Request, key privacy.Partner) {
		id, err := parseID(r.PathValue("id"), idField)
		if err != nil {
			writeError(w, http.StatusBadRequest, err.Error())
			return
		}
		params := r.URL.Query()
		from, err := parseDay(params, "from")
		if err == nil {
			var to int32
			if to, err = parseDay(params, "to"); err == nil {
				err = p.serveCounts(w, r, key, kind, idField, id, from, to)
			}
		}
		if err != nil {
			writeError(w, http.StatusBadRequest, err.Error())
		}
	}
}

// serveCounts answers one listeners or plays request; an error is the
// client's (400).
func (p *partnerAPI) serveCounts(w http.ResponseWriter, r *http.Request, key privacy.Partner, kind dp.Kind, idField string, id int64, from, to int32) error {
	params := r.URL.Query()
	by := params.Get("by")
	switch by {
	case "":
		by = "day"
	case "day", "country":
	default:
		return badRequest("by must be day or country, not " + strconv.Quote(by))
	}
	if from > to {
		return badRequest("from must not be after to")
	}
	if to-from >= maxPartnerDays {
		return badRequest(fmt.Sprintf("at most %d days per request", maxPartnerDays))
	}
	// NB: a partner reads the serving version; version= is honoured only
	// on a request another instance forwarded (with its serving version).
	if r.Header.Get(forwardedHeader) == "" && params.Has("version") {
		q := r.URL.Query()
		q.Del("version")
		r.URL.RawQuery = q.Encode()
	}
	p.s.versioned(func(w http.ResponseWriter, r *http.Request, v version) {
		cfg := dp.ConfigOf(v.Processors[dp.Spec.Name])
		if cfg == nil {
			writeError(w, http.StatusNotFound, "the partner API is off: the serving version keeps no bounded tables (--dp)")
			return
		}
		what := idField + " " + strconv.FormatInt(id, 10)
		p.s.routed(w, r, v, rollups.PartitionKey(nil, kind.Entity(), id), what, func(store *state.Store) {
			p.answer(w, r, key, store, *cfg, kind, idField, id, from, to, by)
		})
	})(w, r)
	return nil
}

func (p *partnerAPI) answer(w http.ResponseWriter, r *http.Request, key privacy.Partner, store *state.Store, cfg dp.Config,
	kind dp.Kind, idField string, id int64, from, to int32, by string) {
	if !p.closed(w, store, cfg, to) {
		return
	}
	l0, linf := cfg.Bounds(kind)
	params := privacy.Params{Mechanism: privacy.Count, L0: l0, LInf: linf, Epsilon: p.cfg.Epsilon}
	if kind == dp.SongPlays {
		params.Mechanism = privacy.Sum
	}
	req := privacy.Request{Key: key, Endpoint: r.Pattern, Query: canonicalQuery(r.URL.Query())}
	days := map[string]int32{}
	for d := from; d <= to; d++ {
		rid := fmt.Sprintf("%s/%d/%s/%s", kind, id, dayString(d), by)
		req.Needs = append(req.Needs, privacy.Need{ID: rid, Params: params, Day: d})
		days[rid] = d
	}
	req.Exact = func(ids []string) (map[string]map[string]int64, error) {
		out := make(map[string]map[string]int64, len(ids))
		for _, rid := range ids {
			counts, err := dp.Counts(store, kind, id, days[rid])
			if err != nil {
				return nil, err
			}
			vals := map[string]int64{}
			if by == "day" {
				var sum int64
				for _, n := range counts {
					sum += n
				}
				vals[""] = sum
			} else {
				for _, c := range p.countries {
					vals[partName(c)] = counts[c]
				}
			}
			out[rid] = vals
		}
		return out, nil
	}
	ans, ok := p.release(w, r, req)
	if !ok {
		return
	}
	rels := make([]privacy.Release, len(req.Needs))
	for i, n := range req.Needs {
		rels[i] = ans.Releases[n.ID]
	}
	out := partnerResponse{From: dayString(from), To: dayString(to), By: by, Rows: []any{},
		Charged: ans.Charged, EpsilonCharged: ans.Epsilon}
	if kind.Entity() == rollups.Song {
		out.SongID = &id
	} else {
		out.ArtistID = &id
	}
	// NB: releases drawn under other bounds (a version with other flags)
	// keep theirs; the answer states the largest ε and bounds among them.
	for _, rel := range rels {
		out.Epsilon = max(out.Epsilon, rel.Params.Epsilon)
		out.Delta = max(out.Delta, rel.Params.Delta)
		out.Bounds.L0, out.Bounds.LInf = max(out.Bounds.L0, rel.Params.L0), max(out.Bounds.LInf, rel.Params.LInf)
		out.Mech = string(rel.Params.Mechanism)
	}
	out.Bounds.MaxItems = out.Bounds.L0
	if kind == dp.SongPlays {
		out.Bounds.MaxPlays = out.Bounds.LInf
	}
	if by == "day" {
		for i, rel := range rels {
			ci, err := privacy.SumInterval(rels[i:i+1], "", p.cfg.Alpha)
			if err != nil {
				p.s.cfg.Logger.Error("a partner interval failed", "err", err)
				writeError(w, http.StatusInternalServerError, "query failed")
				return
			}
			out.Rows = append(out.Rows, partnerDayRow{Day: dayString(days[rel.ID]), Value: rel.Values[""], CI: ci})
		}
	} else {
		for _, c := range p.countries {
			part := partName(c)
			row := partnerCountryRow{}
			if !c.IsZero() {
				s := c.String()
				row.Country = &s
			}
			for _, rel := range rels {
				row.Value += rel.Values[part]
			}
			ci, err := privacy.SumInterval(rels, part, p.cfg.Alpha)
			if err != nil {
				p.s.cfg.Logger.Error("a partner interval failed", "err", err)
				writeError(w, http.StatusInternalServerError, "query failed")
				return
			}
			row.CI = ci
			out.Rows = append(out.Rows, row)
		}
	}
	writeJSON(w, http.StatusOK, out)
}

// closed reports whether day is closed in store; when not (or on a
// failure) it has answered w (422).
func (p *partnerAPI) closed(w http.ResponseWriter, store *state.Store, cfg dp.Config, day int32) bool {
	wm, ok, err := dp.Watermark(store, cfg.Sources)
	if err != nil {
		p.s.cfg.Logger.Error("reading the dp watermark failed", "err", err)
		writeError(w, http.StatusInternalServerError, "query failed")
		return false
	}
	if !ok || !cfg.Closed(wm, day) {
		writeError(w, http.StatusUnprocessableEntity, fmt.Sprintf(
			"%s is not closed yet: only days whose end plus %s has passed in every partition's event time are released", dayString(day), cfg.Grace))
		return false
	}
	return true
}

// release answers req from the releases; when refused or failed it has
// answered w (429 with Retry-After, 403, or 503).
func (p *partnerAPI) release(w http.ResponseWriter, r *http.Request, req privacy.Request) (privacy.Answer, bool) {
	ans, err := p.cfg.Releases.Answer(r.Context(), req)
	var wait *privacy.WaitError
	switch {
	case errors.As(err, &wait):
		w.Header().Set("Retry-After", strconv.Itoa(max(1, int(math.Ceil(time.Until(wait.At).Seconds())))))
		writeError(w, http.StatusTooManyRequests, err.Error())
		return ans, false
	case errors.Is(err, privacy.ErrSpent):
		writeError(w, http.StatusForbidden, err.Error())
		return ans, false
	case err != nil:
		p.s.cfg.Logger.Error("a partner release failed", "path", r.URL.Path, "err", err)
		unavailable(w, "the release could not be drawn or stored; nothing was charged; retry")
		return ans, false
	}
	return ans, true
}

// partName is a country's partition in a by-country release.
func partName(c events.Country) string {
	if c.IsZero() {
		return "none"
	}
	return c.String()
}

// canonicalQuery is a request's query for the audit log, without
// version (sorted by url.Values.Encode).
func canonicalQuery(q url.Values) string {
	q.Del("version")
	return q.Encode()
}
