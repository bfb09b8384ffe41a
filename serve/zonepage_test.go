package serve

import (
	"cmp"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/uber/h3-go/v4"

	"github.com/kappa-stream/kappa/processors/fans"
)

// TestZonePages pages through zones with many ties on fans, at several
// limits: the pages, each cursor read back, list every zone once, in
// order; a cursor that is not one fails.
func TestZonePages(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	var zs []fans.Zone
	seen := map[h3.Cell]bool{}
	for len(zs) < 500 {
		c := h3.LatLngToCell(h3.NewLatLng(rng.Float64()*120-60, rng.Float64()*340-170), 9)
		if seen[c] {
			continue
		}
		seen[c] = true
		zs = append(zs, fans.Zone{Cell: c, Fans: 1 + rng.Int64N(20)})
	}
	slices.SortFunc(zs, func(a, b fans.Zone) int { return cmp.Or(cmp.Compare(b.Fans, a.Fans), cmp.Compare(a.Cell, b.Cell)) })
	for _, limit := range []int{1, 7, 100, 499, 500, 501} {
		var got []fans.Zone
		var after *fans.Zone
		for pages := 0; ; pages++ {
			if pages > len(zs) {
				t.Fatalf("limit %d: no last page", limit)
			}
			page, next := zonePage(zs, after, limit)
			if len(page) > limit || (next != "" && len(page) != limit) {
				t.Fatalf("limit %d: a page of %d, next %q", limit, len(page), next)
			}
			got = append(got, page...)
			if next == "" {
				break
			}
			var err error
			if after, err = parseZoneCursor(next); err != nil {
				t.Fatalf("limit %d: cursor %q: %v", limit, next, err)
			}
		}
		if !slices.Equal(got, zs) {
			t.Fatalf("limit %d: pages list %d zones, not the %d in order", limit, len(got), len(zs))
		}
	}
	for _, bad := range []string{"x", "MTI6", zoneCursor(fans.Zone{Cell: zs[0].Cell, Fans: 0}), "%%"} {
		if z, err := parseZoneCursor(bad); err == nil {
			t.Errorf("cursor %q read as %+v", bad, z)
		}
	}
}
