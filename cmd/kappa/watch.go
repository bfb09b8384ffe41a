package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"

	"github.com/kappa-stream/kappa/cluster"
	"github.com/kappa-stream/kappa/control"
)

// watch shows the progress of version v until it has caught up: stage 1
// within maxLag listens of the log's end, and then, on the instances that
// run it, every store of both stages applied that far: stage 2's to the
// repartition offsets stage 1 had reached by then (one repartition record
// sums a whole commit interval of listens, so a lag in records would say
// little). A terminal gets a progress bar redrawn in place; anything else
// a line every few seconds.
func watch(ctx context.Context, c replayConfig, adm *kadm.Client, v control.Version, w io.Writer) error {
	n := versionNames("", v.Name)
	first, err := firstOffsets(ctx, adm, v)
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
		// deltas are the repartition end offsets once stage 1 is within
		// maxLag: what stage 2's stores must hold.
		deltas kadm.ListedOffsets
	)
	for {
		p, err := progressOf(ctx, adm, n)
		if err != nil {
			return err
		}
		ends, err := adm.ListEndOffsets(ctx, topicListens)
		if err != nil {
			return fmt.Errorf("list end offsets of %s: %w", topicListens, err)
		}
		var end int64
		ends.Each(func(o kadm.ListedOffset) { end += o.Offset })
		done, total := p.listensCommitted-first, end-first
		r := rate.add(time.Now(), done)
		if deltas == nil && p.listensLag <= c.maxLag {
			if deltas, err = adm.ListEndOffsets(ctx, n.deltas); err == nil {
				err = deltas.Error()
			}
			if err != nil {
				return fmt.Errorf("list end offsets of %s: %w", n.deltas, err)
			}
		}
		ready, why := false, ""
		if deltas != nil {
			ready, why = applied(ctx, c, n, ends, deltas)
		}
		line := progressLine(v.Name, done, total, r, p, tty)
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
			fmt.Fprintf(w, "%s has caught up (lag %d listens; stores applied)\n", v.Name, p.listensLag)
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

// firstOffsets is the sum over the listens partitions of the offsets
// version v started at: the log start, or the first offsets at its time.
func firstOffsets(ctx context.Context, adm *kadm.Client, v control.Version) (int64, error) {
	var listed kadm.ListedOffsets
	var err error
	if v.From == control.FromEarliest {
		listed, err = adm.ListStartOffsets(ctx, topicListens)
	} else {
		var t time.Time
		if t, err = time.Parse(time.RFC3339, v.From); err != nil {
			return 0, fmt.Errorf("version %s: from %q: %w", v.Name, v.From, err)
		}
		listed, err = adm.ListOffsetsAfterMilli(ctx, t.UnixMilli(), topicListens)
	}
	if err == nil {
		err = listed.Error()
	}
	if err != nil {
		return 0, fmt.Errorf("first offsets of %s: %w", topicListens, err)
	}
	var sum int64
	listed.Each(func(o kadm.ListedOffset) { sum += o.Offset })
	return sum, nil
}

// progressLine is one report: a bar on a terminal, then done/total,
// events/s, the lag of both stages and the ETA.
func progressLine(version string, done, total int64, rate float64, p progress, tty bool) string {
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
		thousands(done), thousands(total), thousands(int64(rate)), thousands(p.listensLag), thousands(p.deltasLag))
	if rate > 0 {
		eta := time.Duration(float64(p.listensLag+p.deltasLag) / rate * float64(time.Second))
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
func applied(ctx context.Context, c replayConfig, n names, listens, deltas kadm.ListedOffsets) (ok bool, why string) {
	statuses, unreachable, err := instanceStatuses(ctx, c.brokers)
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
	}{{n.usersGroup, listens, c.maxLag}, {n.aggregatesGroup, deltas, 0}} {
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
		var behind []string
		stage.ends.Each(func(o kadm.ListedOffset) {
			if at, ok := committed[o.Partition]; !ok || o.Offset-at > stage.maxLag {
				behind = append(behind, fmt.Sprint(o.Partition))
			}
		})
		if len(behind) > 0 {
			slices.Sort(behind)
			return false, "stores of " + stage.group + " partitions " + strings.Join(behind, ",") + " not applied yet"
		}
	}
	return true, ""
}

// instanceStatuses asks every instance in the directory for its status;
// unreachable lists those that did not answer (stopped ones stay listed).
func instanceStatuses(ctx context.Context, brokers []string) (statuses []instanceStatus, unreachable []string, err error) {
	urls, err := cluster.ReadInstances(ctx, brokers, topicInstances)
	if err != nil {
		return nil, nil, err
	}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for id, url := range urls {
		wg.Go(func() {
			st, err := fetchStatus(ctx, url)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				unreachable = append(unreachable, id)
				return
			}
			statuses = append(statuses, st)
		})
	}
	wg.Wait()
	slices.Sort(unreachable)
	return statuses, unreachable, nil
}

// statusTimeout bounds one GET /v1/status.
const statusTimeout = 2 * time.Second

func fetchStatus(ctx context.Context, base string) (instanceStatus, error) {
	ctx, cancel := context.WithTimeout(ctx, statusTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimSuffix(base, "/")+"/v1/status", nil)
	if err != nil {
		return instanceStatus{}, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return instanceStatus{}, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return instanceStatus{}, fmt.Errorf("status %s: HTTP %d", base, resp.StatusCode)
	}
	var st instanceStatus
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
		return instanceStatus{}, fmt.Errorf("status %s: %w", base, err)
	}
	return st, nil
}
