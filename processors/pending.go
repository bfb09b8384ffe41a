package processors

import (
	"bytes"
	"cmp"
	"fmt"
	"slices"
	"time"

	"github.com/kappa-stream/kappa/state"
)

// Pending markers are the stage-1 tables of the users whose changes wait
// to be published to stage 2 (fan zones, similar users): key table | id
// (8 bytes, big-endian), value the Unix ns since when the user waits
// (8 bytes, big-endian). A one-byte value, written before the time was
// kept, reads as "since now".
//
// A pending summary is one key a task writes beside its markers: how
// many there are and since when the oldest waits (16 bytes: the count,
// then the Unix ns, 0 when none), so that a status need not scan them
// (each published user leaves a deleted marker that a scan must step over
// until a compaction drops it).

// Writer takes a task's writes to its store (topology.Output).
type Writer interface {
	Put(key, value []byte)
	Delete(key []byte)
}

// PendingQueue is the users of a stage-1 task whose changes wait to be
// published, oldest first, kept in its store as markers in a table and a
// summary key. Mark makes a user pending; Prepare, once per commit
// interval, writes the interval's new markers and returns the users due
// for publication, whose markers it deletes. It is the task's: a new task
// (a restart, an aborted transaction) loads it from the store with the
// times the users have waited. It is not safe for concurrent use.
type PendingQueue struct {
	table      byte
	summaryKey []byte
	delay      time.Duration
	pending    map[int64]bool
	newly      []int64   // pending since the last Prepare
	queue      []waiting // since the last Prepare or before, oldest first
	summary    []byte    // as last written
	key, val   []byte
	due        []int64
}

// waiting is a pending user and since when.
type waiting struct {
	id    int64
	since time.Time
}

// LoadPendingQueue returns the queue of the markers of table in s, whose
// users are due delay after they became pending, with its summary at
// summaryKey; a marker without its time is since now.
func LoadPendingQueue(s *state.Store, table byte, summaryKey []byte, delay time.Duration, now time.Time) (*PendingQueue, error) {
	q := &PendingQueue{table: table, summaryKey: summaryKey, delay: delay, pending: map[int64]bool{}}
	err := ScanPending(s, table, now, func(id int64, since time.Time) {
		q.pending[id] = true
		q.queue = append(q.queue, waiting{id, since})
	})
	if err != nil {
		return nil, err
	}
	slices.SortFunc(q.queue, func(a, b waiting) int {
		return cmp.Or(a.since.Compare(b.since), cmp.Compare(a.id, b.id))
	})
	return q, nil
}

// Mark makes user id pending, since the next Prepare, unless it is.
func (q *PendingQueue) Mark(id int64) {
	if !q.pending[id] {
		q.pending[id] = true
		q.newly = append(q.newly, id)
	}
}

// Prepare marks the users made pending since the last Prepare as pending
// since now, and returns the users due at now (all of them when all is
// set), oldest first, no longer pending: their markers are deleted. It
// writes the summary when it changed. The returned slice is valid until
// the next Prepare.
func (q *PendingQueue) Prepare(out Writer, now time.Time, all bool) []int64 {
	for _, id := range q.newly {
		out.Put(pendingKey(q.key[:0], q.table, id), pendingValue(q.val[:0], now))
		q.queue = append(q.queue, waiting{id, now})
	}
	q.newly = q.newly[:0]
	n := 0
	for n < len(q.queue) && (all || !q.queue[n].since.Add(q.delay).After(now)) {
		n++
	}
	q.due = q.due[:0]
	for _, w := range q.queue[:n] {
		delete(q.pending, w.id)
		out.Delete(pendingKey(q.key[:0], q.table, w.id))
		q.due = append(q.due, w.id)
	}
	q.queue = q.queue[n:]
	var oldest time.Time
	if len(q.queue) > 0 {
		oldest = q.queue[0].since
	}
	if v := appendPendingSummary(nil, len(q.queue), oldest); !bytes.Equal(v, q.summary) {
		out.Put(q.summaryKey, v)
		q.summary = v
	}
	return q.due
}

// NextDue is when the first pending user is due (zero: none is pending
// since before the last Prepare).
func (q *PendingQueue) NextDue() time.Time {
	if len(q.queue) == 0 {
		return time.Time{}
	}
	return q.queue[0].since.Add(q.delay)
}

// pendingKey appends the key of user id's marker in table to dst.
func pendingKey(dst []byte, table byte, id int64) []byte {
	return state.AppendUint64(append(dst, table), uint64(id))
}

// pendingValue appends the value of a marker waiting since since to dst.
func pendingValue(dst []byte, since time.Time) []byte {
	return state.AppendUint64(dst, uint64(since.UnixNano()))
}

// ScanPending calls fn with every marker of table in s, in id order; a
// marker without its time is since now.
func ScanPending(s *state.Store, table byte, now time.Time, fn func(id int64, since time.Time)) error {
	prefix := []byte{table}
	return s.Scan(prefix, state.PrefixEnd(prefix), func(k, v []byte) error {
		since := now
		switch {
		case len(k) != 9:
			return fmt.Errorf("state: pending marker key of %d bytes", len(k))
		case len(v) == 8:
			since = time.Unix(0, int64(state.Uint64(v, 0)))
		case len(v) != 1:
			return fmt.Errorf("state: pending marker value of %d bytes", len(v))
		}
		fn(int64(state.Uint64(k, 1)), since)
		return nil
	})
}

// appendPendingSummary appends the value of a summary of n markers, the
// oldest waiting since oldest, to dst.
func appendPendingSummary(dst []byte, n int, oldest time.Time) []byte {
	var ns int64
	if n > 0 {
		ns = oldest.UnixNano()
	}
	return state.AppendUint64(state.AppendUint64(dst, uint64(n)), uint64(ns))
}

// ReadPendingSummary reads the summary at key in s: the number of markers
// and since when the oldest waits (zero when none, or when s has no
// summary yet).
func ReadPendingSummary(s *state.Store, key []byte) (n int64, oldest time.Time, err error) {
	v, found, err := s.Get(nil, key)
	switch {
	case err != nil || !found:
		return 0, time.Time{}, err
	case len(v) != 16:
		return 0, time.Time{}, fmt.Errorf("state: pending summary of %d bytes", len(v))
	}
	if n = int64(state.Uint64(v, 0)); n > 0 {
		oldest = time.Unix(0, int64(state.Uint64(v, 8)))
	}
	return n, oldest, nil
}
