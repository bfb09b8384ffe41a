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
	var procs processors
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
	processorFlags(fs, &procs)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	fs.Visit(func(f *flag.Flag) {
		if slices.Contains(processorFlagNames, f.Name) {
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
	if err := procs.validate(); err != nil {
		return usageErrorf(fs, "%s", err)
	}
	c.NewConfig = func(serving json.RawMessage) (json.RawMessage, error) {
		var base processors
		if err := json.Unmarshal(serving, &base); err != nil {
			return nil, err
		}
		base.overlay(procs, set)
		return json.Marshal(base)
	}
	if *timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, *timeout)
		defer cancel()
	}
	err := replay.Run(ctx, c, stdout, stderr)
	if errors.Is(err, replay.ErrInvalid) {
		return usageErrorf(fs, "%s", strings.TrimPrefix(err.Error(), replay.ErrInvalid.Error()+": "))
	}
	return err
}

// overlay takes the settings of the flags named in set from p.
func (procs *processors) overlay(p processors, set []string) {
	for _, name := range set {
		switch name {
		case "live-windows":
			procs.live.Windows, procs.liveOff = p.live.Windows, p.liveOff
		case "live-grace":
			procs.live.Grace = p.live.Grace
		case "live-retention":
			procs.live.Retention = p.live.Retention
		case "fan-zones":
			procs.fanZones = p.fanZones
		case "h3-resolutions":
			procs.fans.Resolutions = p.fans.Resolutions
		case "fan-min-plays":
			procs.fans.MinPlays = p.fans.MinPlays
		case "fan-delay":
			procs.fans.Delay = p.fans.Delay
		case "similar":
			procs.simOn = p.simOn
		case "top-k":
			procs.topK = p.topK
		case "top-k-artist-songs":
			procs.topSongs = p.topSongs
		case "minhash-bands":
			procs.similar.MinHash.Bands = p.similar.MinHash.Bands
		case "minhash-rows":
			procs.similar.MinHash.Rows = p.similar.MinHash.Rows
		case "hyperplane-tables":
			procs.similar.Hyperplanes.Tables = p.similar.Hyperplanes.Tables
		case "hyperplane-bits":
			procs.similar.Hyperplanes.Bits = p.similar.Hyperplanes.Bits
		case "feature-dim":
			procs.similar.Hyperplanes.Dim = p.similar.Hyperplanes.Dim
		case "similar-bucket-cap":
			procs.similar.Limits.PerBucket = p.similar.Limits.PerBucket
		case "similar-candidates":
			procs.similar.Limits.Candidates = p.similar.Limits.Candidates
		case "similar-rerank":
			procs.similar.Limits.Rerank = p.similar.Limits.Rerank
		case "minhash-min-bands":
			procs.similar.MinBands = p.similar.MinBands
		case "similar-delay":
			procs.similar.Delay = p.similar.Delay
		}
	}
}
