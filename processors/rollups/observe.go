package rollups

import (
	"github.com/kappa-stream/kappa/events"
)

// RowObserver is told of every day row an Stage2 writes, so that an
// index over the rows (processors/topk) changes in the same transaction,
// store batch and changelog as the rows it indexes.
type RowObserver interface {
	// RowChanged is called by Prepare for each day row it writes, in key
	// order, with the row's value before (nil: none) and after; both are
	// valid only during the call. An error fails the Prepare.
	RowChanged(e Entity, id int64, day int32, old, new []byte) error
}

// Observe makes t tell o of every day row it writes from now on.
func (t *Stage2) Observe(o RowObserver) { t.observer = o }

// DayKey appends the store key of the day row of e's id on day: the id's
// PartitionKey followed by the 4-byte big-endian day, so the rows of one
// id are contiguous and in day order.
func DayKey(dst []byte, e Entity, id int64, day int32) []byte {
	return dayKey(dst, entity{table: e.table(), id: id}, day)
}

// ForRow calls fn for each country of a day row (a value under a DayKey),
// in country order, the listens without a country (the zero Country)
// first.
func ForRow(row []byte, fn func(c events.Country, plays, streams int64)) error {
	return forRow(row, func(e rowEntry) { fn(e.c, e.n.plays, e.n.streams) })
}

func (e entity) public() Entity {
	if e.table == tableArtist {
		return Artist
	}
	return Song
}
