package events

import "time"

// DefaultMaxFuture is how far after its record's timestamp a listen's
// event time may lie by default (kappa's --max-future).
const DefaultMaxFuture = 24 * time.Hour

// ReasonFuture is the reason of a listen rejected by CheckFuture.
const ReasonFuture = "ts: beyond the record's timestamp + max-future"

// CheckFuture rejects a listen whose event time lies more than
// maxFuture after logTime, the timestamp of its record in the log (the
// producer's create time, or the broker's append time): one such listen
// would move a song's newest live window, or a partition's watermark,
// years ahead and pin a user's home. Judging against the record's
// timestamp, not the clock, makes a replay of the log decide the same.
// A zero logTime (no timestamp) accepts every listen.
func CheckFuture(l *Listen, logTime time.Time, maxFuture time.Duration) error {
	if logTime.IsZero() || logTime.UnixMilli() <= 0 {
		return nil
	}
	if l.TS-logTime.UnixMilli() > maxFuture.Milliseconds() {
		return &InvalidError{Field: "ts", Reason: ReasonFuture}
	}
	return nil
}
