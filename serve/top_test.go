package serve

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/kappa-stream/kappa/events"
	"github.com/kappa-stream/kappa/processors"
	"github.com/kappa-stream/kappa/processors/rollups"
	"github.com/kappa-stream/kappa/processors/topk"
	"github.com/kappa-stream/kappa/state"
	"github.com/kappa-stream/kappa/topology"
)

// topListens: on 2026-03-01…02, songs 7 (artist 3; GB: 3 plays, 2
// streams), 8 (artist 4; SE: 2 plays), 9 (artist 3; no country: 2 plays,
// 2 streams) and 11 (artist 4; GB: 1 play, SE: 2 plays, all streams);
// song 10 on 2026-03-05.
var topListens = []string{
	`{"user_id":1,"song_id":7,"artist_id":3,"ts":"2026-03-01T10:00:00Z","ms_played":31000,"country":"GB"}`,
	`{"user_id":2,"song_id":7,"artist_id":3,"ts":"2026-03-01T11:00:00Z","ms_played":1000,"country":"GB"}`,
	`{"user_id":3,"song_id":7,"artist_id":3,"ts":"2026-03-01T12:00:00Z","ms_played":40000,"country":"GB"}`,
	`{"user_id":4,"song_id":8,"artist_id":4,"ts":"2026-03-02T10:00:00Z","country":"SE"}`,
	`{"user_id":5,"song_id":8,"artist_id":4,"ts":"2026-03-02T11:00:00Z","country":"SE"}`,
	`{"user_id":6,"song_id":9,"artist_id":3,"ts":"2026-03-01T10:00:00Z","ms_played":35000}`,
	`{"user_id":7,"song_id":9,"artist_id":3,"ts":"2026-03-01T10:30:00Z","ms_played":35000}`,
	`{"user_id":8,"song_id":10,"artist_id":5,"ts":"2026-03-05T10:00:00Z","country":"GB"}`,
	`{"user_id":9,"song_id":11,"artist_id":4,"ts":"2026-03-01T10:00:00Z","ms_played":50000,"country":"GB"}`,
	`{"user_id":1,"song_id":11,"artist_id":4,"ts":"2026-03-02T10:00:00Z","ms_played":50000,"country":"SE"}`,
	`{"user_id":2,"song_id":11,"artist_id":4,"ts":"2026-03-02T23:00:00Z","ms_played":50000,"country":"SE"}`,
}

const topPartitions = 3

// newTopStores runs topListens through the rollups' stages with top-K
// indexes, as kappa's stages do: one store per stage-2 partition.
func newTopStores(t *testing.T) []*state.Store {
	t.Helper()
	users := rollups.NewStage1("deltas", topPartitions)
	songs := topk.NewSongCollector("deltas", topPartitions)
	var dec events.Decoder
	var l events.Listen
	for _, line := range topListens {
		if err := dec.Decode([]byte(line), &l); err != nil {
			t.Fatal(err)
		}
		if err := users.Add(&l); err != nil {
			t.Fatal(err)
		}
		if err := songs.Add(&l); err != nil {
			t.Fatal(err)
		}
	}
	var deltas topology.Output
	if err := users.Prepare(&deltas, false); err != nil {
		t.Fatal(err)
	}
	if err := songs.Prepare(&deltas, false); err != nil {
		t.Fatal(err)
	}
	stores := make([]*state.Store, topPartitions)
	for p := range stores {
		s, err := state.Open("db", state.WithFS(vfs.NewMem()))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		stores[p] = s
		agg, idx, st := rollups.NewStage2(s, nil), topk.NewIndexer(s), topk.NewSongTask(s)
		agg.Observe(idx)
		for _, rec := range deltas.Records() {
			if rec.Partition != int32(p) {
				continue
			}
			process := agg.Process
			if topk.IsSongDelta(rec.Value) {
				process = st.Process
			}
			if err := process(rec); err != nil {
				t.Fatal(err)
			}
		}
		var out topology.Output
		if err := agg.Prepare(&out); err != nil {
			t.Fatal(err)
		}
		if err := idx.Prepare(&out); err != nil {
			t.Fatal(err)
		}
		if err := st.Prepare(&out); err != nil {
			t.Fatal(err)
		}
		b := s.NewBatch()
		for k, v := range out.Changes() {
			if err := b.Set(k, v); err != nil {
				t.Fatal(err)
			}
		}
		if err := b.Commit(false); err != nil {
			t.Fatal(err)
		}
		if err := topk.Check(s); err != nil {
			t.Fatal(err)
		}
		if err := topk.CheckArtistSongs(s); err != nil {
			t.Fatal(err)
		}
	}
	return stores
}

// partPlacement has the stores of some partitions here and names the
// owners of the others; a partition in neither is not servable.
type partPlacement struct {
	stores map[int32]*state.Store
	owners map[int32]string
}

func (pp *partPlacement) Locate(key []byte) Location {
	p := topology.KeyPartition(key, topPartitions)
	if s, ok := pp.stores[p]; ok {
		return Location{Store: s, Release: func() {}}
	}
	return Location{Owner: pp.owners[p]}
}

func newTopServer(t *testing.T, pp *partPlacement, partitions int) *Server {
	t.Helper()
	srv, err := New(Config{
		Versions: fixedVersions{"v1", map[string]*Backend{"v1": {Rollups: pp, Processors: topkOn(t, partitions, true)}}},
		Ready:    func(context.Context) (bool, error) { return true, nil },
		Names:    fakeNames{},
	})
	if err != nil {
		t.Fatal(err)
	}
	return srv
}

func TestTop(t *testing.T) {
	stores := newTopStores(t)
	parts := map[int32]bool{}
	for _, id := range []int64{7, 8, 9, 11} {
		parts[topology.KeyPartition(rollups.PartitionKey(nil, rollups.Song, id), topPartitions)] = true
	}
	if len(parts) < 2 {
		t.Fatalf("the test's songs are all in one partition (%v): the merge is not tested", parts)
	}
	all := &partPlacement{stores: map[int32]*state.Store{0: stores[0], 1: stores[1], 2: stores[2]}}
	// b owns partitions 1 and 2; a has 0 and forwards to b.
	var internal atomic.Int32
	b := newTopServer(t, &partPlacement{stores: map[int32]*state.Store{1: stores[1], 2: stores[2]}}, topPartitions)
	peerB := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == pathTop && r.Header.Get(forwardedHeader) != "" {
			internal.Add(1)
		}
		b.ServeHTTP(w, r)
	}))
	t.Cleanup(peerB.Close)
	split := &partPlacement{stores: map[int32]*state.Store{0: stores[0]}, owners: map[int32]string{1: peerB.URL, 2: peerB.URL}}

	const r = "from=2026-03-01&to=2026-03-02"
	for _, tc := range []struct{ target, want string }{
		{"/v1/top/songs?" + r, `{"from":"2026-03-01","to":"2026-03-02","by":"plays","top":[` +
			`{"song_id":7,"title":"Hello","artist_name":"Adele","plays":3,"streams":2},{"song_id":11,"plays":3,"streams":3},` +
			`{"song_id":8,"plays":2,"streams":0},{"song_id":9,"plays":2,"streams":2}]}`},
		{"/v1/top/songs?" + r + "&k=2", `{"from":"2026-03-01","to":"2026-03-02","by":"plays","top":[` +
			`{"song_id":7,"title":"Hello","artist_name":"Adele","plays":3,"streams":2},{"song_id":11,"plays":3,"streams":3}]}`},
		{"/v1/top/songs?" + r + "&by=streams", `{"from":"2026-03-01","to":"2026-03-02","by":"streams","top":[` +
			`{"song_id":11,"plays":3,"streams":3},{"song_id":7,"title":"Hello","artist_name":"Adele","plays":3,"streams":2},{"song_id":9,"plays":2,"streams":2}]}`},
		{"/v1/top/songs?" + r + "&country=se", `{"from":"2026-03-01","to":"2026-03-02","country":"SE","by":"plays","top":[` +
			`{"song_id":8,"plays":2,"streams":0},{"song_id":11,"plays":2,"streams":2}]}`},
		{"/v1/top/songs?from=2026-03-01&to=2026-03-01&country=GB", `{"from":"2026-03-01","to":"2026-03-01","country":"GB","by":"plays","top":[` +
			`{"song_id":7,"title":"Hello","artist_name":"Adele","plays":3,"streams":2},{"song_id":11,"plays":1,"streams":1}]}`},
		{"/v1/top/songs?from=2026-03-03&to=2026-03-04", `{"from":"2026-03-03","to":"2026-03-04","by":"plays","top":[]}`},
		{"/v1/top/artists?" + r, `{"from":"2026-03-01","to":"2026-03-02","by":"plays","top":[` +
			`{"artist_id":3,"artist_name":"Adele","plays":5,"streams":4},{"artist_id":4,"plays":5,"streams":3}]}`},
		{"/v1/top/artists?" + r + "&k=1&by=streams", `{"from":"2026-03-01","to":"2026-03-02","by":"streams","top":[` +
			`{"artist_id":3,"artist_name":"Adele","plays":5,"streams":4}]}`},
		{"/v1/top/songs?" + r + "&artist_id=3", `{"artist_id":3,"from":"2026-03-01","to":"2026-03-02","by":"plays","top":[` +
			`{"song_id":7,"title":"Hello","artist_name":"Adele","plays":3,"streams":2},{"song_id":9,"plays":2,"streams":2}]}`},
		{"/v1/top/songs?" + r + "&artist_id=4&by=streams", `{"artist_id":4,"from":"2026-03-01","to":"2026-03-02","by":"streams","top":[` +
			`{"song_id":11,"plays":3,"streams":3}]}`},
		{"/v1/top/songs?" + r + "&artist_id=4&country=SE&k=1", `{"artist_id":4,"from":"2026-03-01","to":"2026-03-02","country":"SE","by":"plays","top":[` +
			`{"song_id":8,"plays":2,"streams":0}]}`},
		{"/v1/top/songs?" + r + "&artist_id=5", `{"artist_id":5,"from":"2026-03-01","to":"2026-03-02","by":"plays","top":[]}`},
		{"/v1/top/artists?from=2026-03-01&to=2026-03-31&country=GB", `{"from":"2026-03-01","to":"2026-03-31","country":"GB","by":"plays","top":[` +
			`{"artist_id":3,"artist_name":"Adele","plays":3,"streams":2},{"artist_id":4,"plays":1,"streams":1},{"artist_id":5,"plays":1,"streams":0}]}`},
	} {
		for name, srv := range map[string]*Server{"local": newTopServer(t, all, topPartitions), "split": newTopServer(t, split, topPartitions)} {
			before := internal.Load()
			status, body := do(t, srv, http.MethodGet, tc.target, "")
			if status != 200 || body != tc.want {
				t.Errorf("%s %s: %d %s\nwant %s", name, tc.target, status, body, tc.want)
			}
			if calls := internal.Load() - before; !strings.Contains(tc.target, "artist_id") && (name == "split") != (calls == 1) {
				t.Errorf("%s %s: %d internal requests to the owner of partitions 1 and 2", name, tc.target, calls)
			}
		}
	}
}

func TestTopErrors(t *testing.T) {
	stores := newTopStores(t)
	srv := newTopServer(t, &partPlacement{stores: map[int32]*state.Store{0: stores[0], 1: stores[1], 2: stores[2]}}, topPartitions)
	const r = "from=2026-03-01&to=2026-03-02"
	for _, tc := range []struct {
		target string
		status int
		msg    string
	}{
		{"/v1/top/songs?to=2026-03-02", 400, "from is required"},
		{"/v1/top/songs?from=2026-03-01", 400, "to is required"},
		{"/v1/top/songs?from=2026-03-03&to=2026-03-02", 400, "from must not be after to"},
		{"/v1/top/songs?from=2026-3-1&to=2026-03-02", 400, "from must be a date"},
		{"/v1/top/songs?" + r + "&k=0", 400, "k must be an integer in 1..1000"},
		{"/v1/top/songs?" + r + "&k=1001", 400, "k must be an integer in 1..1000"},
		{"/v1/top/artists?" + r + "&k=ten", 400, "k must be an integer"},
		{"/v1/top/artists?" + r + "&by=likes", 400, "by must be plays or streams"},
		{"/v1/top/artists?" + r + "&country=GBR", 400, "country must be an ISO 3166-1 alpha-2 code"},
		{"/v1/top/songs?" + r + "&artist_id=0", 400, "artist_id must be an integer"},
		{"/v1/top/artists?" + r + "&artist_id=3", 400, "artist_id filters top songs only"},
		{"/v1/top/songs?" + r + "&version=v7", 404, "does not run here"},
	} {
		status, body := do(t, srv, http.MethodGet, tc.target, "")
		if status != tc.status || !strings.Contains(body, tc.msg) {
			t.Errorf("%s: %d %s, want %d …%s…", tc.target, status, body, tc.status, tc.msg)
		}
	}
	off := newTopServer(t, &partPlacement{stores: map[int32]*state.Store{0: stores[0]}}, 0)
	if status, body := do(t, off, http.MethodGet, "/v1/top/artists?"+r, ""); status != 404 || !strings.Contains(body, "top-K is off") {
		t.Errorf("top-K off: %d %s", status, body)
	}
	noSongs, err := New(Config{
		Versions: fixedVersions{"v1", map[string]*Backend{"v1": {Rollups: &partPlacement{stores: map[int32]*state.Store{0: stores[0]}}, Processors: topkOn(t, topPartitions, false)}}},
		Ready:    func(context.Context) (bool, error) { return true, nil },
	})
	if err != nil {
		t.Fatal(err)
	}
	if status, body := do(t, noSongs, http.MethodGet, "/v1/top/songs?"+r+"&artist_id=3", ""); status != 404 || !strings.Contains(body, "--top-k-artist-songs") {
		t.Errorf("artist songs off: %d %s", status, body)
	}
	// Partition 1 is nowhere (rebalancing), partition 2 on an owner that
	// does not answer.
	gone := httptest.NewServer(http.NotFoundHandler())
	gone.Close()
	for _, pp := range []*partPlacement{
		{stores: map[int32]*state.Store{0: stores[0], 2: stores[2]}},
		{stores: map[int32]*state.Store{0: stores[0], 1: stores[1]}, owners: map[int32]string{2: gone.URL}},
	} {
		rec := httptest.NewRecorder()
		newTopServer(t, pp, topPartitions).ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/v1/top/songs?"+r, nil))
		if rec.Code != 503 || rec.Header().Get("Retry-After") == "" {
			t.Errorf("a partition not servable: %d %s", rec.Code, rec.Body)
		}
	}
	// The internal endpoint answers from local partitions only.
	local := newTopServer(t, &partPlacement{stores: map[int32]*state.Store{0: stores[0]}, owners: map[int32]string{1: "http://elsewhere"}}, topPartitions)
	for body, want := range map[string]int{
		`{"entity":"song","by":"plays","from":20513,"to":20514,"k":10,"partitions":[0]}`:   200,
		`{"entity":"song","by":"plays","from":20513,"to":20514,"k":10,"partitions":[0,1]}`: 503,
		`{"entity":"song","by":"plays","from":20513,"to":20514,"k":10,"partitions":[3]}`:   400,
		`{"entity":"user","by":"plays","from":20513,"to":20514,"k":10,"partitions":[0]}`:   400,
		`{"entity":"song","by":"plays","from":20513,"to":20514,"k":0,"partitions":[0]}`:    400,
		`{"entity":"song",`: 400,
	} {
		if status, got := do(t, local, http.MethodPost, pathTop, body); status != want {
			t.Errorf("POST %s %s: %d %s, want %d", pathTop, body, status, got, want)
		}
	}
}

// topkOn is the processors of a version with top-K on over the given
// number of stage-2 partitions, with the artists' songs or not; none when
// partitions is 0.
func topkOn(t *testing.T, partitions int, artistSongs bool) map[string]processors.Processor {
	t.Helper()
	if partitions == 0 {
		return nil
	}
	o := topk.Spec.Options().(*topk.Options)
	o.On, o.ArtistSongs = true, artistSongs
	p, err := o.New(processors.Env{Partitions: int32(partitions)})
	if err != nil {
		t.Fatal(err)
	}
	return map[string]processors.Processor{topk.Spec.Name: p}
}
