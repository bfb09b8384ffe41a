package live

import (
	"cmp"
	"context"
	"encoding/binary"
	"fmt"
	"math"
	"slices"
	"strconv"
	"time"

	"github.com/axiomhq/hyperloglog"
	"github.com/twmb/franz-go/pkg/kgo"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/metric/noop"

	"github.com/kappa-stream/kappa/state"
	"github.com/kappa-stream/kappa/topology"
	"github.com/kappa-stream/kappa/windows"
)

// Metrics are the live counters of an instance, shared by its tasks.
type Metrics struct {
	late   metric.Int64Counter
	closed metric.Int64Counter
}

// NewMetrics makes the counters kappa.live.late (listens judged late
// for a window, once per window size) and kappa.live.windows.closed; a
// nil provider makes no-op ones.
func NewMetrics(mp metric.MeterProvider) (*Metrics, error) {
	if mp == nil {
		mp = noop.NewMeterProvider()
	}
	m := mp.Meter("github.com/kappa-stream/kappa/processors/live")
	late, err := m.Int64Counter("kappa.live.late",
		metric.WithDescription("Listens late for a live window (their partition's stream time had reached the window's end plus the grace), once per window size: counted in the day rollups, not in the window"))
	if err != nil {
		return nil, err
	}
	closed, err := m.Int64Counter("kappa.live.windows.closed",
		metric.WithDescription("Live windows closed and emitted, each counting every song played in it"))
	if err != nil {
		return nil, err
	}
	return &Metrics{late: late, closed: closed}, nil
}

// Stage2 is stage 2 of the live counts, for one partition of the
// repartition topic. Every cell it gets was judged on time by its stage-1
// partition; it closes a window once every stage-1 partition's stream
// time has reached the window's end plus the grace (its windows.Trackers
// hold them). It keeps its Trackers in memory between Prepares and in its
// store after each; the runtime makes a new one from the store after an
// aborted transaction.
type Stage2 struct {
	store      *state.Store
	finalTopic string
	metrics    *Metrics
	sizes      []int64
	trackers   []*windows.Tracker[int64]
	pending    cells
	delta      delta
	maxTS      int64 // the largest stream time any source has reached
	touched    bool  // a tracker changed since the last Prepare
	late       int64 // plays of closed windows since the last Prepare
	// open caches the rows of open windows as last written (in this
	// Prepare or committed before), decoded, so that a window updated
	// every interval is neither read back from Pebble nor decoded again,
	// and a window that closes finds this Prepare's rows, which its store
	// does not have yet.
	open     map[cellKey]*openRow
	key, val []byte
}

// openRow is a row of an open window, decoded: what its value in the
// store is (or will be once the Prepare that wrote it commits).
type openRow struct {
	plays  uint64
	sketch hyperloglog.Sketch
}

// NewStage2 returns the stage-2 part of a partition over its store.
// sources is the number of stage-1 partitions (of listens), which all
// hold the watermark back until they send their stream times; finalTopic
// receives the closed windows (none when empty).
func NewStage2(cfg Config, s *state.Store, sources int32, finalTopic string, m *Metrics) (*Stage2, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	if m == nil {
		var err error
		if m, err = NewMetrics(nil); err != nil {
			return nil, err
		}
	}
	t := &Stage2{store: s, finalTopic: finalTopic, metrics: m, maxTS: windows.NoWatermark, open: map[cellKey]*openRow{}}
	for _, w := range cfg.Windows {
		tr, err := windows.New[int64](windows.Config{
			Window:    windows.Tumbling(w),
			Grace:     cfg.Grace,
			Retention: cfg.Retention,
		})
		if err != nil {
			return nil, fmt.Errorf("live: %w", err)
		}
		size := w.Milliseconds()
		v, found, err := s.Get(nil, metaKey(nil, size))
		if err != nil {
			return nil, err
		}
		if found {
			_, maxTS, snap, err := parseMeta(v)
			if err == nil {
				err = tr.UnmarshalBinary(snap)
			}
			if err != nil {
				return nil, fmt.Errorf("live: tracker of window %s: %w", w, err)
			}
			t.maxTS = max(t.maxTS, maxTS)
		} else {
			for p := range sources {
				tr.AddPartition(p)
			}
		}
		t.sizes = append(t.sizes, size)
		t.trackers = append(t.trackers, tr)
	}
	return t, nil
}

// Process adds one live delta record.
func (t *Stage2) Process(rec *kgo.Record) error {
	d := &t.delta
	if err := d.parse(rec.Value); err != nil {
		return err
	}
	// NB: observing a cell moves its source's watermark to the cell's
	// start; in key order, a cell of a later window would close the
	// windows of the same interval's other cells.
	slices.SortFunc(d.cells, func(x, y cell) int { return cmp.Compare(x.k.start, y.k.start) })
	for i := range d.cells {
		c := &d.cells[i]
		j := slices.Index(t.sizes, c.k.size)
		if j < 0 {
			return fmt.Errorf("live: a delta for %s windows, which this instance does not keep (--live-windows must be the same on every instance of a version)",
				time.Duration(c.k.size)*time.Millisecond)
		}
	}
	for i := range d.cells {
		c := &d.cells[i]
		// NB: the cell's source judged it on time, so its stream time,
		// and the watermark, are below the window's end + grace: the
		// window is open. Only a source whose stream time was lost (a
		// version whose stage 1 kept none, before this rule) can send a
		// cell of a closed window; it is late, as it was then.
		if dec := t.trackers[slices.Index(t.sizes, c.k.size)].Observe(d.source, 0, c.k.start); len(dec.Accepted) == 0 {
			t.late += int64(c.plays)
			continue
		}
		t.pending.add(c.k, c.plays, c.users...)
	}
	if d.seen {
		for _, tr := range t.trackers {
			tr.ObserveWatermark(d.source, d.maxTS)
		}
		t.maxTS = max(t.maxTS, d.maxTS)
	}
	t.touched = true
	return nil
}

// Prepare writes the changed windows, emits the windows that closed and
// deletes those that expired.
func (t *Stage2) Prepare(out *topology.Output) error {
	if err := t.writeRows(out); err != nil {
		return err
	}
	for i, tr := range t.trackers {
		step := tr.Drain()
		// NB: the panes of a step are consecutive windows with data, and
		// every earlier one closed (or expired) before: the rows of the
		// range from the first to the last are the step's.
		var fresh []row
		if c := step.Closed; len(c) > 0 {
			last := c[len(c)-1].Window.Start
			fresh = t.takeClosed(t.sizes[i], last)
			if err := t.emit(out, t.sizes[i], c[0].Window.Start, last, fresh); err != nil {
				return err
			}
		}
		if e := step.Expired; len(e) > 0 {
			if err := t.expire(out, t.sizes[i], e[0].Window.Start, e[len(e)-1].Window.Start, fresh); err != nil {
				return err
			}
		}
		if !t.touched && len(step.Closed)+len(step.Expired) == 0 {
			continue
		}
		snap, err := tr.MarshalBinary()
		if err != nil {
			return err
		}
		out.Put(metaKey(t.key[:0], t.sizes[i]), appendMeta(t.val[:0], tr.Watermark(), t.maxTS, snap))
		if n := len(step.Closed); n > 0 {
			t.metrics.closed.Add(context.Background(), int64(n))
		}
	}
	if t.late > 0 {
		t.metrics.late.Add(context.Background(), t.late)
		t.late = 0
	}
	t.touched = false
	return nil
}

// writeRows merges the pending cells into their rows.
func (t *Stage2) writeRows(out *topology.Output) error {
	if t.pending.len() == 0 {
		return nil
	}
	var r *state.SortedReader
	defer func() {
		if r != nil {
			r.Close()
		}
	}()
	for _, c := range t.pending.sorted() {
		t.key = rowKey(t.key[:0], c.k)
		o, ok := t.open[c.k]
		if !ok {
			if r == nil {
				var err error
				if r, err = t.store.NewSortedReader(); err != nil {
					return err
				}
			}
			v, found, err := r.Get(t.key)
			if err != nil {
				return err
			}
			o = &openRow{}
			if found {
				if o.plays, err = decodeRow(v, &o.sketch); err != nil {
					return fmt.Errorf("live: row of song %d: %w", c.k.song, err)
				}
			}
			t.open[c.k] = o
		}
		for _, u := range c.users {
			o.sketch.InsertHash(userHash(u))
		}
		o.plays += c.plays
		t.val = binary.AppendUvarint(t.val[:0], o.plays)
		var err error
		if t.val, err = o.sketch.AppendBinary(t.val); err != nil {
			return err
		}
		out.Put(t.key, t.val)
	}
	t.pending.reset()
	return nil
}

// decodeRow decodes a row value into sk, which it replaces, and returns
// its plays.
func decodeRow(v []byte, sk *hyperloglog.Sketch) (uint64, error) {
	// NB: a fresh sketch, not Reset, which keeps a dense sketch dense: a
	// new row after a hot song's would take 16 KiB.
	*sk = hyperloglog.Sketch{}
	plays, n := binary.Uvarint(v)
	if n <= 0 {
		return 0, errShort
	}
	if err := sk.UnmarshalBinary(v[n:]); err != nil {
		return 0, err
	}
	return plays, nil
}

// row is a window row: its key and either its value in the store or,
// for a row this task wrote, the row decoded.
type row struct {
	k     cellKey
	value []byte
	open  *openRow
}

// takeClosed removes from the cache the rows of the windows of size that
// start at or before last, now closed, and returns them in key order.
func (t *Stage2) takeClosed(size, last int64) []row {
	var rows []row
	for k, o := range t.open {
		if k.size == size && k.start <= last {
			rows = append(rows, row{k: k, open: o})
			delete(t.open, k)
		}
	}
	slices.SortFunc(rows, func(a, b row) int { return a.k.compare(b.k) })
	return rows
}

// rowsIn calls fn with each row of the windows of size that start in
// [from, to], in key order: from cached, the rows of closed windows as
// last written (sorted), or else as in the store.
func (t *Stage2) rowsIn(size, from, to int64, cached []row, fn func(row) error) error {
	cmpKey := func(r row, k cellKey) int { return r.k.compare(k) }
	lo, _ := slices.BinarySearchFunc(cached, cellKey{size: size, start: from, song: math.MinInt64}, cmpKey)
	hi, _ := slices.BinarySearchFunc(cached, cellKey{size: size, start: to, song: math.MaxInt64}, cmpKey)
	fresh := cached[lo:hi]
	lower := rowKey(nil, cellKey{size: size, start: from})[:1+4+8]
	upper := state.PrefixEnd(rowKey(nil, cellKey{size: size, start: to})[:1+4+8])
	err := t.store.Scan(lower, upper, func(key, value []byte) error {
		k := cellKey{size: size, start: int64(state.Uint64(key, 1+4)), song: int64(state.Uint64(key, 1+4+8))}
		for len(fresh) > 0 && fresh[0].k.compare(k) < 0 {
			if err := fn(fresh[0]); err != nil {
				return err
			}
			fresh = fresh[1:]
		}
		if len(fresh) > 0 && fresh[0].k == k {
			r := fresh[0]
			fresh = fresh[1:]
			return fn(r)
		}
		return fn(row{k: k, value: value})
	})
	if err != nil {
		return err
	}
	for _, r := range fresh {
		if err := fn(r); err != nil {
			return err
		}
	}
	return nil
}

// emit sends the final counts of every song in the closed windows of
// size that start in [from, to] to the final topic: key the song id in
// decimal, value {"song_id", "window", "start", "end", "plays",
// "listeners"}, listeners being the sketch's estimate of distinct users.
func (t *Stage2) emit(out *topology.Output, size, from, to int64, cached []row) error {
	if t.finalTopic == "" {
		return nil
	}
	window := FormatWindow(time.Duration(size) * time.Millisecond)
	return t.rowsIn(size, from, to, cached, func(r row) error {
		o := r.open
		if o == nil {
			o = &openRow{}
			var err error
			if o.plays, err = decodeRow(r.value, &o.sketch); err != nil {
				return fmt.Errorf("live: row of song %d: %w", r.k.song, err)
			}
		}
		t.val = appendFinal(t.val[:0], r.k, window, o.plays, o.sketch.Estimate())
		out.Send(t.finalTopic, strconv.AppendInt(t.key[:0], r.k.song, 10), t.val)
		return nil
	})
}

// appendFinal appends the JSON value of a final record.
func appendFinal(dst []byte, k cellKey, window string, plays, listeners uint64) []byte {
	dst = append(dst, `{"song_id":`...)
	dst = strconv.AppendInt(dst, k.song, 10)
	dst = append(dst, `,"window":"`...)
	dst = append(dst, window...)
	dst = append(dst, `","start":"`...)
	dst = time.UnixMilli(k.start).UTC().AppendFormat(dst, time.RFC3339Nano)
	dst = append(dst, `","end":"`...)
	dst = time.UnixMilli(k.start+k.size).UTC().AppendFormat(dst, time.RFC3339Nano)
	dst = append(dst, `","plays":`...)
	dst = strconv.AppendUint(dst, plays, 10)
	dst = append(dst, `,"listeners":`...)
	dst = strconv.AppendUint(dst, listeners, 10)
	return append(dst, '}')
}

// expire deletes every song's row of the windows of size that start in
// [from, to].
func (t *Stage2) expire(out *topology.Output, size, from, to int64, cached []row) error {
	return t.rowsIn(size, from, to, cached, func(r row) error {
		out.Delete(rowKey(t.key[:0], r.k))
		return nil
	})
}

func rowKey(dst []byte, k cellKey) []byte {
	dst = append(dst, tableRow)
	dst = state.AppendUint32(dst, uint32(k.size))
	dst = state.AppendUint64(dst, uint64(k.start))
	return state.AppendUint64(dst, uint64(k.song))
}

func metaKey(dst []byte, size int64) []byte {
	return state.AppendUint32(append(dst, tableMeta), uint32(size))
}

// appendMeta appends a tracker's meta value: the watermark, the largest
// event time, and the tracker's snapshot.
func appendMeta(dst []byte, watermark, maxTS int64, snap []byte) []byte {
	dst = binary.BigEndian.AppendUint64(dst, uint64(watermark))
	dst = binary.BigEndian.AppendUint64(dst, uint64(maxTS))
	return append(dst, snap...)
}

func parseMeta(v []byte) (watermark, maxTS int64, snap []byte, err error) {
	if len(v) < 16 {
		return 0, 0, nil, fmt.Errorf("meta value of %d bytes", len(v))
	}
	return int64(binary.BigEndian.Uint64(v)), int64(binary.BigEndian.Uint64(v[8:])), v[16:], nil
}
