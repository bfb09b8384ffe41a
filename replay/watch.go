package replay

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"

	"github.com/kappa-stream/kappa/control"
)

// watch shows the progress of version v until it has caught up: stage 1
// within maxLag listens of the log's end (and, with similar songs, the
// features stage within maxLag of the song features' end); then every
// user pending at that moment (fan zones, similar users: published a
// delay after they changed) published; and then, on the instances that
// run it, every store of both stages applied that far: stage 2's to the
// repartition offsets stage 1 had reached by then (one repartition record
// sums a whole commit interval of listens, so a lag in records would say
// little). A terminal gets a progress bar redrawn in place; anything else
// a line every few seconds.
func watch(ctx context.Context, c Config, adm *kadm.Client, v control.Version, w io.Writer) error {
	n := NamesOf("", v)
	first, err := firstOffsets(ctx, adm, v, c.Input)
	if err != nil {
		return err
	}
	tty := isTerminal(w)
	every := 5 * time.Second
	if tty {
		every = 250 * time.Millisecond
	}
	var (
		rate    rateMeter
		printed time.Time
		// caughtUp is when stage 1 was first seen within maxLag.
		caughtUp time.Time
		// deltas are the repartition end offsets once stage 1 is within
		// maxLag and the users pending then are published: what stage 2's
		// stores must hold.
		deltas kadm.ListedOffsets
	)
	for {
		p, err := ProgressOf(ctx, adm, n, c.Input)
		if err != nil {
			return err
		}
		ends, err := adm.ListEndOffsets(ctx, c.Input)
		if err != nil {
			return fmt.Errorf("list end offsets of %s: %w", c.Input, err)
		}
		var end int64
		ends.Each(func(o kadm.ListedOffset) { end += o.Offset })
		done, total := p.ListensCommitted-first, end-first
		r := rate.add(time.Now(), done)
		ready, why := false, ""
		if deltas == nil && p.Started && p.ListensLag <= c.MaxLag {
			if caughtUp.IsZero() {
				caughtUp = time.Now()
			}
			ok, err := featuresCaughtUp(ctx, c, adm, v, n)
			if err != nil {
				return err
			}
			if !ok {
				why = "the features stage is reading " + c.Features
			} else if ok, why = published(ctx, c, n.UsersGroup, p.ListensPartitions, time.Since(caughtUp)); ok {
				if deltas, err = adm.ListEndOffsets(ctx, n.Deltas); err == nil {
					err = deltas.Error()
				}
				if err != nil {
					return fmt.Errorf("list end offsets of %s: %w", n.Deltas, err)
				}
			}
		}
		if deltas != nil {
			ready, why = applied(ctx, c, n, ends, deltas)
		}
		line := progressLine(v.Name, done, total, r, p, tty)
		if !p.Started {
			why = "waiting for the instances to start " + v.Name
		}
		if !ready && why != "" {
			line += "  (" + why + ")"
		}
		switch {
		case ready:
			if tty {
				fmt.Fprintf(w, "\r\033[K%s\n", line)
			} else {
				fmt.Fprintln(w, line)
			}
			fmt.Fprintf(w, "%s has caught up (lag %d listens; stores applied)\n", v.Name, p.ListensLag)
			return nil
		case tty:
			fmt.Fprintf(w, "\r\033[K%s", line)
		case time.Since(printed) >= every:
			fmt.Fprintln(w, line)
			printed = time.Now()
		}
		select {
		case <-ctx.Done():
			if tty {
				fmt.Fprintln(w)
			}
			return fmt.Errorf("%s has not caught up: %w", v.Name, ctx.Err())
		case <-time.After(min(every, time.Second)):
		}
	}
}

// featuresCaughtUp reports whether the features stage of version v, when
// it has similar users and songs, is within c.MaxLag records of the end of
// c.Features: its vectors are in the repartition topic.
func featuresCaughtUp(ctx context.Context, c Config, adm *kadm.Client, v control.Version, n Names) (bool, error) {
	var cfg struct {
		Similar bool `json:"similar"`
	}
	if c.Features == "" || json.Unmarshal(v.Config, &cfg) != nil || !cfg.Similar {
		return true, nil
	}
	_, lag, _, _, err := groupProgress(ctx, adm, n.FeaturesGroup, c.Features)
	return err == nil && lag <= c.MaxLag, err
}

// published reports whether no instance has a user of stage-1 group
// pending (fan zones, similar users) for as long as age or longer, with
// all its partitions reported by an instance that has restored them:
// every user pending when stage 1 caught up, age ago, has been published.
func published(ctx context.Context, c Config, group string, partitions int, age time.Duration) (ok bool, why string) {
	statuses, unreachable, err := InstanceStatuses(ctx, c.Brokers, c.Directory, c.ClientOpts...)
	if err != nil {
		return false, err.Error()
	}
	reported := map[int32]bool{}
	for _, st := range statuses {
		for _, vs := range st.Versions {
			if len(vs.Stages) == 0 || vs.Stages[0].Group != group {
				continue
			}
			if vs.PendingAgeMS > 0 && vs.PendingAgeMS >= age.Milliseconds() {
				return false, "publishing the users pending when it caught up (--fan-delay, --similar-delay)"
			}
			for _, p := range vs.Stages[0].Partitions {
				reported[p.Partition] = reported[p.Partition] || !p.Restoring
			}
		}
	}
	n := 0
	for _, ok := range reported {
		if ok {
			n++
		}
	}
	if n < partitions {
		return false, fmt.Sprintf("%d of %d partitions of %s reported by instances (unreachable: %s)", n, partitions, group, strings.Join(unreachable, ", "))
	}
	return true, ""
}

// firstOffsets is the sum over the listens partitions of the offsets
// version v started at: the log start, or the first offsets at its time.
func firstOffsets(ctx context.Context, adm *kadm.Client, v control.Version, input string) (int64, error) {
	var listed kadm.ListedOffsets
	var err error
	if v.From == control.FromEarliest {
		listed, err = adm.ListStartOffsets(ctx, input)
	} else {
		var t time.Time
		if t, err = time.Parse(time.RFC3339, v.From); err != nil {
			return 0, fmt.Errorf("version %s: from %q: %w", v.Name, v.From, err)
		}
		listed, err = adm.ListOffsetsAfterMilli(ctx, t.UnixMilli(), input)
	}
	if err == nil {
		err = listed.Error()
	}
	if err != nil {
		return 0, fmt.Errorf("first offsets of %s: %w", input, err)
	}
	var sum int64
	listed.Each(func(o kadm.ListedOffset) { sum += o.Offset })
	return sum, nil
}

// progressLine is one report: a bar on a terminal, then done/total,
// events/s, the lag of both stages and the ETA.
func progressLine(version string, done, total int64, rate float64, p Progress, tty bool) string {
	frac := 1.0
	if total > 0 {
		frac = min(max(float64(done)/float64(total), 0), 1)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%s ", version)
	if tty {
		const width = 30
		full := int(frac * width)
		b.WriteString("[" + strings.Repeat("█", full) + strings.Repeat("░", width-full) + "] ")
	}
	fmt.Fprintf(&b, "%5.1f%%  %s/%s listens  %s ev/s  lag %s (+%s deltas)", 100*frac,
		thousands(done), thousands(total), thousands(int64(rate)), thousands(p.ListensLag), thousands(p.DeltasLag))
	if rate > 0 {
		eta := time.Duration(float64(p.ListensLag+p.DeltasLag) / rate * float64(time.Second))
		fmt.Fprintf(&b, "  ETA %s", eta.Round(time.Second))
	}
	return b.String()
}

// thousands formats n with thin separators: 1,234,567.
func thousands(n int64) string {
	s := fmt.Sprint(n)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var out []byte
	for i := range len(s) {
		if i > 0 && (len(s)-i)%3 == 0 {
			out = append(out, ',')
		}
		out = append(out, s[i])
	}
	if neg {
		return "-" + string(out)
	}
	return string(out)
}

// rateMeter is the rate of a growing count over the last few seconds.
type rateMeter struct {
	samples []rateSample
}

type rateSample struct {
	at time.Time
	n  int64
}

// rateWindow is how far back the rate looks.
const rateWindow = 5 * time.Second

func (m *rateMeter) add(at time.Time, n int64) float64 {
	m.samples = append(m.samples, rateSample{at, n})
	for len(m.samples) > 2 && at.Sub(m.samples[1].at) >= rateWindow {
		m.samples = m.samples[1:]
	}
	first := m.samples[0]
	if d := at.Sub(first.at).Seconds(); d > 0 {
		return max(float64(n-first.n)/d, 0)
	}
	return 0
}

// isTerminal reports whether w is a terminal.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

// applied reports whether the stores of the instances that answer hold,
// for stage 1 of version n, every listens partition to within maxLag of
// listens, and for stage 2 every repartition partition up to deltas; why
// says what is missing.
func applied(ctx context.Context, c Config, n Names, listens, deltas kadm.ListedOffsets) (ok bool, why string) {
	statuses, unreachable, err := InstanceStatuses(ctx, c.Brokers, c.Directory, c.ClientOpts...)
	if err != nil {
		return false, err.Error()
	}
	if len(statuses) == 0 {
		return false, "no instance answers: " + strings.Join(unreachable, ", ")
	}
	for _, stage := range []struct {
		group  string
		ends   kadm.ListedOffsets
		maxLag int64
	}{{n.UsersGroup, listens, c.MaxLag}, {n.AggregatesGroup, deltas, 0}} {
		committed := map[int32]int64{}
		for _, st := range statuses {
			for _, vs := range st.Versions {
				for _, sg := range vs.Stages {
					if sg.Group != stage.group {
						continue
					}
					for _, p := range sg.Partitions {
						if !p.Restoring {
							committed[p.Partition] = max(committed[p.Partition], p.Committed)
						}
					}
				}
			}
		}
		var behind []int32
		stage.ends.Each(func(o kadm.ListedOffset) {
			if at, ok := committed[o.Partition]; !ok || o.Offset-at > stage.maxLag {
				behind = append(behind, o.Partition)
			}
		})
		if len(behind) > 0 {
			slices.Sort(behind)
			return false, "stores of " + stage.group + " partitions " + strings.Trim(fmt.Sprint(behind), "[]") + " not applied yet"
		}
	}
	return true, ""
}
