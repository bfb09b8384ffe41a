package generate

import (
	"math"
	"math/rand/v2"
	"strconv"
	"testing"
	"time"
)

func TestAppendTS(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	tests := []struct {
		form   int
		layout string
	}{
		{tsUTC, "2006-01-02T15:04:05Z07:00"},
		{tsUTCMillis, "2006-01-02T15:04:05.000Z07:00"},
		{tsOffset, "2006-01-02T15:04:05-07:00"},
	}
	offsets := []int32{0, 60, -300, 330, 345, -210, 720, -720, 840}
	edges := []int64{0, 1, 951_782_400_000, 4_107_542_399_999, 1_772_323_200_000, 253_402_300_799_999 - 14*3_600_000}
	for _, tt := range tests {
		var cache dateCache
		for k := range 20_000 {
			ms := r.Int64N(253_402_300_799_999 - 14*3_600_000) // through 9999
			if k%3 == 0 {
				ms = 1_772_323_200_000 + int64(k)*1_000_003 // often the same day
			}
			if k < len(edges) {
				ms = edges[k]
			}
			off := offsets[r.IntN(len(offsets))]
			zone := time.UTC
			if tt.form == tsOffset {
				zone = time.FixedZone("", int(off)*60)
			}
			want := `"` + time.UnixMilli(ms).In(zone).Format(tt.layout) + `"`
			c := &cache
			if k%2 == 0 {
				c = nil
			}
			if got := string(appendTS(nil, c, ms, tt.form, off)); got != want {
				t.Fatalf("appendTS(%d, form %d, %d) = %s, want %s", ms, tt.form, off, got, want)
			}
		}
	}
	if got := string(appendTS(nil, nil, 1772323200123, tsEpochMs, 0)); got != "1772323200123" {
		t.Errorf("epoch ms = %s", got)
	}
}

func TestAppendFixed6(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	for k := range 100_000 {
		x := (r.Float64()*2 - 1) * 180
		if k < 6 {
			x = []float64{0, -0, 180, -180, 0.0000004, -0.0000004}[k]
		}
		s := string(appendFixed6(nil, x))
		got, err := strconv.ParseFloat(s, 64)
		if err != nil || len(s) < 8 || s[len(s)-7] != '.' || math.Abs(got-x) > 5.0000001e-7 {
			t.Fatalf("appendFixed6(%v) = %q", x, s)
		}
	}
}

func TestPerm(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	for _, n := range []uint64{1, 2, 3, 10, 97, 100, 1024, 5_000} {
		p := newPerm(n, r)
		seen := make([]bool, n)
		for i := range n {
			y := p.at(i)
			if y >= n || seen[y] {
				t.Fatalf("n=%d: at(%d) = %d repeats or out of range", n, i, y)
			}
			seen[y] = true
			if p.inv(y) != i {
				t.Fatalf("n=%d: inv(at(%d)) = %d", n, i, p.inv(y))
			}
		}
	}
}

func TestCatalog(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 8))
	for _, tt := range []struct{ songs, artists uint64 }{{1, 1}, {10, 10}, {10, 3}, {200_000, 5_000}} {
		c := newCatalog(tt.songs, tt.artists, r)
		if c.off[tt.artists] != tt.songs {
			t.Fatalf("%+v: songs laid out %d", tt, c.off[tt.artists])
		}
		for a := range tt.artists {
			if c.off[a+1] <= c.off[a] {
				t.Fatalf("%+v: artist rank %d owns no song", tt, a)
			}
			if tt.artists > 1 && a > 0 && c.off[a+1]-c.off[a] > c.off[1]-c.off[0] {
				t.Fatalf("%+v: artist rank %d owns more than the top artist", tt, a)
			}
		}
		for k := range 10_000 {
			u := float64(k) / 10_000
			if k%2 == 1 {
				u = r.Float64()
			}
			if got, want := c.favouriteRank(u), c.searchCDF(u, 0, tt.artists-1); got != want {
				t.Fatalf("%+v: favouriteRank(%v) = %d, want %d", tt, u, got, want)
			}
		}
		for pos := range tt.songs {
			if got, want := c.rankOf(pos), c.searchOff(pos, 0, tt.artists-1); got != want {
				t.Fatalf("%+v: rankOf(%d) = %d, want %d", tt, pos, got, want)
			}
			if rk := c.rankOf(pos); pos < c.off[rk] || pos >= c.off[rk+1] {
				t.Fatalf("%+v: rankOf(%d) = %d", tt, pos, rk)
			}
			if id := c.songIDOf(pos); c.positionOf(id) != pos {
				t.Fatalf("%+v: position of song %d", tt, id)
			}
		}
	}
}
