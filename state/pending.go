package state

import (
	"bytes"
	"fmt"
	"time"
)

// Pending markers are the stage-1 tables of the users whose changes wait
// to be published to stage 2 (fan zones, similar users): key table | id
// (8 bytes, big-endian), value the Unix ns since when the user waits
// (8 bytes, big-endian). A one-byte value, written before the time was
// kept, reads as "since now".

// PendingKey appends the key of user id's marker in table to dst.
func PendingKey(dst []byte, table byte, id int64) []byte {
	return AppendUint64(append(dst, table), uint64(id))
}

// PendingValue appends the value of a marker waiting since since to dst.
func PendingValue(dst []byte, since time.Time) []byte {
	return AppendUint64(dst, uint64(since.UnixNano()))
}

// ScanPending calls fn with every marker of table in s, in id order; a
// marker without its time is since now.
func ScanPending(s *Store, table byte, now time.Time, fn func(id int64, since time.Time)) error {
	prefix := []byte{table}
	return s.Scan(prefix, PrefixEnd(prefix), func(k, v []byte) error {
		since := now
		switch {
		case len(k) != 9:
			return fmt.Errorf("state: pending marker key of %d bytes", len(k))
		case len(v) == 8:
			since = time.Unix(0, int64(Uint64(v, 0)))
		case len(v) != 1:
			return fmt.Errorf("state: pending marker value of %d bytes", len(v))
		}
		fn(int64(Uint64(k, 1)), since)
		return nil
	})
}

// A pending summary is one key a task writes beside its markers: how
// many there are and since when the oldest waits (16 bytes: the count,
// then the Unix ns, 0 when none), so that a status need not scan them
// (each published user leaves a deleted marker that a scan must step over
// until a compaction drops it).

// AppendPendingSummary appends the value of a summary of n markers, the
// oldest waiting since oldest, to dst.
func AppendPendingSummary(dst []byte, n int, oldest time.Time) []byte {
	var ns int64
	if n > 0 {
		ns = oldest.UnixNano()
	}
	return AppendUint64(AppendUint64(dst, uint64(n)), uint64(ns))
}

// PendingSummary is the summary a task last wrote.
type PendingSummary struct{ last []byte }

// Next returns the value of the summary of n markers, the oldest waiting
// since oldest, and whether it differs from the one last written (then it
// counts as written: the caller writes it).
func (p *PendingSummary) Next(n int, oldest time.Time) ([]byte, bool) {
	v := AppendPendingSummary(nil, n, oldest)
	if p.last != nil && bytes.Equal(v, p.last) {
		return nil, false
	}
	p.last = v
	return v, true
}

// ReadPendingSummary reads the summary at key in s: the number of markers
// and since when the oldest waits (zero when none, or when s has no
// summary yet).
func ReadPendingSummary(s *Store, key []byte) (n int64, oldest time.Time, err error) {
	v, found, err := s.Get(nil, key)
	switch {
	case err != nil || !found:
		return 0, time.Time{}, err
	case len(v) != 16:
		return 0, time.Time{}, fmt.Errorf("state: pending summary of %d bytes", len(v))
	}
	if n = int64(Uint64(v, 0)); n > 0 {
		oldest = time.Unix(0, int64(Uint64(v, 8)))
	}
	return n, oldest, nil
}
