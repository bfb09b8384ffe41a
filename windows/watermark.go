package windows

import "slices"

// partition is the watermark state of one input partition.
type partition struct {
	id int32
	// wm is the partition's watermark: the maximum of (event time − allowed
	// lateness) over its events and of the watermarks it was given;
	// NoWatermark before either. It never decreases.
	wm int64
	// active is the processing time of the partition's last input (or of
	// its declaration), for the idle timeout.
	active int64
}

// watermarks merges per-partition watermarks into a task watermark.
//
// The task watermark is the minimum over the partitions that are not idle,
// or, when every known partition is idle, the maximum over them (so an idle
// partition never holds the others back, even when all are idle). It never
// decreases: a partition that comes back from idleness, or a newly seen
// partition, with an older watermark cannot move it back; its events below
// the task watermark are judged against it (and may be late).
//
// A partition is known once it has delivered an event or a watermark, or
// was declared with add. A declared partition without input holds the task
// watermark at NoWatermark until it delivers or goes idle.
type watermarks struct {
	lateness int64 // ms subtracted from event times
	idle     int64 // ms of processing time without input after which a partition is idle; 0 = never
	parts    []partition
	task     int64
	now      int64 // processing time, from tick
	ticked   bool  // now has been set
}

func newWatermarks(lateness, idle int64) watermarks {
	return watermarks{lateness: lateness, idle: idle, task: NoWatermark}
}

// find returns the index of partition id in w.parts, or where to insert it.
func (w *watermarks) find(id int32) (int, bool) {
	// NB: a task has few partitions; a linear scan beats a map for the
	// usual one to a dozen.
	for i := range w.parts {
		if w.parts[i].id >= id {
			return i, w.parts[i].id == id
		}
	}
	return len(w.parts), false
}

// get returns partition id, adding it (with no watermark) if unknown.
func (w *watermarks) get(id int32) *partition {
	i, ok := w.find(id)
	if !ok {
		w.parts = slices.Insert(w.parts, i, partition{id: id, wm: NoWatermark, active: w.now})
	}
	return &w.parts[i]
}

// add declares partition id, so that it holds the task watermark back
// until it delivers input or goes idle.
func (w *watermarks) add(id int32) {
	p := w.get(id)
	p.active = w.now
	w.update()
}

// remove forgets partition id (its partition was revoked). The task
// watermark does not move back.
func (w *watermarks) remove(id int32) {
	if i, ok := w.find(id); ok {
		w.parts = slices.Delete(w.parts, i, i+1)
		w.update()
	}
}

// event records an event time of partition id.
func (w *watermarks) event(id int32, ts int64) { w.observe(id, ts-w.lateness) }

// observe raises the watermark of partition id to wm (never lowers it).
func (w *watermarks) observe(id int32, wm int64) {
	p := w.get(id)
	p.active = w.now
	// NB: a partition back from idleness needs no update: it can only
	// lower the minimum, and the task watermark does not move back.
	if wm > p.wm {
		p.wm = wm
		w.update()
	}
}

// tick sets the processing time (it never moves back) and re-evaluates
// which partitions are idle.
func (w *watermarks) tick(now int64) {
	if !w.ticked {
		// The first processing time: partitions known so far count as
		// active from now.
		w.ticked = true
		w.now = now
		for i := range w.parts {
			w.parts[i].active = now
		}
		return
	}
	if now > w.now {
		w.now = now
		w.update()
	}
}

func (w *watermarks) isIdle(p *partition) bool {
	return w.idle > 0 && w.now-p.active >= w.idle
}

// update recomputes the task watermark.
func (w *watermarks) update() {
	if len(w.parts) == 0 {
		return
	}
	lo, hi, active := int64(0), NoWatermark, false
	for i := range w.parts {
		p := &w.parts[i]
		hi = max(hi, p.wm)
		if w.isIdle(p) {
			continue
		}
		if !active || p.wm < lo {
			lo = p.wm
		}
		active = true
	}
	if !active {
		lo = hi
	}
	w.task = max(w.task, lo)
}
