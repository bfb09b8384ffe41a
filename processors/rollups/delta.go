package rollups

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/kappa-stream/kappa/events"
	"github.com/kappa-stream/kappa/state"
)

// Delta records (stage 1 → stage 2). The key is the table byte and the
// 8-byte big-endian id of one song or artist (PartitionKey); the value is
// a format byte followed by cells in key order, each
//
//	varint day | country (2 bytes) | uvarint plays | uvarint streams
const deltaFormat byte = 1

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

// appendDeltas encodes the counts of cells, which share one entity.
func appendDeltas(dst []byte, cells []cell) []byte {
	dst = append(dst, deltaFormat)
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

// forDeltas calls fn for every cell of a delta record's value.
func forDeltas(v []byte, fn func(day int32, c events.Country, n counts)) error {
	if len(v) == 0 || v[0] != deltaFormat {
		return fmt.Errorf("%w: unknown format", errDelta)
	}
	v = v[1:]
	for len(v) > 0 {
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
		fn(int32(day), c, counts{plays: int64(plays), streams: int64(streams)})
	}
	return nil
}
