package dp

import (
	"encoding/binary"
	"fmt"

	"github.com/uber/h3-go/v4"

	"github.com/kappa-stream/kappa/events"
	"github.com/kappa-stream/kappa/state"
)

// Watermark reads from a stage-2 store the smallest of the stage-1
// partitions' largest event times, as of its last commit; ok is false
// until all sources (Config.Sources) have sent theirs. NB: a partition
// of listens that never had a listen holds every day open.
func Watermark(s *state.Store, sources int32) (wm int64, ok bool, err error) {
	n := int32(0)
	err = s.Scan([]byte{tableSource}, []byte{tableSource + 1}, func(k, v []byte) error {
		if len(k) != 5 || len(v) != 8 {
			return fmt.Errorf("dp: malformed source time %x", k)
		}
		if int32(state.Uint32(k, 1)) >= sources {
			return nil // a partition of an earlier layout
		}
		ts := int64(state.Uint64(v, 0))
		if n == 0 || ts < wm {
			wm = ts
		}
		n++
		return nil
	})
	return wm, err == nil && n == sources, err
}

// FanCells reads the fans of artist on day in each of cells from the
// stage-2 store of the artist's partition (absent cells count 0).
func FanCells(s *state.Store, artist int64, day int32, cells []h3.Cell) (map[h3.Cell]int64, error) {
	out := make(map[h3.Cell]int64, len(cells))
	var key []byte
	for _, c := range cells {
		key = cellKey{kind: ArtistFans, id: artist, day: day, cell: c}.append(key[:0])
		n, err := readCount(s, key)
		if err != nil {
			return nil, err
		}
		out[c] = n
	}
	return out, nil
}

// Counts reads the cells of one table (not ArtistFans), id and day from the stage-2 store
// of the id's partition: the bounded count per country (the zero Country
// for listens without one). Absent countries count 0.
func Counts(s *state.Store, k Kind, id int64, day int32) (map[events.Country]int64, error) {
	lo := cellKey{kind: k, id: id, day: day}.append(nil)
	lo = lo[:len(lo)-2]
	hi := cellKey{kind: k, id: id, day: day + 1}.append(nil)
	hi = hi[:len(hi)-2]
	out := map[events.Country]int64{}
	err := s.Scan(lo, hi, func(key, v []byte) error {
		n, w := binary.Uvarint(v)
		if w <= 0 || len(key) != len(lo)+2 {
			return fmt.Errorf("dp: malformed cell %x", key)
		}
		out[events.Country{key[len(lo)], key[len(lo)+1]}] = int64(n)
		return nil
	})
	return out, err
}

// FanCellsAt reads every fan cell of artist on day at resolution res
// (those with fans) from the stage-2 store of the artist's partition.
func FanCellsAt(s *state.Store, artist int64, day int32, res int) (map[h3.Cell]int64, error) {
	lo := cellKey{kind: ArtistFans, id: artist, day: day}.append(nil)
	lo = lo[:len(lo)-8]
	hi := cellKey{kind: ArtistFans, id: artist, day: day + 1}.append(nil)
	hi = hi[:len(hi)-8]
	out := map[h3.Cell]int64{}
	err := s.Scan(lo, hi, func(key, v []byte) error {
		n, w := binary.Uvarint(v)
		if w <= 0 || len(key) != len(lo)+8 {
			return fmt.Errorf("dp: malformed fan cell %x", key)
		}
		if c := h3.Cell(state.Uint64(key, len(lo))); c.Resolution() == res {
			out[c] = int64(n)
		}
		return nil
	})
	return out, err
}
