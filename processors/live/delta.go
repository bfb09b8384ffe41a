package live

import (
	"cmp"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
)

// Delta records (stage 1 → stage 2) share the repartition topic with the
// rollups' deltas; their first byte, Format, tells them apart. The value
// is
//
//	Format | uvarint source partition | 0, or 1 and varint largest event time
//	       | uvarint cell count | cells
//
// and each cell, in key order,
//
//	varint song | uvarint size ms | varint start ms | uvarint plays
//	            | uvarint user count | users
//
// with the users ascending, the first as a uvarint and the others as
// uvarint differences to the one before.
const Format byte = 0x4c

// IsDelta reports whether a record value of the repartition topic is a
// live delta.
func IsDelta(value []byte) bool { return len(value) > 0 && value[0] == Format }

// cellKey is one song's window: its size and start in Unix ms.
type cellKey struct {
	song, size, start int64
}

// compare orders cellKeys as their rows are ordered in the store: by
// window size, then start, then song.
func (k cellKey) compare(o cellKey) int {
	if c := cmp.Compare(k.size, o.size); c != 0 {
		return c
	}
	if c := cmp.Compare(k.start, o.start); c != 0 {
		return c
	}
	return cmp.Compare(k.song, o.song)
}

type cell struct {
	k     cellKey
	plays uint64
	users []int64
}

// cells accumulates plays and users per cellKey between Prepares.
type cells struct {
	index map[cellKey]int32 // position of a pending cell in list
	list  []cell
}

func (cs *cells) add(k cellKey, plays uint64, users ...int64) {
	if cs.index == nil {
		cs.index = make(map[cellKey]int32)
	}
	i, ok := cs.index[k]
	if !ok {
		i = int32(len(cs.list))
		cs.index[k] = i
		// NB: reuse the users slice of a cell from an earlier interval.
		if len(cs.list) < cap(cs.list) {
			cs.list = cs.list[:i+1]
			cs.list[i] = cell{k: k, users: cs.list[i].users[:0]}
		} else {
			cs.list = append(cs.list, cell{k: k})
		}
	}
	c := &cs.list[i]
	c.plays += plays
	c.users = append(c.users, users...)
}

// sorted returns the pending cells in store order, each with its users
// ascending and distinct.
func (cs *cells) sorted() []cell {
	slices.SortFunc(cs.list, func(x, y cell) int { return x.k.compare(y.k) })
	for i := range cs.list {
		slices.Sort(cs.list[i].users)
		cs.list[i].users = slices.Compact(cs.list[i].users)
	}
	return cs.list
}

func (cs *cells) len() int { return len(cs.list) }

func (cs *cells) reset() {
	cs.list = cs.list[:0]
	clear(cs.index)
}

// appendDeltaHeader starts a delta record of source partition; maxTS is
// written when seen.
func appendDeltaHeader(dst []byte, source int32, maxTS int64, seen bool, n int) []byte {
	dst = append(dst, Format)
	dst = binary.AppendUvarint(dst, uint64(source))
	if seen {
		dst = binary.AppendVarint(append(dst, 1), maxTS)
	} else {
		dst = append(dst, 0)
	}
	return binary.AppendUvarint(dst, uint64(n))
}

// appendCell appends one cell; its users are ascending and distinct.
func appendCell(dst []byte, c *cell) []byte {
	dst = binary.AppendVarint(dst, c.k.song)
	dst = binary.AppendUvarint(dst, uint64(c.k.size))
	dst = binary.AppendVarint(dst, c.k.start)
	dst = binary.AppendUvarint(dst, c.plays)
	dst = binary.AppendUvarint(dst, uint64(len(c.users)))
	prev := int64(0)
	for _, u := range c.users {
		dst = binary.AppendUvarint(dst, uint64(u-prev))
		prev = u
	}
	return dst
}

// delta is a parsed delta record. Its cells' users share one slice.
type delta struct {
	source int32
	maxTS  int64
	seen   bool
	cells  []cell
	users  []int64
}

var errShort = errors.New("truncated")

// parse reads a delta record into d, reusing its slices.
func (d *delta) parse(v []byte) error {
	if err := d.read(v); err != nil {
		return fmt.Errorf("live: delta record: %w", err)
	}
	return nil
}

func (d *delta) read(v []byte) error {
	d.cells, d.users = d.cells[:0], d.users[:0]
	if !IsDelta(v) {
		return errors.New("not a live delta")
	}
	r := reader{b: v[1:]}
	source := r.uvarint()
	d.source = int32(source)
	switch r.byte() {
	case 0:
		d.seen = false
	case 1:
		d.seen, d.maxTS = true, r.varint()
	default:
		return errors.New("bad watermark flag")
	}
	n := r.uvarint()
	if r.err != nil {
		return r.err
	}
	if source > 1<<31-1 || n > uint64(len(r.b)) {
		return errors.New("bad source partition or cell count")
	}
	for range n {
		c := cell{k: cellKey{song: r.varint(), size: int64(r.uvarint()), start: r.varint()}, plays: r.uvarint()}
		m := r.uvarint()
		if r.err != nil || m > uint64(len(r.b)) {
			return errShort
		}
		from := len(d.users)
		u := int64(0)
		for range m {
			u += int64(r.uvarint())
			d.users = append(d.users, u)
		}
		if r.err != nil {
			return r.err
		}
		c.users = d.users[from:len(d.users):len(d.users)]
		d.cells = append(d.cells, c)
	}
	if len(r.b) != 0 {
		return errors.New("trailing bytes")
	}
	return nil
}

// reader reads varints, remembering the first error.
type reader struct {
	b   []byte
	err error
}

func (r *reader) byte() byte {
	if r.err != nil || len(r.b) == 0 {
		r.err = errShort
		return 0
	}
	c := r.b[0]
	r.b = r.b[1:]
	return c
}

func (r *reader) uvarint() uint64 {
	if r.err != nil {
		return 0
	}
	v, n := binary.Uvarint(r.b)
	if n <= 0 {
		r.err = errShort
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *reader) varint() int64 {
	if r.err != nil {
		return 0
	}
	v, n := binary.Varint(r.b)
	if n <= 0 {
		r.err = errShort
		return 0
	}
	r.b = r.b[n:]
	return v
}
