// Package privacy releases differentially private values and keeps the
// privacy budgets of the partner API (serve's /partner/v1).
//
// Releases, not re-draws: a noisy value is drawn once, by the instance
// that owns its key (serve routes a request to it), written durably to
// the releases log (a compacted topic, kappa.dp-releases, keyed by the
// release's id, independent of topology versions) before it is
// answered, and every later request for it gets the stored value at no
// budget: restarts, replays and cutovers never draw again.
//
// Budgets: each partner key has a privacy filter, an ε budget over a
// sliding window (or for good). A request that needs a release not drawn
// yet is charged its ε before anything is computed; when the budget
// cannot pay, it is refused (ErrSpent, or a *WaitError for a windowed
// budget that frees up later) and nothing is drawn; when drawing fails
// the charge is refunded. A request answered from stored releases only is
// free. A global ledger sums, per data day, the ε charged for releases of
// that day, and may cap it (Config.DayEpsilon).
//
// Everything a budget decision reads is on the audit log (an append-only
// topic, kappa.dp-audit): charges, refunds and answers, each with the
// key, endpoint, parameters, releases touched (new or cached) and ε —
// never a count. Budgets and the ledger are rebuilt from it on start, so
// they hold across restarts.
package privacy

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"
)

// Partner is a partner key as the auth layer knows it.
type Partner struct {
	// ID names the key in budgets and the audit log (never the secret).
	ID string
	// EpsilonBudget is the ε the key may spend in Window.
	EpsilonBudget float64
	// Window is the sliding window of the budget; 0: the budget is for
	// the key's lifetime.
	Window time.Duration
}

// ErrSpent refuses a request whose key or data day can never pay for it:
// its budget is spent for good (HTTP 403).
var ErrSpent = errors.New("privacy: budget spent")

// WaitError refuses a request that the key's windowed budget can pay
// once older charges leave the window (HTTP 429 with Retry-After).
type WaitError struct {
	// At is when enough of the budget is free again.
	At time.Time
}

func (e *WaitError) Error() string {
	return "privacy: the key's budget is spent until " + e.At.UTC().Format(time.RFC3339)
}

// Release is one drawn release: the noisy values of one table's cells of
// one id and day.
type Release struct {
	ID     string `json:"id"`
	Params Params `json:"params"`
	// Values are the noisy values by partition: "" for a total, a
	// country code, "none" for the listens without a country, or an H3
	// cell; with SelectCount, the partitions selected only.
	Values  map[string]int64 `json:"values"`
	DrawnAt time.Time        `json:"drawn_at"`
}

// Need is a release a request answers from.
type Need struct {
	ID     string
	Params Params
	// Day is the data day (days since 1970-01-01 UTC) it is drawn from.
	Day int32
}

// Request is one partner request.
type Request struct {
	Key Partner
	// Endpoint and Query describe it in the audit log (the route and its
	// canonical query string).
	Endpoint, Query string
	Needs           []Need
	// Exact reads the exact values of the releases not drawn yet (by
	// id), after the charge. An error refunds it.
	Exact func(ids []string) (map[string]map[string]int64, error)
}

// Answer is what a request gets.
type Answer struct {
	// Releases are the Needs' releases, by id.
	Releases map[string]Release
	// Charged is set when this request drew new releases and paid Epsilon.
	Charged bool
	Epsilon float64
}

// Budget is a key's state, for GET /partner/v1/budget.
type Budget struct {
	Key           string
	EpsilonBudget float64
	EpsilonSpent  float64
	Window        time.Duration
	// ResetsAt is when the oldest charge in the window leaves it (zero:
	// none, or a budget for good).
	ResetsAt time.Time
}

// Config configures a Service.
type Config struct {
	// Log keeps releases and the audit durably (required).
	Log Log
	// DayEpsilon caps the ledger of every data day: the ε all keys
	// together may be charged for releases of one day (0: no cap).
	DayEpsilon float64
	// Now is the clock (default time.Now).
	Now func() time.Time
	// Logger receives failures (default: discard).
	Logger *slog.Logger
}

// Service draws and keeps releases and budgets. It is safe for
// concurrent use; requests are served one at a time.
type Service struct {
	cfg Config

	mu       sync.Mutex
	releases map[string]Release
	charges  map[string][]charge // by key id, oldest first
	ledger   map[int32]float64
	// applied are the audit records applied, by type and id: the ones
	// this instance wrote were applied before the log delivers them.
	applied map[string]bool
}

type charge struct {
	id   string
	eps  float64
	at   time.Time
	days []int32
}

// auditRecord is one record of the audit log.
type auditRecord struct {
	Type     string    `json:"type"` // charge, refund, answer
	ID       string    `json:"id"`   // the charge (a refund names the one it refunds)
	Key      string    `json:"key"`
	Endpoint string    `json:"endpoint,omitempty"`
	Query    string    `json:"query,omitempty"`
	Epsilon  float64   `json:"epsilon"`
	Days     []string  `json:"days,omitempty"`
	New      []string  `json:"new,omitempty"`
	Cached   []string  `json:"cached,omitempty"`
	At       time.Time `json:"at"`
}

const dayLayout = "2006-01-02"

func dayString(d int32) string {
	return time.Unix(int64(d)*86400, 0).UTC().Format(dayLayout)
}

// New returns a service over cfg.Log, with the releases and budgets
// read from it.
func New(ctx context.Context, cfg Config) (*Service, error) {
	if cfg.Log == nil {
		return nil, errors.New("privacy: no log")
	}
	if cfg.DayEpsilon < 0 {
		return nil, errors.New("privacy: negative day ε cap")
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	s := &Service{cfg: cfg, releases: map[string]Release{}, charges: map[string][]charge{}, ledger: map[int32]float64{},
		applied: map[string]bool{}}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.sync(ctx); err != nil {
		return nil, err
	}
	return s, nil
}

// sync applies what the log got since the last sync. REQUIRES: mu held.
func (s *Service) sync(ctx context.Context) error {
	return s.cfg.Log.Sync(ctx, func(e Entry) {
		if err := s.apply(e); err != nil {
			s.cfg.Logger.Warn("privacy: skipping an unreadable record", "stream", e.Stream, "err", err)
		}
	})
}

// apply applies one record of the log. REQUIRES: mu held.
func (s *Service) apply(e Entry) error {
	switch e.Stream {
	case Releases:
		var r Release
		if err := json.Unmarshal(e.Value, &r); err != nil {
			return err
		}
		if r.ID != string(e.Key) {
			return fmt.Errorf("release %q under key %q", r.ID, e.Key)
		}
		// NB: the latest per id wins, as compaction keeps it.
		s.releases[r.ID] = r
	case Audit:
		var a auditRecord
		if err := json.Unmarshal(e.Value, &a); err != nil {
			return err
		}
		if a.Type != "answer" {
			if s.applied[a.Type+"/"+a.ID] {
				return nil
			}
			s.applied[a.Type+"/"+a.ID] = true
		}
		switch a.Type {
		case "charge":
			c := charge{id: a.ID, eps: a.Epsilon, at: a.At}
			for _, d := range a.Days {
				t, err := time.Parse(dayLayout, d)
				if err != nil {
					return err
				}
				c.days = append(c.days, int32(t.Unix()/86400))
			}
			s.charges[a.Key] = append(s.charges[a.Key], c)
			for _, d := range c.days {
				s.ledger[d] += c.eps
			}
		case "refund":
			cs := s.charges[a.Key]
			if i := slices.IndexFunc(cs, func(c charge) bool { return c.id == a.ID }); i >= 0 {
				for _, d := range cs[i].days {
					s.ledger[d] -= cs[i].eps
				}
				s.charges[a.Key] = slices.Delete(cs, i, i+1)
			}
		}
	}
	return nil
}

// spent is the ε key k has spent in its window at now, and when the
// oldest charge in it leaves the window. REQUIRES: mu held.
func (s *Service) spent(k Partner, now time.Time) (eps float64, in []charge) {
	for _, c := range s.charges[k.ID] {
		if k.Window == 0 || c.at.After(now.Add(-k.Window)) {
			eps += c.eps
			in = append(in, c)
		}
	}
	return eps, in
}

// admit checks that k can pay eps at now. REQUIRES: mu held.
func (s *Service) admit(k Partner, eps float64, days []int32, now time.Time) error {
	const slack = 1e-9 // NB: sums of float ε must not refuse an exact fit
	if eps > k.EpsilonBudget+slack {
		return fmt.Errorf("%w: a request costs ε %g, the key's whole budget is %g", ErrSpent, eps, k.EpsilonBudget)
	}
	if s.cfg.DayEpsilon > 0 {
		for _, d := range days {
			if s.ledger[d]+eps > s.cfg.DayEpsilon+slack {
				return fmt.Errorf("%w: the data day %s has no ε left to release", ErrSpent, dayString(d))
			}
		}
	}
	spent, in := s.spent(k, now)
	if spent+eps <= k.EpsilonBudget+slack {
		return nil
	}
	if k.Window == 0 {
		return fmt.Errorf("%w: the key spent ε %g of %g", ErrSpent, spent, k.EpsilonBudget)
	}
	for _, c := range in {
		spent -= c.eps
		if spent+eps <= k.EpsilonBudget+slack {
			return &WaitError{At: c.at.Add(k.Window)}
		}
	}
	return &WaitError{At: now.Add(k.Window)}
}

// Budget reports key k's budget.
func (s *Service) Budget(ctx context.Context, k Partner) (Budget, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.sync(ctx); err != nil {
		return Budget{}, err
	}
	spent, in := s.spent(k, s.cfg.Now())
	b := Budget{Key: k.ID, EpsilonBudget: k.EpsilonBudget, EpsilonSpent: spent, Window: k.Window}
	if k.Window > 0 && len(in) > 0 {
		b.ResetsAt = in[0].at.Add(k.Window)
	}
	return b, nil
}

// Ledger is the ε charged for releases of each data day so far.
func (s *Service) Ledger(ctx context.Context) (map[int32]float64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.sync(ctx); err != nil {
		return nil, err
	}
	out := make(map[int32]float64, len(s.ledger))
	for d, e := range s.ledger {
		if e > 0 {
			out[d] = e
		}
	}
	return out, nil
}

// Answer answers req: from stored releases when all are drawn (free),
// else it charges the key the requests' ε, reads the exact values of the
// missing ones, draws them and stores them before answering. A refusal
// is ErrSpent or a *WaitError, and draws nothing.
func (s *Service) Answer(ctx context.Context, req Request) (Answer, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.sync(ctx); err != nil {
		return Answer{}, err
	}
	var missing []Need
	var eps float64
	var days []int32
	for _, n := range req.Needs {
		if err := n.Params.validate(); err != nil {
			return Answer{}, err
		}
		eps = max(eps, n.Params.Cost())
		if _, ok := s.releases[n.ID]; !ok && !slices.ContainsFunc(missing, func(m Need) bool { return m.ID == n.ID }) {
			missing = append(missing, n)
			if !slices.Contains(days, n.Day) {
				days = append(days, n.Day)
			}
		}
	}
	ans := Answer{Releases: map[string]Release{}}
	audit := auditRecord{Type: "answer", Key: req.Key.ID, Endpoint: req.Endpoint, Query: req.Query}
	if len(missing) > 0 {
		now := s.cfg.Now()
		if err := s.admit(req.Key, eps, days, now); err != nil {
			return Answer{}, err
		}
		c := auditRecord{Type: "charge", ID: newID(), Key: req.Key.ID, Endpoint: req.Endpoint, Query: req.Query,
			Epsilon: eps, At: now}
		slices.Sort(days)
		for _, d := range days {
			c.Days = append(c.Days, dayString(d))
		}
		if err := s.appendAudit(ctx, c); err != nil {
			return Answer{}, err
		}
		if err := s.drawAll(ctx, req, missing); err != nil {
			r := auditRecord{Type: "refund", ID: c.ID, Key: req.Key.ID, Endpoint: req.Endpoint, Query: req.Query,
				Epsilon: eps, At: s.cfg.Now()}
			if rerr := s.appendAudit(ctx, r); rerr != nil {
				s.cfg.Logger.Error("privacy: refunding a failed request failed; the charge stays", "key", req.Key.ID, "err", rerr)
			}
			return Answer{}, err
		}
		ans.Charged, ans.Epsilon, audit.ID, audit.Epsilon = true, eps, c.ID, eps
	}
	for _, n := range req.Needs {
		r, ok := s.releases[n.ID]
		if !ok {
			return Answer{}, fmt.Errorf("privacy: release %s missing after it was drawn", n.ID)
		}
		ans.Releases[n.ID] = r
		if slices.ContainsFunc(missing, func(m Need) bool { return m.ID == n.ID }) {
			audit.New = append(audit.New, n.ID)
		} else {
			audit.Cached = append(audit.Cached, n.ID)
		}
	}
	audit.At = s.cfg.Now()
	if err := s.appendAudit(ctx, audit); err != nil {
		// NB: the releases are stored and the charge written: the answer
		// stands, only its audit line is missing.
		s.cfg.Logger.Error("privacy: writing an answer's audit record failed", "key", req.Key.ID, "err", err)
	}
	return ans, nil
}

// drawAll reads the exact values of missing, draws them, stores them and
// applies them. REQUIRES: mu held.
func (s *Service) drawAll(ctx context.Context, req Request, missing []Need) error {
	ids := make([]string, len(missing))
	for i, n := range missing {
		ids[i] = n.ID
	}
	exact, err := req.Exact(ids)
	if err != nil {
		return fmt.Errorf("privacy: reading the exact values: %w", err)
	}
	now := s.cfg.Now().UTC()
	entries := make([]Entry, 0, len(missing))
	drawn := make([]Release, 0, len(missing))
	for _, n := range missing {
		vals, ok := exact[n.ID]
		if !ok {
			return fmt.Errorf("privacy: no exact values of %s", n.ID)
		}
		r := Release{ID: n.ID, Params: n.Params, DrawnAt: now}
		if r.Values, err = drawRelease(vals, n.Params); err != nil {
			return err
		}
		b, err := json.Marshal(r)
		if err != nil {
			return fmt.Errorf("privacy: encode release: %w", err)
		}
		entries = append(entries, Entry{Stream: Releases, Key: []byte(r.ID), Value: b})
		drawn = append(drawn, r)
	}
	if err := s.cfg.Log.Append(ctx, entries...); err != nil {
		return fmt.Errorf("privacy: storing releases: %w", err)
	}
	for _, r := range drawn {
		s.releases[r.ID] = r
	}
	return nil
}

// appendAudit writes one audit record and applies it. REQUIRES: mu held.
func (s *Service) appendAudit(ctx context.Context, a auditRecord) error {
	b, err := json.Marshal(a)
	if err != nil {
		return fmt.Errorf("privacy: encode audit record: %w", err)
	}
	e := Entry{Stream: Audit, Key: []byte(a.Key), Value: b}
	if err := s.cfg.Log.Append(ctx, e); err != nil {
		return fmt.Errorf("privacy: audit: %w", err)
	}
	return s.apply(e)
}

func newID() string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// SumInterval is the confidence interval of the sum of the values of part
// in rs (each drawn with its release's parameters), at level 1 − alpha.
func SumInterval(rs []Release, part string, alpha float64) (Interval, error) {
	noisy := make([]int64, len(rs))
	ps := make([]Params, len(rs))
	for i, r := range rs {
		noisy[i], ps[i] = r.Values[part], r.Params
	}
	return sumInterval(noisy, ps, alpha)
}
