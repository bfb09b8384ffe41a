package serve

import (
	"context"
	"net/http"
	"testing"

	"github.com/kappa-stream/kappa/catalog"
)

// fakeSearch finds what its index holds; before loaded it is recovering.
type fakeSearch struct{ idx *catalog.Index }

func (f fakeSearch) Search(q string, limit int) ([]catalog.Hit, error) {
	if f.idx == nil {
		return nil, catalog.ErrNotRecovered
	}
	return f.idx.Search(q, limit), nil
}

func TestSearch(t *testing.T) {
	idx := catalog.NewIndex([]catalog.Entry{
		{Kind: catalog.HitArtist, ID: 3, Name: "Adele"},
		{Kind: catalog.HitSong, ID: 7, Name: "Hello", ArtistID: 3},
		{Kind: catalog.HitSong, ID: 8, Name: "Héllo Again", ArtistID: 9},
		{Kind: catalog.HitArtist, ID: 4, Name: "Hellogoodbye"},
	})
	newSrv := func(s Searcher) *Server {
		srv, err := New(Config{
			Versions: fixedVersions{"v1", map[string]*Backend{}},
			Ready:    func(context.Context) (bool, error) { return true, nil },
			Names:    fakeNames{},
			Search:   s,
		})
		if err != nil {
			t.Fatal(err)
		}
		return srv
	}
	srv := newSrv(fakeSearch{idx})
	for _, tc := range []struct {
		target string
		status int
		body   string
	}{
		{"/v1/search?q=HELLO", 200, `{"q":"HELLO","artists":[{"artist_id":4,"name":"Hellogoodbye"}],"songs":[{"song_id":7,"title":"Hello","artist_id":3,"artist_name":"Adele"},{"song_id":8,"title":"Héllo Again","artist_id":9}]}`},
		{"/v1/search?q=hel&limit=1", 200, `{"q":"hel","artists":[{"artist_id":4,"name":"Hellogoodbye"}],"songs":[{"song_id":7,"title":"Hello","artist_id":3,"artist_name":"Adele"}]}`},
		{"/v1/search?q=again", 200, `{"q":"again","artists":[],"songs":[{"song_id":8,"title":"Héllo Again","artist_id":9}]}`},
		{"/v1/search?q=zzz", 200, `{"q":"zzz","artists":[],"songs":[]}`},
		{"/v1/search?q=", 400, `{"error":"q must be 1 to 200 bytes and not blank"}`},
		{"/v1/search?q=%20%20", 400, `{"error":"q must be 1 to 200 bytes and not blank"}`},
		{"/v1/search?q=a&limit=0", 400, `{"error":"limit must be an integer in 1..100"}`},
		{"/v1/search?q=a&limit=x", 400, `{"error":"limit must be an integer in 1..100"}`},
	} {
		if status, body := do(t, srv, http.MethodGet, tc.target, ""); status != tc.status || body != tc.body {
			t.Errorf("%s: %d %s\nwant %d %s", tc.target, status, body, tc.status, tc.body)
		}
	}
	if status, _ := do(t, newSrv(fakeSearch{}), http.MethodGet, "/v1/search?q=a", ""); status != http.StatusServiceUnavailable {
		t.Errorf("search while the catalog loads: %d, want 503", status)
	}
	if status, _ := do(t, newTestServer(t, &fakeLog{}), http.MethodGet, "/v1/search?q=a", ""); status != http.StatusNotFound {
		t.Errorf("search without a Searcher: %d, want 404", status)
	}
}
