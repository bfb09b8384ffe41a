package rollups

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/kappa-stream/kappa/events"
	"github.com/kappa-stream/kappa/state"
)

// Delta records (stage 1 → stage 2). Stage 1 sends, per commit interval,
// one record to each stage-2 partition that has deltas: the partition of
// a song or artist is murmur2(PartitionKey) modulo the partition count,
// as if each delta were a record keyed by it. The value is a format byte
// followed by entities, each
//
//	PartitionKey (9 bytes) | uvarint cell count | cells
//
// and each cell, in key order,
//
//	varint day | country (2 bytes) | uvarint plays | uvarint streams
const deltaFormat byte = 2

// entity is one song or artist: a table and an id.
type entity struct {
	table byte
	id    int64
}

func (k cellKey) entity() entity {
	return entity{table: byte(k.hi >> 56), id: int64(k.hi<<8 | k.lo>>56)}
}

func (e entity) append(dst []byte) []byte {
	dst = append(dst, e.table)
	return state.AppendUint64(dst, uint64(e.id))
}

func (e entity) cell(day int32, c events.Country) cellKey {
	return newCellKey(e.table, e.id, day, c)
}

func parseEntity(key []byte) (entity, error) {
	if len(key) != 9 || (key[0] != tableSong && key[0] != tableArtist) {
		return entity{}, fmt.Errorf("rollups: delta key %x: want a table byte and an 8-byte id", key)
	}
	return entity{table: key[0], id: int64(state.Uint64(key, 1))}, nil
}

// appendDeltas appends the block of one entity: its key and the counts
// of cells, which all belong to it.
func appendDeltas(dst []byte, e entity, cells []cell) []byte {
	dst = e.append(dst)
	dst = binary.AppendUvarint(dst, uint64(len(cells)))
	for _, c := range cells {
		day := int32(uint32(c.k.lo >> 24))
		dst = binary.AppendVarint(dst, int64(day))
		dst = append(dst, byte(c.k.lo>>16), byte(c.k.lo>>8))
		dst = binary.AppendUvarint(dst, uint64(c.c.plays))
		dst = binary.AppendUvarint(dst, uint64(c.c.streams))
	}
	return dst
}

var errDelta = errors.New("rollups: malformed delta record")

// forDeltas checks a delta record's value and then calls fn for each of
// its cells; a malformed value calls fn for none.
func forDeltas(v []byte, fn func(e entity, day int32, c events.Country, n counts)) error {
	if err := walkDeltas(v, nil); err != nil {
		return err
	}
	return walkDeltas(v, fn)
}

func walkDeltas(v []byte, fn func(e entity, day int32, c events.Country, n counts)) error {
	if len(v) == 0 || v[0] != deltaFormat {
		return fmt.Errorf("%w: unknown format", errDelta)
	}
	v = v[1:]
	for len(v) > 0 {
		if len(v) < 9 {
			return errDelta
		}
		e, err := parseEntity(v[:9])
		if err != nil {
			return err
		}
		v = v[9:]
		cells, n := binary.Uvarint(v)
		if n <= 0 || cells == 0 {
			return errDelta
		}
		v = v[n:]
		for range cells {
			day, n := binary.Varint(v)
			if n <= 0 || len(v) < n+2 {
				return errDelta
			}
			c := events.Country{v[n], v[n+1]}
			v = v[n+2:]
			plays, n := binary.Uvarint(v)
			if n <= 0 {
				return errDelta
			}
			v = v[n:]
			streams, n := binary.Uvarint(v)
			if n <= 0 {
				return errDelta
			}
			v = v[n:]
			if fn != nil {
				fn(e, int32(day), c, counts{plays: int64(plays), streams: int64(streams)})
			}
		}
	}
	return nil
}
