package topk

import (
	"bytes"
	"fmt"
	"slices"

	"github.com/kappa-stream/kappa/events"
	"github.com/kappa-stream/kappa/processors/rollups"
	"github.com/kappa-stream/kappa/state"
)

// Check verifies that the rank index of store s and the rollups' day rows
// in it are one-to-one: every positive count of a row (per country, and
// over all countries, of plays and of streams) has exactly the rank key of
// its bucket, and every rank key is such a count's. It reads the whole
// store (for tests and repairs, not for serving) and returns an error
// naming the first difference.
func Check(s *state.Store) error {
	var want [][]byte
	x := NewIndexer()
	for _, e := range []rollups.Entity{rollups.Song, rollups.Artist} {
		prefix := rollups.DayKey(nil, e, 0, 0)[:1]
		err := s.Scan(prefix, state.PrefixEnd(prefix), func(k, v []byte) error {
			if len(k) != 13 {
				return fmt.Errorf("topk: check: row key %x: want 13 bytes", k)
			}
			id, day := int64(state.Uint64(k, 1)), int32(state.Uint32(k, 9))
			if err := x.RowChanged(e, id, day, nil, v); err != nil {
				return err
			}
			for _, m := range x.moves {
				want = append(want, slices.Clone(x.arena[m.start:m.end]))
			}
			x.moves, x.arena = x.moves[:0], x.arena[:0]
			return nil
		})
		if err != nil {
			return err
		}
	}
	slices.SortFunc(want, bytes.Compare)
	i := 0
	err := s.Scan([]byte{tableRank}, []byte{tableRank + 1}, func(k, v []byte) error {
		if len(v) != 0 {
			return fmt.Errorf("topk: check: rank key %s has a value", describe(k))
		}
		if i >= len(want) || !bytes.Equal(k, want[i]) {
			if i < len(want) && bytes.Compare(want[i], k) < 0 {
				return fmt.Errorf("topk: check: rank key %s missing (next present: %s)", describe(want[i]), describe(k))
			}
			return fmt.Errorf("topk: check: rank key %s has no count", describe(k))
		}
		i++
		return nil
	})
	if err != nil {
		return err
	}
	if i < len(want) {
		return fmt.Errorf("topk: check: rank key %s missing (%d of %d absent)", describe(want[i]), len(want)-i, len(want))
	}
	return nil
}

// describe spells out a rank key for error messages.
func describe(k []byte) string {
	if len(k) != rankKeyLen {
		return fmt.Sprintf("%x (bad length)", k)
	}
	ceil, id := parseRank(k)
	c := events.Country{k[6], k[7]}
	country := c.String()
	if c == allCountries {
		country = "all"
	}
	return fmt.Sprintf("%c day %d %s id %d ≤%d plays", k[1], int32(state.Uint32(k, 2)), country, id, ceil)
}
