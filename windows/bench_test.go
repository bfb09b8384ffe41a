package windows

import (
	"testing"
	"time"
)

// benchTimes are event times from 2026-01-01, 15ms apart on average and up
// to 5s out of order, as a busy partition of listens carries them.
func benchTimes() []int64 {
	ts := make([]int64, 4096)
	base := int64(1_767_225_600_000)
	for i := range ts {
		ts[i] = base + int64(i)*15 - int64(i*7919%5000)
	}
	return ts
}

// BenchmarkAssign measures window assignment alone: Spec.AppendWindows with
// a reused buffer.
func BenchmarkAssign(b *testing.B) {
	for _, spec := range []Spec{
		Tumbling(time.Minute),
		Tumbling(10 * time.Second),
		Hopping(time.Minute, 10*time.Second),
		Session(30 * time.Minute),
	} {
		b.Run(spec.String(), func(b *testing.B) {
			ts := benchTimes()
			var buf []Window
			n := 0
			for i := 0; b.Loop(); i++ {
				buf = spec.AppendWindows(buf[:0], ts[i%len(ts)])
				n += len(buf)
			}
			if n == 0 {
				b.Fatal("no windows")
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
		})
	}
}

// BenchmarkObserve measures the Tracker per event: assignment, lateness,
// open-window bookkeeping and the watermark, over 12 partitions, draining
// every 1000 events as a commit would.
func BenchmarkObserve(b *testing.B) {
	for _, spec := range []Spec{
		Tumbling(time.Minute),
		Hopping(time.Minute, 10*time.Second),
		Session(30 * time.Minute),
	} {
		b.Run(spec.String(), func(b *testing.B) {
			tr, err := New[int64](Config{Window: spec, Grace: 5 * time.Second})
			if err != nil {
				b.Fatal(err)
			}
			ts := benchTimes()
			round := int64(0)
			for i := 0; b.Loop(); i++ {
				j := i % len(ts)
				if j == 0 && i > 0 {
					round += int64(len(ts)) * 15
				}
				tr.Observe(int32(i%12), int64(i%1000), ts[j]+round)
				if i%1000 == 999 {
					tr.Drain()
				}
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
		})
	}
}
