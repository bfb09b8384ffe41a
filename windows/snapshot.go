package windows

import (
	"cmp"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"reflect"
	"slices"
	"time"
)

// snapshotVersion is the first byte of a snapshot.
const snapshotVersion = 1

// MarshalBinary encodes the Tracker's state: its window spec, the
// watermarks of its partitions and of the task, the open panes and the
// closed panes not yet expired. It leaves out the counters of Stats and
// the processing times of Tick. Equal states encode to equal bytes.
//
// Save it in the same batch as the input offsets it reflects; after a
// restart, UnmarshalBinary and replay from those offsets give the same
// decisions and the same closes as the first run.
func (t *Tracker[K]) MarshalBinary() ([]byte, error) {
	b := []byte{snapshotVersion, byte(t.spec.Kind)}
	b = binary.AppendUvarint(b, uint64(t.size))
	b = binary.AppendUvarint(b, uint64(t.adv))
	b = binary.AppendUvarint(b, uint64(t.gap))
	b = binary.AppendVarint(b, t.wms.task)
	b = binary.AppendUvarint(b, uint64(len(t.wms.parts)))
	for _, p := range t.wms.parts {
		b = binary.AppendVarint(b, int64(p.id))
		b = binary.AppendVarint(b, p.wm)
	}
	if t.spec.Kind == KindSession {
		keys := make([]K, 0, len(t.keys))
		for k, ks := range t.keys {
			if len(ks.open) > 0 {
				keys = append(keys, k)
			}
		}
		slices.Sort(keys)
		b = binary.AppendUvarint(b, uint64(len(keys)))
		for _, k := range keys {
			b = appendKey(b, k)
			b = appendWindows(b, t.keys[k].open)
		}
	} else {
		b = binary.AppendUvarint(b, uint64(len(t.open)))
		prev := int64(0)
		for _, s := range t.open {
			b = binary.AppendVarint(b, (s-prev)/t.adv) // NB: exact, starts are multiples of adv
			prev = s
		}
	}
	b = binary.AppendUvarint(b, uint64(len(t.retained)))
	prev := int64(0)
	for _, p := range t.retained {
		if t.spec.Kind == KindSession {
			b = appendKey(b, p.Key)
		}
		b = binary.AppendVarint(b, p.Window.Start-prev)
		b = binary.AppendUvarint(b, uint64(p.Window.End-p.Window.Start))
		prev = p.Window.Start
	}
	return b, nil
}

func appendWindows(b []byte, ws []Window) []byte {
	b = binary.AppendUvarint(b, uint64(len(ws)))
	prev := int64(0)
	for _, w := range ws {
		b = binary.AppendVarint(b, w.Start-prev)
		b = binary.AppendUvarint(b, uint64(w.End-w.Start))
		prev = w.Start
	}
	return b
}

// ErrSnapshot is wrapped by the errors of UnmarshalBinary.
var ErrSnapshot = errors.New("windows: bad snapshot")

// UnmarshalBinary replaces the Tracker's state by the one MarshalBinary
// encoded in data, from a Tracker with the same window spec (Grace,
// Retention and the other settings may differ). Its Stats are kept; the
// processing time restarts at the next Tick. On error the Tracker is
// unchanged.
func (t *Tracker[K]) UnmarshalBinary(data []byte) error {
	r := reader{b: data}
	if v := r.byte(); v != snapshotVersion && r.err == nil {
		return fmt.Errorf("%w: version %d", ErrSnapshot, v)
	}
	spec := Spec{Kind: Kind(r.byte())}
	size, adv, gap := r.int(), r.int(), r.int()
	if r.err == nil && (spec.Kind != t.spec.Kind || size != t.size || adv != t.adv || gap != t.gap) {
		return fmt.Errorf("%w: window kind %s size %dms advance %dms gap %dms, not %s",
			ErrSnapshot, spec.Kind, size, adv, gap, t.spec)
	}
	wms := newWatermarks(t.wms.lateness, t.wms.idle)
	wms.task = r.varint()
	for n := r.count(2); n > 0 && r.err == nil; n-- {
		id, wm := r.varint(), r.varint()
		if id < math.MinInt32 || id > math.MaxInt32 || (len(wms.parts) > 0 && int32(id) <= wms.parts[len(wms.parts)-1].id) {
			r.fail("partitions not ascending")
		}
		wms.parts = append(wms.parts, partition{id: int32(id), wm: wm})
	}
	var keys map[K]*keyState
	var due dueHeap[K]
	var open []int64
	if t.spec.Kind == KindSession {
		keys = make(map[K]*keyState)
		var prevKey K
		for i, n := 0, r.count(2); i < n && r.err == nil; i++ {
			k := readKey[K](&r)
			if i > 0 && cmp.Compare(k, prevKey) <= 0 {
				r.fail("keys not ascending")
			}
			prevKey = k
			ks := &keyState{open: r.windows()}
			if len(ks.open) == 0 {
				r.fail("key without sessions")
			}
			keys[k] = ks
			for _, w := range ks.open {
				due.push(Pane[K]{Key: k, Window: w})
			}
		}
	} else {
		prev := int64(0)
		for i, n := 0, r.count(1); i < n && r.err == nil; i++ {
			d := r.varint()
			if (i > 0 && d <= 0) || d < (MinTime-maxSpan)/t.adv || d > (MaxTime+maxSpan)/t.adv {
				r.fail("windows not ascending")
			}
			prev = r.inRange(r.add(prev, d*t.adv))
			open = append(open, prev)
		}
	}
	var retained []Pane[K]
	prev := int64(0)
	for n := r.count(2); n > 0 && r.err == nil; n-- {
		var p Pane[K]
		if t.spec.Kind == KindSession {
			p.Key = readKey[K](&r)
		}
		p.Window.Start = r.time(prev)
		p.Window.End = r.end(p.Window.Start)
		prev = p.Window.Start
		if len(retained) > 0 && comparePanes(retained[len(retained)-1], p) >= 0 {
			r.fail("closed windows not ascending")
		}
		if t.spec.Kind != KindSession && r.err == nil {
			if want := floorDiv(p.Window.Start, t.adv) * t.adv; want != p.Window.Start || p.Window.End-p.Window.Start != t.size {
				r.fail("closed window not aligned")
			}
		} else if r.err == nil {
			ks := keys[p.Key]
			if ks == nil {
				ks = &keyState{}
				keys[p.Key] = ks
			}
			ks.closed = append(ks.closed, p.Window)
		}
		retained = append(retained, p)
	}
	if r.err == nil && len(r.b) > 0 {
		r.fail("trailing bytes")
	}
	if r.err != nil {
		return r.err
	}
	t.wms, t.open, t.keys, t.due, t.retained = wms, open, keys, due, retained
	return nil
}

// reader decodes a snapshot; the first error sticks.
type reader struct {
	b   []byte
	err error
}

func (r *reader) fail(what string) {
	if r.err == nil {
		r.err = fmt.Errorf("%w: %s", ErrSnapshot, what)
	}
}

func (r *reader) byte() byte {
	if r.err != nil {
		return 0
	}
	if len(r.b) == 0 {
		r.fail("truncated")
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
		r.fail("truncated")
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
		r.fail("truncated")
		return 0
	}
	r.b = r.b[n:]
	return v
}

// int reads a non-negative int64.
func (r *reader) int() int64 {
	v := r.uvarint()
	if v > math.MaxInt64 {
		r.fail("number out of range")
		return 0
	}
	return int64(v)
}

// count reads a number of items, each at least minSize bytes long.
func (r *reader) count(minSize int) int {
	n := r.uvarint()
	if n > uint64(len(r.b)/minSize) {
		r.fail("count beyond the data")
		return 0
	}
	return int(n)
}

// maxSpan is the longest duration, in ms: no window reaches further than
// maxSpan beyond [MinTime, MaxTime].
const maxSpan = math.MaxInt64 / int64(time.Millisecond)

// add returns a+b, or fails on overflow.
func (r *reader) add(a, b int64) int64 {
	s := a + b
	if (b > 0 && s < a) || (b < 0 && s > a) {
		r.fail("time out of range")
		return 0
	}
	return s
}

// time reads a time written as its difference from prev.
func (r *reader) time(prev int64) int64 {
	return r.inRange(r.add(prev, r.varint()))
}

// end reads a window length and returns the end of the window that
// starts at start.
func (r *reader) end(start int64) int64 {
	l := r.int()
	if r.err == nil && l == 0 {
		r.fail("empty window")
	}
	return r.inRange(r.add(start, l))
}

// inRange fails unless v is within reach of a window.
func (r *reader) inRange(v int64) int64 {
	if r.err == nil && (v < MinTime-maxSpan || v > MaxTime+maxSpan) {
		r.fail("time out of range")
	}
	return v
}

// windows reads the list appendWindows wrote: ascending, disjoint.
func (r *reader) windows() []Window {
	var ws []Window
	prev := int64(0)
	for n := r.count(2); n > 0 && r.err == nil; n-- {
		var w Window
		w.Start = r.time(prev)
		w.End = r.end(w.Start)
		if len(ws) > 0 && ws[len(ws)-1].End > w.Start {
			r.fail("sessions overlap")
		}
		prev = w.Start
		ws = append(ws, w)
	}
	return ws
}

// appendKey encodes k by its underlying kind: integers as varints,
// floats as their IEEE 754 bits, strings with their length.
func appendKey[K cmp.Ordered](b []byte, k K) []byte {
	v := reflect.ValueOf(k)
	switch v.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return binary.AppendVarint(b, v.Int())
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		return binary.AppendUvarint(b, v.Uint())
	case reflect.Float32, reflect.Float64:
		return binary.BigEndian.AppendUint64(b, math.Float64bits(v.Float()))
	case reflect.String:
		b = binary.AppendUvarint(b, uint64(v.Len()))
		return append(b, v.String()...)
	}
	panic("windows: unreachable key kind " + v.Kind().String())
}

func readKey[K cmp.Ordered](r *reader) K {
	var k K
	v := reflect.ValueOf(&k).Elem()
	switch v.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		x := r.varint()
		if v.OverflowInt(x) {
			r.fail("key out of range")
		}
		v.SetInt(x)
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		x := r.uvarint()
		if v.OverflowUint(x) {
			r.fail("key out of range")
		}
		v.SetUint(x)
	case reflect.Float32, reflect.Float64:
		if r.err == nil && len(r.b) < 8 {
			r.fail("truncated")
		}
		if r.err == nil {
			v.SetFloat(math.Float64frombits(binary.BigEndian.Uint64(r.b)))
			r.b = r.b[8:]
		}
	case reflect.String:
		n := r.uvarint()
		if r.err == nil && n > uint64(len(r.b)) {
			r.fail("truncated")
		}
		if r.err == nil {
			v.SetString(string(r.b[:n]))
			r.b = r.b[n:]
		}
	}
	return k
}
