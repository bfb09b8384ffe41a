package events

import (
	"errors"
	"testing"
	"time"
)

func TestCheckFuture(t *testing.T) {
	at := time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)
	ms := at.UnixMilli()
	for _, tc := range []struct {
		name   string
		ts     int64
		log    time.Time
		reject bool
	}{
		{"now", ms, at, false},
		{"past", 0, at, false},
		{"at the limit", ms + 24*3_600_000, at, false},
		{"a millisecond past it", ms + 24*3_600_000 + 1, at, true},
		{"year 9999", maxTS, at, true},
		{"no log time", maxTS, time.Time{}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l := Listen{TS: tc.ts}
			err := CheckFuture(&l, tc.log, DefaultMaxFuture)
			var inv *InvalidError
			if got := err != nil; got != tc.reject {
				t.Fatalf("rejected %v, want %v (%v)", got, tc.reject, err)
			}
			if err != nil && (!errors.As(err, &inv) || inv.Field != "ts" || inv.Reason != ReasonFuture) {
				t.Fatalf("error %#v", err)
			}
		})
	}
}
