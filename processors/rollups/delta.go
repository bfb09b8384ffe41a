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
		dst = binary.AppendVarint(dst, int64(c.k.day()))
		dst = appendCounts(append(dst, byte(c.k.lo>>16), byte(c.k.lo>>8)), c.c)
	}
	return dst
}

// delta is one cell of a delta record.
type delta struct {
	k cellKey
	n counts
}

var errDelta = errors.New("rollups: malformed delta record")

// parseDeltas appends the cells of a delta record's value to dst. On a
// malformed value it returns dst unchanged and an error.
func parseDeltas(dst []delta, v []byte) ([]delta, error) {
	if len(v) == 0 || v[0] != deltaFormat {
		return dst, fmt.Errorf("%w: unknown format", errDelta)
	}
	start := len(dst)
	v = v[1:]
	for len(v) > 0 {
		if len(v) < 9 {
			return dst[:start], errDelta
		}
		e, err := parseEntity(v[:9])
		if err != nil {
			return dst[:start], err
		}
		v = v[9:]
		cells, n := binary.Uvarint(v)
		if n <= 0 || cells == 0 {
			return dst[:start], errDelta
		}
		v = v[n:]
		for range cells {
			day, n := binary.Varint(v)
			if n <= 0 || len(v) < n+2 {
				return dst[:start], errDelta
			}
			c := events.Country{v[n], v[n+1]}
			cn, rest, ok := readCounts(v[n+2:])
			if !ok {
				return dst[:start], errDelta
			}
			v = rest
			dst = append(dst, delta{k: e.cell(int32(day), c), n: cn})
		}
	}
	return dst, nil
}
