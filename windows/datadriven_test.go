package windows

import (
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cockroachdb/datadriven"
)

// TestDataDriven runs the scenarios in testdata/. Commands:
//
//	assign window=SPEC ts=T...          windows of each ts (pure Spec)
//	init window=SPEC [lateness=D] [grace=D] [retention=D] [idle=D]
//	event [p=P] [key=K] ts=T            one event; or one per input line
//	watermark p=P ts=T                  ObserveWatermark
//	add-partition p=P / remove-partition p=P
//	tick now=T                          processing time
//	drain                               closed and expired panes
//	partitions                          per-partition watermarks
//	stats
//	snapshot                            keep MarshalBinary's bytes
//	restore                             a new Tracker from the kept bytes
//
// Events print "ts=T key=K: <decision>"; every command on the tracker ends
// with the task watermark. Durations are Go durations ("10ms"), times Unix ms.
func TestDataDriven(t *testing.T) {
	datadriven.Walk(t, "testdata", func(t *testing.T, path string) {
		var h harness
		datadriven.RunTest(t, path, func(t *testing.T, d *datadriven.TestData) string {
			out, err := h.run(d)
			if err != nil {
				return "error: " + err.Error() + "\n"
			}
			return out
		})
	})
}

type harness struct {
	cfg  Config
	tr   *Tracker[string]
	snap []byte
}

func (h *harness) run(d *datadriven.TestData) (string, error) {
	args := map[string][]string{}
	for _, a := range d.CmdArgs {
		args[a.Key] = a.Vals
	}
	var b strings.Builder
	if d.Cmd == "assign" {
		spec, err := ParseSpec(one(args, "window"))
		if err != nil {
			return "", err
		}
		for _, v := range args["ts"] {
			ts, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				return "", err
			}
			fmt.Fprintf(&b, "%d: %s\n", ts, windowList(spec.Assign(ts)))
		}
		return b.String(), nil
	}
	if d.Cmd == "init" {
		spec, err := ParseSpec(one(args, "window"))
		if err != nil {
			return "", err
		}
		h.cfg = Config{Window: spec}
		for _, f := range []struct {
			name string
			d    *time.Duration
		}{
			{"lateness", &h.cfg.AllowedLateness},
			{"grace", &h.cfg.Grace},
			{"retention", &h.cfg.Retention},
			{"idle", &h.cfg.IdleTimeout},
		} {
			if v := one(args, f.name); v != "" {
				if *f.d, err = time.ParseDuration(v); err != nil {
					return "", err
				}
			}
		}
		h.tr, err = New[string](h.cfg)
		if err != nil {
			return "", err
		}
		return "ok\n", nil
	}
	if h.tr == nil {
		return "", fmt.Errorf("%s before init", d.Cmd)
	}
	switch d.Cmd {
	case "event":
		lines := []map[string][]string{args}
		if strings.TrimSpace(d.Input) != "" {
			lines = lines[:0]
			for _, l := range strings.Split(strings.TrimSpace(d.Input), "\n") {
				m := map[string][]string{}
				for _, f := range strings.Fields(l) {
					k, v, _ := strings.Cut(f, "=")
					m[k] = []string{v}
				}
				lines = append(lines, m)
			}
		}
		for _, l := range lines {
			p, err := num(l, "p", 0)
			if err != nil {
				return "", err
			}
			ts, err := num(l, "ts", 0)
			if err != nil {
				return "", err
			}
			key := one(l, "key")
			dec := h.tr.Observe(int32(p), key, ts)
			fmt.Fprintf(&b, "ts=%d", ts)
			if key != "" {
				fmt.Fprintf(&b, " key=%s", key)
			}
			b.WriteString(": " + dec.Reason.String())
			if len(dec.Accepted) > 0 {
				b.WriteString(" accepted " + windowList(dec.Accepted))
			}
			if len(dec.Merged) > 0 {
				b.WriteString(" merged " + windowList(dec.Merged))
			}
			if len(dec.Missed) > 0 {
				fmt.Fprintf(&b, " missed %s at watermark %s", windowList(dec.Missed), wmString(dec.Watermark))
			}
			b.WriteString("\n")
		}
	case "watermark":
		p, err := num(args, "p", 0)
		if err != nil {
			return "", err
		}
		ts, err := num(args, "ts", 0)
		if err != nil {
			return "", err
		}
		h.tr.ObserveWatermark(int32(p), ts)
	case "add-partition", "remove-partition":
		for _, v := range args["p"] {
			p, err := strconv.ParseInt(v, 10, 32)
			if err != nil {
				return "", err
			}
			if d.Cmd == "add-partition" {
				h.tr.AddPartition(int32(p))
			} else {
				h.tr.RemovePartition(int32(p))
			}
		}
	case "tick":
		now, err := num(args, "now", 0)
		if err != nil {
			return "", err
		}
		h.tr.Tick(now)
	case "drain":
		st := h.tr.Drain()
		for _, p := range st.Closed {
			b.WriteString("closed " + paneString(p) + "\n")
		}
		for _, p := range st.Expired {
			b.WriteString("expired " + paneString(p) + "\n")
		}
		if st.Watermark != h.tr.Watermark() {
			return "", fmt.Errorf("step watermark %d, tracker %d", st.Watermark, h.tr.Watermark())
		}
	case "partitions":
		for _, p := range h.tr.wms.parts {
			wm, idle, ok := h.tr.PartitionWatermark(p.id)
			if !ok {
				return "", fmt.Errorf("partition %d unknown", p.id)
			}
			fmt.Fprintf(&b, "p=%d watermark %s", p.id, wmString(wm))
			if idle {
				b.WriteString(" idle")
			}
			b.WriteString("\n")
		}
	case "stats":
		s := h.tr.Stats()
		fmt.Fprintf(&b, "events %d late %d out-of-range %d closed %d expired %d\n",
			s.Events, s.Late, s.OutOfRange, s.Closed, s.Expired)
	case "snapshot":
		var err error
		if h.snap, err = h.tr.MarshalBinary(); err != nil {
			return "", err
		}
		b.WriteString("saved\n")
	case "restore":
		tr, err := New[string](h.cfg)
		if err != nil {
			return "", err
		}
		if err := tr.UnmarshalBinary(h.snap); err != nil {
			return "", err
		}
		h.tr = tr
		b.WriteString("restored\n")
	default:
		return "", fmt.Errorf("unknown command %q", d.Cmd)
	}
	b.WriteString("watermark " + wmString(h.tr.Watermark()) + "\n")
	return b.String(), nil
}

func one(args map[string][]string, key string) string {
	if v := args[key]; len(v) > 0 {
		return v[0]
	}
	return ""
}

func num(args map[string][]string, key string, def int64) (int64, error) {
	v := one(args, key)
	switch v {
	case "":
		return def, nil
	case "max":
		return 1<<63 - 1, nil
	}
	return strconv.ParseInt(v, 10, 64)
}

func windowList(ws []Window) string {
	s := make([]string, len(ws))
	for i, w := range ws {
		s[i] = w.String()
	}
	return strings.Join(s, " ")
}

func paneString(p Pane[string]) string {
	if p.Key != "" {
		return p.Key + " " + p.Window.String()
	}
	return p.Window.String()
}

func wmString(wm int64) string {
	if wm == NoWatermark {
		return "none"
	}
	return strconv.FormatInt(wm, 10)
}
