package serve

import (
	"encoding/base64"
	"math"
	"slices"
	"strconv"
	"strings"

	"github.com/uber/h3-go/v4"

	"github.com/kappa-stream/kappa/processors/fans"
)

// A fan-zones cursor names the last zone of a page: the zones are sorted
// by fans descending, then cell, so the next page starts after it
// whatever changed in between (a zone that gained fans since may be
// listed twice or skipped, as in any keyset pagination). It is opaque to
// clients: base64url of "fans:cell".

// zoneCursor is the cursor of the page that follows zone z.
func zoneCursor(z fans.Zone) string {
	return base64.RawURLEncoding.EncodeToString([]byte(strconv.FormatInt(z.Fans, 10) + ":" + z.Cell.String()))
}

// parseZoneCursor reads a cursor made by zoneCursor; "" is none (nil).
func parseZoneCursor(s string) (*fans.Zone, error) {
	if s == "" {
		return nil, nil
	}
	bad := badRequest("cursor " + strconv.Quote(s) + " is not one this API gave (use the answer's next as it is)")
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return nil, bad
	}
	n, cell, ok := strings.Cut(string(b), ":")
	fansN, err := strconv.ParseInt(n, 10, 64)
	c := h3.Cell(h3.IndexFromString(cell))
	if !ok || err != nil || fansN < 1 || len(cell) != 15 || !c.IsValid() {
		return nil, bad
	}
	return &fans.Zone{Cell: c, Fans: fansN}, nil
}

// zonePage returns the page of zs (sorted by fans descending, then cell)
// of at most limit zones after the zone after (nil: from the first), and
// the cursor of the next page ("" on the last).
func zonePage(zs []fans.Zone, after *fans.Zone, limit int) ([]fans.Zone, string) {
	if after != nil {
		i, _ := slices.BinarySearchFunc(zs, *after, func(z, after fans.Zone) int {
			if z.Fans != after.Fans {
				if z.Fans > after.Fans {
					return -1
				}
				return 1
			}
			if z.Cell <= after.Cell {
				return -1
			}
			return 1
		})
		zs = zs[i:]
	}
	if len(zs) <= limit {
		return zs, ""
	}
	return zs[:limit], zoneCursor(zs[limit-1])
}

// allZones is the limit that makes fans.Zones return every zone.
const allZones = math.MaxInt
