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
	countryTable, dayTable := q.Entity.tables()
	if q.By == ByDay && q.Country.IsZero() {
		lo := dayKeyBytes(nil, dayTable, q.ID, q.From)
		hi := dayKeyBytes(nil, dayTable, q.ID, q.To+1)
		err := r.s.Scan(lo, hi, func(k, v []byte) error {
			row := Row{Day: int32(state.Uint32(k, 9)), Plays: state.Counter(v, 0), Streams: state.Counter(v, 1)}
			res.add(row)
			return nil
		})
		return res, err
	}
	lo := dayKeyBytes(nil, countryTable, q.ID, q.From)
	hi := dayKeyBytes(nil, countryTable, q.ID, q.To+1)
	byCountry := map[events.Country]int{}
	err := r.s.Scan(lo, hi, func(k, v []byte) error {
		c := events.Country{k[13], k[14]}
		if !q.Country.IsZero() && c != q.Country {
			return nil
		}
		row := Row{Plays: state.Counter(v, 0), Streams: state.Counter(v, 1)}
		res.Plays += row.Plays
		res.Streams += row.Streams
		if q.By == ByDay {
			row.Day = int32(state.Uint32(k, 9))
			res.Rows = append(res.Rows, row)
			return nil
		}
		i, ok := byCountry[c]
		if !ok {
			i = len(res.Rows)
			byCountry[c] = i
			res.Rows = append(res.Rows, Row{Country: c})
		}
		res.Rows[i].Plays += row.Plays
		res.Rows[i].Streams += row.Streams
		return nil
	})
	if q.By == ByCountry {
		slices.SortFunc(res.Rows, func(a, b Row) int { return cmp.Compare(a.Country.String(), b.Country.String()) })
	}
	return res, err
}

func (res *Result) add(row Row) {
	res.Plays += row.Plays
	res.Streams += row.Streams
	res.Rows = append(res.Rows, row)
}
