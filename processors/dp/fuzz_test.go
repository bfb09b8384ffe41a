package dp

import (
	"reflect"
	"testing"

	"github.com/uber/h3-go/v4"

	"github.com/kappa-stream/kappa/events"
)

// FuzzParseRecord: parsing any record never panics, and what parses
// encodes to a record that parses the same (varints may have been
// written longer than needed).
func FuzzParseRecord(f *testing.F) {
	var s1 Stage1
	s1.source, s1.maxTS, s1.seen = 3, 1_700_000_000_000, true
	rec := s1.head(nil, 0, 2, true)
	rec = appendCell(rec, cellKey{kind: SongPlays, id: 7, day: 19000, country: events.Country{'S', 'E'}}, 4)
	rec = appendCell(rec, cellKey{kind: ArtistFans, id: 9, day: 19000, cell: h3.Cell(0x872a1072bffffff)}, 1)
	f.Add(rec)
	f.Add(s1.head(nil, 0, 0, false))
	f.Add([]byte{Format, 0, 1})
	f.Fuzz(func(t *testing.T, v []byte) {
		src, ts, has, es, err := parseRecord(v)
		if err != nil {
			return
		}
		s := Stage1{source: src, maxTS: ts, seen: has}
		back := s.head(nil, 0, len(es), has)
		for _, e := range es {
			back = appendCell(back, e.k, e.n)
		}
		src2, ts2, has2, es2, err := parseRecord(back)
		if err != nil || src2 != src || ts2 != ts || has2 != has || !reflect.DeepEqual(es2, es) {
			t.Fatalf("%x parses, encodes as %x, which parses differently (%v)", v, back, err)
		}
	})
}

// FuzzParseUserDay: parsing any user-day state never panics, and what
// parses encodes to a state that parses the same.
func FuzzParseUserDay(f *testing.F) {
	u := userDay{songs: []keptSong{{id: 7, country: events.Country{'F', 'R'}, plays: 2}}, artists: []keptArtist{{id: 3}}}
	f.Add(u.append(nil))
	f.Add([]byte{0, 0})
	f.Fuzz(func(t *testing.T, v []byte) {
		u, err := parseUserDay(v)
		if err != nil {
			return
		}
		back := u.append(nil)
		if u2, err := parseUserDay(back); err != nil || !reflect.DeepEqual(u2, u) {
			t.Fatalf("%x parses, encodes as %x, which parses differently (%v)", v, back, err)
		}
	})
}
