package dp

import (
	"encoding/binary"
	"errors"
	"fmt"
	"slices"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/uber/h3-go/v4"

	"github.com/kappa-stream/kappa/events"
	"github.com/kappa-stream/kappa/state"
	"github.com/kappa-stream/kappa/topology"
)

// Stage2 adds the bounded counts to the cells of one partition of the
// repartition topic and keeps each stage-1 partition's largest event
// time.
type Stage2 struct {
	store   *state.Store
	cells   map[cellKey]int64
	sources map[int32]int64
}

// NewStage2 returns the part of a stage-2 partition over its store.
func NewStage2(s *state.Store) *Stage2 {
	return &Stage2{store: s, cells: map[cellKey]int64{}, sources: map[int32]int64{}}
}

var errRecord = errors.New("dp: malformed record")

type entry struct {
	k cellKey
	n int64
}

// parseRecord reads a record's value: its source, its event time (when
// has) and its entries.
func parseRecord(v []byte) (source int32, ts int64, has bool, es []entry, err error) {
	if len(v) < 3 || v[0] != Format {
		return 0, 0, false, nil, errRecord
	}
	src, w := binary.Uvarint(v[1:])
	if w <= 0 || src > 1<<31-1 || len(v) < 1+w+1 {
		return 0, 0, false, nil, errRecord
	}
	v = v[1+w:]
	switch v[0] {
	case 0:
		v = v[1:]
	case 1:
		if len(v) < 9 {
			return 0, 0, false, nil, errRecord
		}
		ts, has = int64(state.Uint64(v, 1)), true
		v = v[9:]
	default:
		return 0, 0, false, nil, errRecord
	}
	for len(v) > 0 {
		k := cellKey{kind: Kind(v[0])}
		if !k.kind.valid() {
			return 0, 0, false, nil, errRecord
		}
		id, w := binary.Uvarint(v[1:])
		if w <= 0 || id == 0 || id > 1<<63-1 {
			return 0, 0, false, nil, errRecord
		}
		v = v[1+w:]
		day, w := binary.Varint(v)
		if w <= 0 || day < 0 || day > 1<<31-1 {
			return 0, 0, false, nil, errRecord
		}
		k.id, k.day = int64(id), int32(day)
		v = v[w:]
		if k.kind == ArtistFans {
			if len(v) < 8 {
				return 0, 0, false, nil, errRecord
			}
			k.cell = h3.Cell(state.Uint64(v, 0))
			v = v[8:]
		} else {
			if len(v) < 2 {
				return 0, 0, false, nil, errRecord
			}
			k.country = events.Country{v[0], v[1]}
			v = v[2:]
		}
		n, w := binary.Uvarint(v)
		if w <= 0 || n == 0 || n > 1<<62 {
			return 0, 0, false, nil, errRecord
		}
		v = v[w:]
		es = append(es, entry{k, int64(n)})
	}
	return int32(src), ts, has, es, nil
}

// Process takes one record of stage 1.
func (t *Stage2) Process(rec *kgo.Record) error {
	src, ts, has, es, err := parseRecord(rec.Value)
	if err != nil {
		return err
	}
	for _, e := range es {
		t.cells[e.k] += e.n
	}
	if has {
		if old, ok := t.sources[src]; !ok || ts > old {
			t.sources[src] = ts
		}
	}
	return nil
}

// Prepare adds the counts to the cells and raises the sources' event
// times.
func (t *Stage2) Prepare(out *topology.Output) error {
	keys := make([]cellKey, 0, len(t.cells))
	for k := range t.cells {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, compareCells)
	var kb, vb []byte
	for _, k := range keys {
		kb = k.append(kb[:0])
		old, err := readCount(t.store, kb)
		if err != nil {
			return err
		}
		vb = binary.AppendUvarint(vb[:0], uint64(old+t.cells[k]))
		out.Put(kb, vb)
	}
	clear(t.cells)
	for src, ts := range t.sources {
		kb = state.AppendUint32(append(kb[:0], tableSource), uint32(src))
		v, found, err := t.store.Get(nil, kb)
		if err != nil {
			return fmt.Errorf("dp: read source time: %w", err)
		}
		if found && len(v) == 8 && int64(state.Uint64(v, 0)) >= ts {
			continue
		}
		out.Put(kb, state.AppendUint64(nil, uint64(ts)))
	}
	clear(t.sources)
	return nil
}

func readCount(s *state.Store, key []byte) (int64, error) {
	v, found, err := s.Get(nil, key)
	if err != nil {
		return 0, fmt.Errorf("dp: read cell: %w", err)
	}
	if !found {
		return 0, nil
	}
	n, w := binary.Uvarint(v)
	if w <= 0 {
		return 0, fmt.Errorf("dp: cell %x: malformed count", key)
	}
	return int64(n), nil
}
