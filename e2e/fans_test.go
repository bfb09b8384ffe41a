package e2e

import (
	"cmp"
	"maps"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/uber/h3-go/v4"
)

// fanKey is one (artist, resolution, cell).
type fanKey struct {
	artist int64
	res    int
	cell   string
}

// fanResolutions are the resolutions of the fan-zone checks (kappa's
// default).
var fanResolutions = []int{5, 6, 7, 8, 9}

// fanModel counts, from the valid lines in log order, the fans of each
// artist per home cell: a user's home is the location of their listen
// with the latest ts (the later line on a tie); a fan has at least
// minPlays plays of the artist; the cell at resolution r is h3-go's
// LatLngToCell(home, r).
func fanModel(t testing.TB, d *dataset, minPlays int) map[fanKey]int64 {
	t.Helper()
	type home struct {
		ts       int64
		lat, lng float64
	}
	homes := map[int64]home{}
	plays := map[[2]int64]int{}
	for l, ts := range d.valid(t) {
		plays[[2]int64{l.UserID, l.ArtistID}]++
		if l.Lat == nil {
			continue
		}
		if h, ok := homes[l.UserID]; !ok || ts.UnixMilli() >= h.ts {
			homes[l.UserID] = home{ts.UnixMilli(), *l.Lat, *l.Lng}
		}
	}
	out := map[fanKey]int64{}
	for ua, n := range plays {
		h, ok := homes[ua[0]]
		if n < minPlays || !ok {
			continue
		}
		for _, r := range fanResolutions {
			c := h3.LatLngToCell(h3.NewLatLng(h.lat, h.lng), r)
			out[fanKey{ua[1], r, c.String()}]++
		}
	}
	return out
}

// zoneLimit is the limit= of the fan-zone checks (the API's largest).
const zoneLimit = 10_000

// checkFanZones compares every artist's zones at every resolution with
// the model: the same cells and fans in the same order (fans descending,
// then cell), the first zoneLimit of them; and the busiest cells'
// /v1/cells answers.
func checkFanZones(t testing.TB, c *client, d *dataset, minPlays int) {
	t.Helper()
	want := fanModel(t, d, minPlays)
	type zone struct {
		Cell string `json:"cell"`
		Fans int64  `json:"fans"`
	}
	wantZones := map[[2]int64][]zone{}
	for k, n := range want {
		ar := [2]int64{k.artist, int64(k.res)}
		wantZones[ar] = append(wantZones[ar], zone{k.cell, n})
	}
	if len(wantZones) == 0 {
		t.Fatal("the model has no fans: the check checks nothing")
	}
	artists := map[int64]bool{}
	zones := 0
	for _, ar := range slices.SortedFunc(maps.Keys(wantZones), func(a, b [2]int64) int {
		return cmp.Or(cmp.Compare(a[0], b[0]), cmp.Compare(a[1], b[1]))
	}) {
		artists[ar[0]] = true
		w := wantZones[ar]
		slices.SortFunc(w, func(a, b zone) int {
			return cmp.Or(cmp.Compare(b.Fans, a.Fans), strings.Compare(a.Cell, b.Cell))
		})
		w = w[:min(len(w), zoneLimit)]
		zones += len(w)
		var a struct {
			ArtistID int64  `json:"artist_id"`
			Res      int    `json:"res"`
			MinFans  int64  `json:"min_fans"`
			Zones    []zone `json:"zones"`
		}
		path := "/v1/artists/" + itoa(ar[0]) + "/fan-zones?res=" + itoa(ar[1]) + "&min_fans=1&limit=" + strconv.Itoa(zoneLimit)
		if _, err := c.getJSON(path, &a); err != nil {
			t.Fatal(err)
		}
		if a.ArtistID != ar[0] || int64(a.Res) != ar[1] || a.MinFans != 1 {
			t.Fatalf("%s echoed artist %d res %d min_fans %d", path, a.ArtistID, a.Res, a.MinFans)
		}
		if !slices.Equal(a.Zones, w) {
			t.Errorf("%s: %d zones, want %d; first difference at %d", path, len(a.Zones), len(w), firstDiff(a.Zones, w))
		}
	}
	cells := 0
	for k, n := range want {
		if n < 3 || cells == 50 {
			continue
		}
		cells++
		var a struct {
			Cell string `json:"cell"`
			Res  int    `json:"res"`
			Fans int64  `json:"fans"`
		}
		if _, err := c.getJSON("/v1/cells/"+k.cell+"/fans?artist_id="+itoa(k.artist), &a); err != nil {
			t.Fatal(err)
		}
		if a.Fans != n || a.Cell != k.cell || a.Res != k.res {
			t.Errorf("cell %s of artist %d: %+v, want %d fans at res %d", k.cell, k.artist, a, n, k.res)
		}
	}
	if !t.Failed() {
		t.Logf("checked %d fan zones of %d artists and %d cells: all exact", zones, len(artists), cells)
	}
}

// firstDiff is the first index where a and b differ.
func firstDiff[T comparable](a, b []T) int {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	return min(len(a), len(b))
}
