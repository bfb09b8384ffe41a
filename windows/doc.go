// Package windows assigns events to event-time windows and decides when
// windows close, from watermarks. It is pure: no I/O, no goroutines, no
// clock; callers keep window contents in their own store.
//
// # Windows
//
// A Window is the half-open interval [Start, End) of event time in Unix
// milliseconds. A Spec says how events map to windows:
//
//   - Tumbling(size): back-to-back windows; an event at exactly End is in
//     the next one.
//   - Hopping(size, advance): windows of size starting every advance; an
//     event is in about size/advance of them.
//   - Session(gap): per key; events less than gap apart share a session
//     [first, last+gap). An event that overlaps two sessions merges them.
//
// Tumbling and hopping windows are aligned to the Unix epoch, so every
// instance and every replay assigns the same windows.
//
// # Watermarks
//
// Each input partition has a watermark: the largest event time it has
// delivered minus Config.AllowedLateness (or a larger watermark given with
// Tracker.ObserveWatermark). It never moves back. The task watermark is the
// minimum over the partitions that are not idle, and never moves back
// either. A partition counts from its first input, or from AddPartition;
// with Config.IdleTimeout set, a partition without input for that long in
// processing time (Tracker.Tick) stops holding the others back.
//
// # Closing, lateness and retention
//
// A window closes when the task watermark reaches End + Config.Grace. An
// event is judged against the task watermark when it arrives: it is
// accepted into its windows that are still open and is late for those that
// have closed (the Decision says which, with a Reason, and Stats counts
// it). The caller still counts a late event wherever windows do not apply
// (day rollups never close). Tracker.Drain returns, once each and in order,
// the panes that closed, whose contents are then final, and those whose
// End + Config.Retention (default 48 h) the watermark reached, which the
// caller deletes.
//
// A typical task:
//
//	tr, err := windows.New[int64](windows.Config{
//		Window: windows.Tumbling(time.Minute),
//		Grace:  5 * time.Second,
//	})
//	…
//	tr.Tick(time.Now().UnixMilli())
//	for _, rec := range batch {
//		d := tr.Observe(rec.Partition, songID, ts)
//		for _, w := range d.Accepted {
//			// add the play to (w, songID) in the store
//		}
//	}
//	step := tr.Drain()
//	// emit step.Closed, delete step.Expired, save tr.MarshalBinary()
//	// with the input offsets, in one commit.
//
// Every decision depends only on the calls made (and on Tick's times when
// an idle timeout is set), so a Tracker restored with UnmarshalBinary and
// fed the same input again decides the same and closes the same panes,
// which is what emitting closed windows exactly once needs.
package windows
