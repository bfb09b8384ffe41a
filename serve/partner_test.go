package serve

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/uber/h3-go/v4"

	"github.com/kappa-stream/kappa/events"
	"github.com/kappa-stream/kappa/generate"
	"github.com/kappa-stream/kappa/privacy"
	"github.com/kappa-stream/kappa/processors"
	"github.com/kappa-stream/kappa/processors/dp"
	"github.com/kappa-stream/kappa/state"
	"github.com/kappa-stream/kappa/topology"
)

// bearerKeys is the test's auth: "Bearer <id>" of a key in partners is
// that partner; of "reader", a key of another role; anything else, none.
type bearerKeys map[string]privacy.Partner

func (b bearerKeys) Partner(r *http.Request) (privacy.Partner, error) {
	id, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok {
		return privacy.Partner{}, ErrNoKey
	}
	if id == "reader" {
		return privacy.Partner{}, ErrNotPartner
	}
	p, ok := b[id]
	if !ok {
		return privacy.Partner{}, ErrNoKey
	}
	return p, nil
}

// dpBackend runs listens through the dp processor (one partition, K=3,
// C=2, grace 10m) and returns the version's backend over its stage-2
// store.
func dpBackend(t *testing.T, listens []events.Listen) *Backend {
	t.Helper()
	cfg := processors.NewConfig([]processors.Spec{dp.Spec})
	if err := json.Unmarshal([]byte(`{"dp":true,"dp_max_items":3,"dp_max_plays":2,"dp_grace":"10m"}`), &cfg); err != nil {
		t.Fatal(err)
	}
	proc, err := cfg.Options(0).New(processors.Env{Repartition: "r", Partitions: 1})
	if err != nil {
		t.Fatal(err)
	}
	open := func() *state.Store {
		s, err := state.Open("db", state.WithFS(vfs.NewMem()))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	}
	commit := func(s *state.Store, out *topology.Output) {
		b := s.NewBatch()
		for k, v := range out.Changes() {
			if v == nil {
				err = b.Delete(k)
			} else {
				err = b.Set(k, v)
			}
			if err != nil {
				t.Fatal(err)
			}
		}
		if err := b.Commit(false); err != nil {
			t.Fatal(err)
		}
	}
	s1, s2 := open(), open()
	st1, err := proc.NewStage1(0, s1)
	if err != nil {
		t.Fatal(err)
	}
	for i := range listens {
		if err := st1.Add(&listens[i]); err != nil {
			t.Fatal(err)
		}
	}
	var out topology.Output
	if err := st1.Prepare(&out, false); err != nil {
		t.Fatal(err)
	}
	commit(s1, &out)
	st2, err := proc.NewStage2(0, s2)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range out.Records() {
		if err := st2.Process(r); err != nil {
			t.Fatal(err)
		}
	}
	var changes topology.Output
	if err := st2.Prepare(&changes); err != nil {
		t.Fatal(err)
	}
	commit(s2, &changes)
	return &Backend{Rollups: &fakePlacement{store: s2}, Processors: map[string]processors.Processor{dp.Spec.Name: proc}}
}

const dpDay = 20_500 // 2026-02-16

func dayTS(day int32, ms int64) int64 { return int64(day)*86_400_000 + ms }

// partnerListens: day dpDay has users 1…40 on song 7 (artist 3), each 5
// times, half of them in SE; a listen on dpDay+2 at 01:00 closes dpDay and dpDay+1.
func partnerListens() []events.Listen {
	var ls []events.Listen
	for u := int64(1); u <= 40; u++ {
		c := events.Country{'S', 'E'}
		if u%2 == 0 {
			c = events.Country{}
		}
		for i := range 5 {
			ls = append(ls, events.Listen{UserID: u, SongID: 7, ArtistID: 3, TS: dayTS(dpDay, u*1000+int64(i)), Country: c})
		}
	}
	return append(ls, events.Listen{UserID: 99, SongID: 8, ArtistID: 4, TS: dayTS(dpDay+2, 3_600_000)})
}

type partnerEnv struct {
	t       *testing.T
	brokers []string
	keys    bearerKeys
	now     time.Time
}

func newPartnerEnv(t *testing.T) *partnerEnv {
	t.Helper()
	c, err := kfake.NewCluster(kfake.NumBrokers(1))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	for _, ts := range privacy.Topics() {
		if err := c.CreateTopic(ts.Name, ts.Partitions, ts.Configs); err != nil {
			t.Fatal(err)
		}
	}
	return &partnerEnv{t: t, brokers: c.ListenAddrs(), now: time.Now(), keys: bearerKeys{
		"p1":   {ID: "p1", EpsilonBudget: 1, Window: 30 * 24 * time.Hour},
		"p2":   {ID: "p2", EpsilonBudget: 0.5},
		"rich": {ID: "rich", EpsilonBudget: 1e6, Window: 24 * time.Hour},
	}}
}

// server starts an instance (its own privacy service) over vs.
func (e *partnerEnv) server(vs Versions) *Server {
	e.t.Helper()
	l, err := privacy.NewKafkaLog(e.brokers)
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(l.Close)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	rel, err := privacy.New(ctx, privacy.Config{Log: l, Now: func() time.Time { return e.now }})
	if err != nil {
		e.t.Fatal(err)
	}
	srv, err := New(Config{Versions: vs, Ready: func(context.Context) (bool, error) { return true, nil },
		Partner: &Partner{Auth: e.keys, Releases: rel}})
	if err != nil {
		e.t.Fatal(err)
	}
	return srv
}

func get(t *testing.T, h http.Handler, key, target string) (int, http.Header, string) {
	t.Helper()
	rec := httptest.NewRecorder()
	req := httptest.NewRequest("GET", target, nil)
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	h.ServeHTTP(rec, req)
	return rec.Code, rec.Header(), strings.TrimSpace(rec.Body.String())
}

type dpAnswer struct {
	Rows []struct {
		Day     string  `json:"day"`
		Country *string `json:"country"`
		Value   int64   `json:"value"`
		CI      struct {
			Lo, Hi, Alpha float64
		} `json:"ci"`
	} `json:"rows"`
	Epsilon float64 `json:"epsilon"`
	Bounds  struct {
		MaxItems int64 `json:"max_items"`
		MaxPlays int64 `json:"max_plays"`
		L0       int64 `json:"l0"`
		LInf     int64 `json:"linf"`
	} `json:"bounds"`
	Charged bool `json:"charged"`
}

func decode(t *testing.T, body string) dpAnswer {
	t.Helper()
	var a dpAnswer
	if err := json.Unmarshal([]byte(body), &a); err != nil {
		t.Fatalf("%s: %v", body, err)
	}
	return a
}

// uncharged is body with "charged":true made false, to compare answers.
func uncharged(body string) string {
	body = strings.Replace(body, `"charged":true`, `"charged":false`, 1)
	return strings.Replace(body, `"epsilon_charged":0.5`, `"epsilon_charged":0`, 1)
}

func TestPartnerAnswers(t *testing.T) {
	e := newPartnerEnv(t)
	v1 := dpBackend(t, partnerListens())
	srv := e.server(fixedVersions{"v1", map[string]*Backend{"v1": v1}})
	day := dayString(dpDay)
	q := "/partner/v1/songs/7/listeners?from=" + day + "&to=" + day

	for _, tc := range []struct {
		key, target string
		status      int
	}{
		{"", q, 401},
		{"nobody", q, 401},
		{"reader", q, 403},
		{"p1", "/partner/v1/songs/7/listeners?from=" + day + "&to=" + dayString(dpDay+2), 422},
		{"p1", "/partner/v1/songs/x/listeners?from=" + day + "&to=" + day, 400},
		{"p1", "/partner/v1/songs/7/listeners?from=" + day + "&to=" + day + "&by=week", 400},
		{"p1", "/partner/v1/songs/7/listeners?from=2025-01-01&to=2026-12-31", 400},
	} {
		if code, _, body := get(t, srv, tc.key, tc.target); code != tc.status {
			t.Errorf("%s %s: %d %s, want %d", tc.key, tc.target, code, body, tc.status)
		}
	}
	if b, _ := e.budget(srv, "p1"); b.EpsilonSpent != 0 {
		t.Fatalf("refused requests charged ε %v", b.EpsilonSpent)
	}

	code, _, first := get(t, srv, "p1", q)
	a := decode(t, first)
	if code != 200 || !a.Charged || len(a.Rows) != 1 || a.Rows[0].Day != day || a.Epsilon != 0.5 ||
		a.Bounds.L0 != 3 || a.Bounds.LInf != 1 || a.Bounds.MaxItems != 3 {
		t.Fatalf("first answer %d %s", code, first)
	}
	if r := a.Rows[0]; !(r.CI.Lo <= r.CI.Hi) || r.CI.Alpha != 0.05 || float64(r.Value) < r.CI.Lo || float64(r.Value) > r.CI.Hi {
		t.Fatalf("interval %+v of value %d", r.CI, r.Value)
	}
	// The same request: the same answer, free; another key too.
	for _, key := range []string{"p1", "p2"} {
		if code, _, again := get(t, srv, key, q); code != 200 || again != uncharged(first) {
			t.Fatalf("%s again: %d %s\nwant %s", key, code, again, uncharged(first))
		}
	}
	if b, _ := e.budget(srv, "p2"); b.EpsilonSpent != 0 {
		t.Fatalf("a cached answer charged p2 ε %v", b.EpsilonSpent)
	}

	// Plays: a sum with C = 2 (each user 5 plays, capped at 2).
	code, _, body := get(t, srv, "p1", "/partner/v1/songs/7/plays?from="+day+"&to="+day)
	if p := decode(t, body); code != 200 || p.Bounds.LInf != 2 || p.Bounds.MaxPlays != 2 || !p.Charged {
		t.Fatalf("plays: %d %s", code, body)
	}
	// By country: every country and the listens without one, null first.
	code, _, body = get(t, srv, "rich", "/partner/v1/artists/3/listeners?from="+day+"&to="+day+"&by=country")
	c := decode(t, body)
	if code != 200 || len(c.Rows) != 250 || c.Rows[0].Country != nil || *c.Rows[1].Country != "AD" {
		t.Fatalf("by country: %d, %d rows", code, len(c.Rows))
	}
}

func (e *partnerEnv) budget(srv *Server, key string) (budgetResponse, http.Header) {
	e.t.Helper()
	code, h, body := get(e.t, srv, key, "/partner/v1/budget")
	var b budgetResponse
	if code != 200 || json.Unmarshal([]byte(body), &b) != nil {
		e.t.Fatalf("budget of %s: %d %s", key, code, body)
	}
	return b, h
}

// TestPartnerSameAnswerAfterRestartAndCutover: the same request after a
// restart (a new instance) and after a cutover to a replayed version
// whose tables differ: the same noisy values, charged once.
func TestPartnerSameAnswerAfterRestartAndCutover(t *testing.T) {
	e := newPartnerEnv(t)
	v1 := dpBackend(t, partnerListens())
	day := dayString(dpDay)
	q := "/partner/v1/songs/7/listeners?from=" + day + "&to=" + day + "&by=country"
	code, _, first := get(t, e.server(fixedVersions{"v1", map[string]*Backend{"v1": v1}}), "p1", q)
	if code != 200 || !decode(t, first).Charged {
		t.Fatalf("first: %d %s", code, first)
	}
	restarted := e.server(fixedVersions{"v1", map[string]*Backend{"v1": v1}})
	if code, _, body := get(t, restarted, "p1", q); code != 200 || body != uncharged(first) {
		t.Fatalf("after a restart: %d %s", code, body)
	}
	// v2 is a replay that lost half the users: its exact counts differ.
	v2 := dpBackend(t, partnerListens()[100:])
	cut := e.server(fixedVersions{"v2", map[string]*Backend{"v1": v1, "v2": v2}})
	if code, _, body := get(t, cut, "p1", q); code != 200 || body != uncharged(first) {
		t.Fatalf("after the cutover: %d %s", code, body)
	}
	if code, _, body := get(t, cut, "p1", q+"&version=v1"); code != 200 || body != uncharged(first) {
		t.Fatalf("with version=: %d %s", code, body)
	}
	if b, _ := e.budget(cut, "p1"); b.EpsilonSpent != 0.5 {
		t.Fatalf("spent ε %v, want 0.5 (one charge)", b.EpsilonSpent)
	}
}

// TestPartnerBudgetExhausted: past its budget a windowed key gets 429
// with Retry-After until its first charge leaves the window, a key for
// good 403, and nothing new is released; GET budget shows it.
func TestPartnerBudgetExhausted(t *testing.T) {
	e := newPartnerEnv(t)
	v1 := dpBackend(t, partnerListens())
	srv := e.server(fixedVersions{"v1", map[string]*Backend{"v1": v1}})
	q := func(path string, d int32) string {
		return "/partner/v1/" + path + "?from=" + dayString(d) + "&to=" + dayString(d)
	}
	t0 := e.now
	for i, path := range []string{"songs/7/listeners", "songs/7/plays"} {
		e.now = t0.Add(time.Duration(i) * time.Hour)
		if code, _, body := get(t, srv, "p1", q(path, dpDay)); code != 200 {
			t.Fatalf("%s: %d %s", path, code, body)
		}
	}
	code, h, body := get(t, srv, "p1", q("artists/3/listeners", dpDay))
	retry, _ := strconv.Atoi(h.Get("Retry-After"))
	if want := time.Until(t0.Add(30 * 24 * time.Hour)).Seconds(); code != 429 || math.Abs(float64(retry)-want) > 5 {
		t.Fatalf("past the budget: %d %s, Retry-After %q, want 429 and %.0f", code, body, h.Get("Retry-After"), want)
	}
	b, _ := e.budget(srv, "p1")
	if b.EpsilonSpent != 1 || b.EpsilonBudget != 1 || b.Window == nil || *b.Window != "30d" ||
		b.ResetsAt == nil || !b.ResetsAt.Equal(t0.Add(30*24*time.Hour).UTC()) {
		t.Fatalf("budget %+v", b)
	}
	// The refused release was not drawn: p2 (for good) pays for it now,
	// then is spent for good.
	if code, _, body := get(t, srv, "p2", q("artists/3/listeners", dpDay)); code != 200 || !decode(t, body).Charged {
		t.Fatalf("p2: %d %s (the refused request drew its release?)", code, body)
	}
	if code, _, body := get(t, srv, "p2", q("artists/3/listeners", dpDay+1)); code != 403 {
		t.Fatalf("p2 spent: %d %s, want 403", code, body)
	}
	if b, _ := e.budget(srv, "p2"); b.Window != nil || b.ResetsAt != nil || b.EpsilonSpent != 0.5 {
		t.Fatalf("p2 budget %+v", b)
	}
}

// TestPartnerCoverage: over generated load (package generate: Zipf
// songs, users around cities, light disorder), the DP answers are within
// their confidence intervals of the exact bounded counts at least at the
// stated rate (95%, less three binomial standard deviations).
func TestPartnerCoverage(t *testing.T) {
	e := newPartnerEnv(t)
	g, err := generate.New(generate.Config{Seed: 7, Users: 3000, Artists: 40, Songs: 200, Span: 4 * 24 * time.Hour, Events: 80_000})
	if err != nil {
		t.Fatal(err)
	}
	var ls []events.Listen
	var dec events.Decoder
	var line []byte
	for range 80_000 {
		line, _ = g.Next(line[:0])
		var l events.Listen
		if err := dec.Decode(line, &l); err != nil {
			t.Fatal(err)
		}
		ls = append(ls, l)
	}
	first := ls[0].Day()
	ls = append(ls, events.Listen{UserID: 1, SongID: 1, ArtistID: 1, TS: dayTS(first+5, 0)})
	b := dpBackend(t, ls)
	srv := e.server(fixedVersions{"v1", map[string]*Backend{"v1": b}})
	store := b.Rollups.(*fakePlacement).store
	hits, n, nonzero := 0, 0, 0
	for id := int64(1); id <= 40; id++ {
		for _, path := range []string{"songs/%d/listeners", "songs/%d/plays", "artists/%d/listeners"} {
			kind := map[string]dp.Kind{"songs/%d/listeners": dp.SongListeners, "songs/%d/plays": dp.SongPlays,
				"artists/%d/listeners": dp.ArtistListeners}[path]
			target := fmt.Sprintf("/partner/v1/"+path+"?from=%s&to=%s", id, dayString(first), dayString(first+3))
			code, _, body := get(t, srv, "rich", target)
			if code != 200 {
				t.Fatalf("%s: %d %s", target, code, body)
			}
			for i, r := range decode(t, body).Rows {
				counts, err := dp.Counts(store, kind, id, first+int32(i))
				if err != nil {
					t.Fatal(err)
				}
				var exact int64
				for _, c := range counts {
					exact += c
				}
				if exact > 0 {
					nonzero++
				}
				n++
				if r.CI.Lo <= float64(exact) && float64(exact) <= r.CI.Hi {
					hits++
				}
			}
		}
	}
	if nonzero < n/2 {
		t.Fatalf("only %d of %d answers have listens: the load is wrong", nonzero, n)
	}
	const alpha = 0.05
	if min := (1 - alpha) - 3*math.Sqrt(alpha*(1-alpha)/float64(n)); float64(hits)/float64(n) < min {
		t.Fatalf("%d of %d answers within their intervals, want a rate of at least %.3f", hits, n, min)
	}
	t.Logf("%d of %d answers within their 95%% intervals (%d with listens)", hits, n, nonzero)
}

// TestPartnerFanCells: the children of a cell, every one listed with a
// noisy count, drawn once; the top cells by partition selection keep a
// crowded cell and drop a lone fan's.
func TestPartnerFanCells(t *testing.T) {
	e := newPartnerEnv(t)
	stockholm, tokyo := h3.NewLatLng(59.33, 18.06), h3.NewLatLng(35.68, 139.69)
	var ls []events.Listen
	for u := int64(1); u <= 400; u++ {
		ls = append(ls, events.Listen{UserID: u, SongID: 7, ArtistID: 3, TS: dayTS(dpDay, u), HasLoc: true,
			Lat: stockholm.Lat + float64(u%10)*1e-4, Lng: stockholm.Lng})
	}
	ls = append(ls, events.Listen{UserID: 401, SongID: 7, ArtistID: 3, TS: dayTS(dpDay, 500), HasLoc: true, Lat: tokyo.Lat, Lng: tokyo.Lng},
		events.Listen{UserID: 999, SongID: 8, ArtistID: 4, TS: dayTS(dpDay+2, 3_600_000)})
	srv := e.server(fixedVersions{"v1", map[string]*Backend{"v1": dpBackend(t, ls)}})
	within := h3.LatLngToCell(stockholm, 5)
	home7 := h3.LatLngToCell(stockholm, 7)
	want := map[string]int64{}
	for _, l := range ls {
		if l.HasLoc {
			want[h3.LatLngToCell(h3.NewLatLng(l.Lat, l.Lng), 7).String()]++
		}
	}
	if want[home7.String()] < 300 {
		t.Fatalf("the crowd is spread over cells: %v", want)
	}
	q := fmt.Sprintf("/partner/v1/artists/3/fan-cells?res=7&within=%s&day=%s", within, dayString(dpDay))
	code, _, first := get(t, srv, "rich", q)
	var a partnerCellsResponse
	if err := json.Unmarshal([]byte(first), &a); err != nil || code != 200 {
		t.Fatalf("%d %s", code, first)
	}
	if len(a.Cells) != 49 || !a.Charged || a.Within != within.String() || a.Bounds.L0 != 3 {
		t.Fatalf("fan cells: %d cells, charged %v: %s", len(a.Cells), a.Charged, first)
	}
	for i, c := range a.Cells {
		if cell := h3.Cell(h3.IndexFromString(c.Cell)); cell.Resolution() != 7 || cell.Parent(5) != within {
			t.Fatalf("cell %s is not a child of %s at 7", c.Cell, within)
		}
		if i > 0 && c.Cell <= a.Cells[i-1].Cell {
			t.Fatalf("cells out of order at %d", i)
		}
		// Laplace noise of scale K/ε = 6: 100 away has probability e^-16.
		if d := c.Value - want[c.Cell]; d < -100 || d > 100 {
			t.Errorf("cell %s: %d, %d fans", c.Cell, c.Value, want[c.Cell])
		}
	}
	if code, _, again := get(t, srv, "p2", q); code != 200 || again != uncharged(first) {
		t.Fatalf("again: %d %s", code, again)
	}
	for _, bad := range []string{
		fmt.Sprintf("/partner/v1/artists/3/fan-cells?res=9&within=%s&day=%s", within, dayString(dpDay)), // 4 levels
		fmt.Sprintf("/partner/v1/artists/3/fan-cells?res=5&within=%s&day=%s", within, dayString(dpDay)),
		fmt.Sprintf("/partner/v1/artists/3/fan-cells?res=7&within=zz&day=%s", dayString(dpDay)),
		"/partner/v1/artists/3/top-fan-cells?res=7&day=" + dayString(dpDay) + "&limit=0",
		"/partner/v1/artists/3/top-fan-cells?res=4&day=" + dayString(dpDay),
	} {
		if code, _, body := get(t, srv, "rich", bad); code != 400 {
			t.Errorf("%s: %d %s, want 400", bad, code, body)
		}
	}
	if code, _, body := get(t, srv, "rich", fmt.Sprintf("/partner/v1/artists/3/fan-cells?res=7&within=%s&day=%s", within, dayString(dpDay+2))); code != 422 {
		t.Errorf("an open day: %d %s", code, body)
	}

	code, _, body := get(t, srv, "rich", "/partner/v1/artists/3/top-fan-cells?res=7&day="+dayString(dpDay))
	var top partnerCellsResponse
	if err := json.Unmarshal([]byte(body), &top); err != nil || code != 200 {
		t.Fatalf("top: %d %s", code, body)
	}
	if len(top.Cells) != 1 || top.Cells[0].Cell != home7.String() || top.Mech != "select-count" ||
		top.EpsilonCharged != 1 || top.Delta != DefaultPartnerSelectDelta {
		t.Fatalf("top cells: %s (want the Stockholm cell only, ε 0.5+0.5)", body)
	}
}

// TestPartnerForwarded: an instance that does not own the id forwards the
// request, with its key, to the owner, which draws and charges; the
// owner then answers the same request the same way, for free.
func TestPartnerForwarded(t *testing.T) {
	e := newPartnerEnv(t)
	owned := dpBackend(t, partnerListens())
	b := httptest.NewServer(e.server(fixedVersions{"v1", map[string]*Backend{"v1": owned}}))
	t.Cleanup(b.Close)
	away := &Backend{Rollups: &fakePlacement{owner: b.URL}, Processors: owned.Processors}
	a := e.server(fixedVersions{"v1", map[string]*Backend{"v1": away}})
	q := "/partner/v1/songs/7/listeners?from=" + dayString(dpDay) + "&to=" + dayString(dpDay)
	code, _, first := get(t, a, "p1", q)
	if code != 200 || !decode(t, first).Charged {
		t.Fatalf("forwarded: %d %s", code, first)
	}
	if code, _, body := get(t, a, "", q); code != 401 {
		t.Fatalf("forwarded without a key: %d %s", code, body)
	}
	req, _ := http.NewRequest("GET", b.URL+q, nil)
	req.Header.Set("Authorization", "Bearer p1")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var again strings.Builder
	if _, err := io.Copy(&again, resp.Body); err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 200 || strings.TrimSpace(again.String()) != uncharged(first) {
		t.Fatalf("at the owner: %d %s", resp.StatusCode, again.String())
	}
}
