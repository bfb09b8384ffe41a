package rollups

import (
	"encoding/binary"
	"errors"

	"github.com/kappa-stream/kappa/events"
)

// A day row is the value of a table key (song | artist, day): the counts
// of every country with plays that day, in country order (no country,
// two zero bytes, first), each
//
//	country (2 bytes) | uvarint plays | uvarint streams
//
// One row per key and day, rather than one key per country, keeps the
// changelog, the store writes and the reads of stage 2 to one per day a
// song or artist was played in a commit interval.
type rowEntry struct {
	c events.Country
	n counts
}

var errRow = errors.New("rollups: malformed day row")

// forRow calls fn for each entry of row.
func forRow(row []byte, fn func(rowEntry)) error {
	for len(row) > 0 {
		if len(row) < 2 {
			return errRow
		}
		e := rowEntry{c: events.Country{row[0], row[1]}}
		var ok bool
		if e.n, row, ok = readCounts(row[2:]); !ok {
			return errRow
		}
		fn(e)
	}
	return nil
}

func appendRowEntry(dst []byte, e rowEntry) []byte {
	return appendCounts(append(dst, e.c[0], e.c[1]), e.n)
}

// appendCounts appends plays and streams as two uvarints, the form of
// both delta cells and day rows.
func appendCounts(dst []byte, n counts) []byte {
	dst = binary.AppendUvarint(dst, uint64(n.plays))
	return binary.AppendUvarint(dst, uint64(n.streams))
}

// readCounts reads what appendCounts wrote and returns the rest of b.
func readCounts(b []byte) (counts, []byte, bool) {
	plays, n := binary.Uvarint(b)
	if n <= 0 {
		return counts{}, b, false
	}
	streams, m := binary.Uvarint(b[n:])
	if m <= 0 {
		return counts{}, b, false
	}
	return counts{plays: int64(plays), streams: int64(streams)}, b[n+m:], true
}

func countryLess(a, b events.Country) int {
	if a[0] != b[0] {
		return int(a[0]) - int(b[0])
	}
	return int(a[1]) - int(b[1])
}

// mergeRow appends to dst the row holding old's counts plus the deltas of
// cells, which are in country order and all of one key and day. scratch
// is reused for the entries of old.
func mergeRow(dst, old []byte, cells []cell, scratch *[]rowEntry) ([]byte, error) {
	olds := (*scratch)[:0]
	err := forRow(old, func(e rowEntry) { olds = append(olds, e) })
	*scratch = olds
	if err != nil {
		return dst, err
	}
	i := 0
	for _, c := range cells {
		country := events.Country{byte(c.k.lo >> 16), byte(c.k.lo >> 8)}
		for i < len(olds) && countryLess(olds[i].c, country) < 0 {
			dst = appendRowEntry(dst, olds[i])
			i++
		}
		e := rowEntry{c: country, n: c.c}
		if i < len(olds) && olds[i].c == country {
			e.n.add(olds[i].n)
			i++
		}
		dst = appendRowEntry(dst, e)
	}
	for ; i < len(olds); i++ {
		dst = appendRowEntry(dst, olds[i])
	}
	return dst, nil
}
