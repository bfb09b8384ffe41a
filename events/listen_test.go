package events

import "testing"

func TestDay(t *testing.T) {
	for _, tc := range []struct {
		ts   int64
		want int32
	}{
		{0, 0},
		{msPerDay - 1, 0},
		{msPerDay, 1},
		{tsNoon, 20513}, // 2026-03-01
		{maxTS, 2932896},
		{-1, -1},
		{-msPerDay, -1},
		{-msPerDay - 1, -2},
	} {
		l := Listen{TS: tc.ts}
		if got := l.Day(); got != tc.want {
			t.Errorf("Listen{TS: %d}.Day() = %d, want %d", tc.ts, got, tc.want)
		}
	}
}

func TestIsStream(t *testing.T) {
	for _, tc := range []struct {
		ms   int32
		want bool
	}{{0, false}, {29_999, false}, {30_000, true}, {86_400_000, true}} {
		l := Listen{MsPlayed: tc.ms}
		if got := l.IsStream(); got != tc.want {
			t.Errorf("Listen{MsPlayed: %d}.IsStream() = %v, want %v", tc.ms, got, tc.want)
		}
	}
}

func TestInvalidErrorError(t *testing.T) {
	e := &InvalidError{Field: "user_id", Reason: "user_id: missing"}
	if got, want := e.Error(), "events: invalid listen: user_id: missing"; got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
}
