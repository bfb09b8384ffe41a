package rollups

import (
	"cmp"
	"slices"

	"github.com/kappa-stream/kappa/events"
	"github.com/kappa-stream/kappa/state"
)

// By chooses how Query splits its totals into rows.
type By uint8

const (
	// ByDay gives one row per day that has plays, in day order.
	ByDay By = iota
	// ByCountry gives one row per country that has plays, in country-code
	// order, the listens without a country first.
	ByCountry
)

// Query asks for the plays of one song or artist over the days From..To
// (inclusive, UTC day numbers), optionally of one country only.
type Query struct {
	Entity   Entity
	ID       int64
	From, To int32
	By       By
	Country  events.Country // zero: all countries
}

// Row is one day's or one country's counts.
type Row struct {
	Day     int32          // set when By is ByDay
	Country events.Country // set when By is ByCountry
	Plays   int64
	Streams int64
}

// Result is the answer to a Query: the totals and the rows.
type Result struct {
	Plays, Streams int64
	Rows           []Row
}

// Reader answers queries from a store that Tasks flush into. It is safe for
// concurrent use.
type Reader struct{ s *state.Store }

// NewReader reads the rollups in s.
func NewReader(s *state.Store) *Reader { return &Reader{s: s} }

// Query answers q. An id with no plays gives zeros and no rows.
func (r *Reader) Query(q Query) (Result, error) {
	var res Result
	if q.From > q.To {
		return res, nil
	}
	e := entity{table: q.Entity.table(), id: q.ID}
	lo := dayKey(nil, e, q.From)
	hi := dayKey(nil, e, q.To+1)
	index := map[int64]int{}
	err := r.s.Scan(lo, hi, func(k, v []byte) error {
		day := int32(state.Uint32(k, 9))
		return forRow(v, func(re rowEntry) {
			if !q.Country.IsZero() && re.c != q.Country {
				return
			}
			res.Plays += re.n.plays
			res.Streams += re.n.streams
			row := Row{Day: day}
			group := int64(day)
			if q.By == ByCountry {
				row = Row{Country: re.c}
				group = int64(re.c[0])<<8 | int64(re.c[1])
			}
			i, ok := index[group]
			if !ok {
				i = len(res.Rows)
				index[group] = i
				res.Rows = append(res.Rows, row)
			}
			res.Rows[i].Plays += re.n.plays
			res.Rows[i].Streams += re.n.streams
		})
	})
	if q.By == ByCountry {
		slices.SortFunc(res.Rows, func(a, b Row) int { return cmp.Compare(a.Country.String(), b.Country.String()) })
	}
	return res, err
}
