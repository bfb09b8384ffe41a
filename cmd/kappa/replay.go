package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/kappa-stream/kappa/control"
	"github.com/kappa-stream/kappa/processors/registry"
	"github.com/kappa-stream/kappa/replay"
)

const replaySynopsis = `Rebuilds the state into a new topology version by replaying the listens log,
beside the version that serves; the running instances (kappa up, kappa process)
do the work, since they run every version the control topic lists. Shows
progress until the new version has caught up (lag within --max-lag on both
stages, stores applied on the instances), then:
  --cutover  switches every instance's reads to it at once;
  --retire   after --grace, retires the version it replaced: its consumer groups,
             internal topics and state directories are deleted.
The new version runs with the serving version's processor configuration,
changed by the processor flags given here (e.g. --fan-min-plays 3).
Run it again with the same --version to resume watching a replay, or to cut
over and retire later.

--from earliest rebuilds from the whole log. A replay from a time sees only
the listens after it: the day rollups (plays) and the fan zones need every
listen, so their totals would be wrong, and only the live windows that start
after the time would be right. kappa refuses that unless --force.`

func runReplay(ctx context.Context, args []string, _ io.Reader, stdout, stderr io.Writer) error {
	fs := newFlagSet("replay", replaySynopsis, stderr)
	c := replay.Config{Directory: topicInstances, Input: topicListens, Features: topicFeatures}
	procs := registry.NewConfig()
	var set []string
	brokers := fs.String("brokers", "127.0.0.1:9092", "comma-separated seed brokers")
	fs.StringVar(&c.ControlTopic, "control-topic", topicControl, "the control topic of the kappa deployment")
	fs.StringVar(&c.Version, "version", "", "the version to build (default: the next one, e.g. v2), or one to resume")
	fs.StringVar(&c.From, "from", "", "where the replay starts: earliest, or an RFC 3339 time (with --force) (required for a new version)")
	fs.BoolVar(&c.Force, "force", false, "replay from a time although the rollups and fan zones will be wrong")
	fs.BoolVar(&c.Cutover, "cutover", false, "when caught up, make the new version the serving one on every instance")
	fs.BoolVar(&c.Retire, "retire", false, "after the cutover and --grace, retire the version the new one replaced")
	fs.DurationVar(&c.Grace, "grace", time.Minute, "how long the replaced version stays readable (version=) after the cutover before --retire deletes it")
	fs.Int64Var(&c.MaxLag, "max-lag", replay.ReadyLag, "listens stage 1 may still be behind for the new version to count as caught up")
	timeout := fs.Duration("timeout", 0, "give up when not caught up after this long (default: never)")
	names := procs.Flags(fs)
	secFlags := securityFlags(fs)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	sec, err := loadSecurity(fs, secFlags)
	if err != nil {
		return err
	}
	c.ClientOpts = sec.Opts()
	fs.Visit(func(f *flag.Flag) {
		if slices.Contains(names, f.Name) {
			set = append(set, f.Name)
		}
	})
	c.Configured = len(set) > 0
	if c.Brokers = splitBrokers(*brokers); len(c.Brokers) == 0 {
		return usageErrorf(fs, "--brokers is empty")
	}
	if c.From != "" && c.From != control.FromEarliest {
		t, err := time.Parse(time.RFC3339, c.From)
		if err != nil {
			return usageErrorf(fs, "--from %q: want earliest or an RFC 3339 time, e.g. 2026-11-23T10:00:00Z", c.From)
		}
		c.FromTime = t
	}
	if *timeout < 0 {
		return usageErrorf(fs, "--timeout must not be negative")
	}
	if err := procs.Validate(); err != nil {
		return usageErrorf(fs, "%s", err)
	}
	c.NewConfig = func(serving json.RawMessage) (json.RawMessage, error) {
		base := registry.NewConfig()
		if err := json.Unmarshal(serving, &base); err != nil {
			return nil, err
		}
		base.Overlay(procs, set)
		return json.Marshal(base)
	}
	if *timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, *timeout)
		defer cancel()
	}
	err = replay.Run(ctx, c, stdout, stderr)
	if errors.Is(err, replay.ErrInvalid) {
		return usageErrorf(fs, "%s", strings.TrimPrefix(err.Error(), replay.ErrInvalid.Error()+": "))
	}
	return err
}
