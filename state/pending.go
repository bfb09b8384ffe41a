package state

import (
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

// CountPending returns the number of markers of table in s and since when
// the oldest waits (zero when there is none).
func CountPending(s *Store, table byte) (n int64, oldest time.Time, err error) {
	err = ScanPending(s, table, time.Now(), func(_ int64, since time.Time) {
		if n == 0 || since.Before(oldest) {
			oldest = since
		}
		n++
	})
	return n, oldest, err
}
