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
// in it are one-to-one: every positive count of plays of an id in a week
// (the sum of its day rows, per country and over all countries) has
// exactly the rank key of its bucket, and every rank key is such a
// count's. It reads the whole
// store (for tests and repairs, not for serving) and returns an error
// naming the first difference.
func Check(s *state.Store) error {
	var want [][]byte
	type week struct {
		e  rollups.Entity
		id int64
		w  int32
		c  events.Country
	}
	plays := map[week]int64{}
	for _, e := range []rollups.Entity{rollups.Song, rollups.Artist} {
		prefix := rollups.DayKey(nil, e, 0, 0)[:1]
		err := s.Scan(prefix, state.PrefixEnd(prefix), func(k, v []byte) error {
			if len(k) != 13 {
				return fmt.Errorf("topk: check: row key %x: want 13 bytes", k)
			}
			id, w := int64(state.Uint64(k, 1)), weekOf(int32(state.Uint32(k, 9)))
			return rollups.ForRow(v, func(c events.Country, p, _ int64) {
				if !c.IsZero() {
					plays[week{e, id, w, c}] += p
				}
				plays[week{e, id, w, events.Country{}}] += p
			})
		})
		if err != nil {
			return err
		}
	}
	for k, n := range plays {
		if n > 0 {
			want = append(want, rankKey(nil, k.e, k.w, k.c, n, k.id))
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
	if c.IsZero() {
		country = "all"
	}
	return fmt.Sprintf("%c week %d %s id %d ≤%d plays", k[1], int32(state.Uint32(k, 2)), country, id, ceil)
}

// CheckArtistSongs verifies that the artist-songs rows of store s add up
// to the rollups' artist rows in it: per (artist, day, country), the sum
// over the artist's songs equals the artist's row. The two are written
// from different records, which stage 2 may commit in different
// transactions, so they agree once both have caught up with the same
// listens (in tests), not at every commit.
func CheckArtistSongs(s *state.Store) error {
	type cell struct {
		artist int64
		day    int32
		c      events.Country
	}
	sums := map[cell]rowCount{}
	err := s.Scan([]byte{tableArtistSongs}, []byte{tableArtistSongs + 1}, func(k, v []byte) error {
		artist, day := int64(state.Uint64(k, 1)), int32(state.Uint32(k, 9))
		return rollups.ForRow(v, func(c events.Country, plays, streams int64) {
			x := sums[cell{artist, day, c}]
			x.add(rowCount{plays: plays, streams: streams})
			sums[cell{artist, day, c}] = x
		})
	})
	if err != nil {
		return err
	}
	var bad error
	prefix := rollups.DayKey(nil, rollups.Artist, 0, 0)[:1]
	err = s.Scan(prefix, state.PrefixEnd(prefix), func(k, v []byte) error {
		artist, day := int64(state.Uint64(k, 1)), int32(state.Uint32(k, 9))
		return rollups.ForRow(v, func(c events.Country, plays, streams int64) {
			key := cell{artist, day, c}
			if got := sums[key]; got.plays != plays || got.streams != streams {
				bad = fmt.Errorf("topk: check: artist %d day %d country %q: songs sum to %d/%d, the artist row has %d/%d",
					artist, day, c, got.plays, got.streams, plays, streams)
			}
			delete(sums, key)
		})
	})
	if err == nil {
		err = bad
	}
	if err != nil {
		return err
	}
	for k, v := range sums {
		return fmt.Errorf("topk: check: artist %d day %d country %q: songs sum to %d/%d, the artist has no row", k.artist, k.day, k.c, v.plays, v.streams)
	}
	return nil
}
