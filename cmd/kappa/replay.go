package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kappa-stream/kappa/control"
)

// replayConfig is the operator configuration of `kappa replay`.
type replayConfig struct {
	brokers      []string
	controlTopic string
	version      string
	from         string
	fromTime     time.Time // zero for earliest
	force        bool
	cutover      bool
	retire       bool
	grace        time.Duration
	maxLag       int64
	timeout      time.Duration
	// procs are the processor flags; set names the ones given.
	procs processors
	set   []string
}

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
	var c replayConfig
	brokers := fs.String("brokers", "127.0.0.1:9092", "comma-separated seed brokers")
	fs.StringVar(&c.controlTopic, "control-topic", topicControl, "the control topic of the kappa deployment")
	fs.StringVar(&c.version, "version", "", "the version to build (default: the next one, e.g. v2), or one to resume")
	fs.StringVar(&c.from, "from", "", "where the replay starts: earliest, or an RFC 3339 time (with --force) (required for a new version)")
	fs.BoolVar(&c.force, "force", false, "replay from a time although the rollups and fan zones will be wrong")
	fs.BoolVar(&c.cutover, "cutover", false, "when caught up, make the new version the serving one on every instance")
	fs.BoolVar(&c.retire, "retire", false, "after the cutover and --grace, retire the version the new one replaced")
	fs.DurationVar(&c.grace, "grace", time.Minute, "how long the replaced version stays readable (version=) after the cutover before --retire deletes it")
	fs.Int64Var(&c.maxLag, "max-lag", readyLag, "records each stage may still be behind for the new version to count as caught up")
	fs.DurationVar(&c.timeout, "timeout", 0, "give up when not caught up after this long (default: never)")
	processorFlags(fs, &c.procs)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	fs.Visit(func(f *flag.Flag) {
		if slices.Contains(processorFlagNames, f.Name) {
			c.set = append(c.set, f.Name)
		}
	})
	if c.brokers = splitBrokers(*brokers); len(c.brokers) == 0 {
		return usageErrorf(fs, "--brokers is empty")
	}
	if c.version != "" && !control.ValidName(c.version) {
		return usageErrorf(fs, "--version %q: want v1, v2, …", c.version)
	}
	switch {
	case c.from == "" || c.from == control.FromEarliest:
	default:
		t, err := time.Parse(time.RFC3339, c.from)
		if err != nil {
			return usageErrorf(fs, "--from %q: want earliest or an RFC 3339 time, e.g. 2026-11-23T10:00:00Z", c.from)
		}
		c.fromTime = t
	}
	if c.maxLag < 0 || c.grace < 0 || c.timeout < 0 {
		return usageErrorf(fs, "--max-lag, --grace and --timeout must not be negative")
	}
	if err := c.procs.validate(); err != nil {
		return usageErrorf(fs, "%s", err)
	}
	if c.timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, c.timeout)
		defer cancel()
	}
	err := replay(ctx, c, stdout, stderr)
	if errors.Is(err, errUsage) {
		fmt.Fprintf(stderr, "%s\n\n", strings.TrimPrefix(err.Error(), errUsage.Error()+": "))
		fs.Usage()
	}
	return err
}

// replay is `kappa replay` after its flags are checked.
func replay(ctx context.Context, c replayConfig, stdout, stderr io.Writer) error {
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.brokers...))
	if err != nil {
		return err
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	st, err := loadControlTopic(ctx, adm, c.brokers, c.controlTopic)
	if err != nil {
		return err
	}
	if st.Serving.Version == "" {
		return fmt.Errorf("no version serves yet (%s is empty): start kappa up or kappa process first", c.controlTopic)
	}
	name := c.version
	if name == "" {
		name = st.Next()
	}
	v, exists := st.Versions[name]
	switch {
	case exists && !v.Active():
		return fmt.Errorf("version %s was retired at %s; names are not reused: the next is %s", name, v.Retired.Format(time.RFC3339), st.Next())
	case exists:
		fmt.Fprintf(stderr, "version %s exists (declared %s, from %s): resuming\n", name, v.Created.Format(time.RFC3339), v.From)
		if len(c.set) > 0 || c.from != "" {
			fmt.Fprintf(stderr, "  ignoring --from and the processor flags: %s runs with %s\n", name, v.Config)
		}
	default:
		if c.from == "" {
			return fmt.Errorf("%w: --from is required to build the new version %s (earliest rebuilds everything)", errUsage, name)
		}
		if v, err = declare(ctx, c, cl, adm, st, name, stderr); err != nil {
			return err
		}
	}
	if err := watch(ctx, c, adm, v, stderr); err != nil {
		return err
	}
	if !c.cutover {
		if st.Serving.Version != name {
			fmt.Fprintf(stdout, "%s is ready; switch reads to it with: kappa replay --version %s --cutover\n", name, name)
		}
		return c.retireReplaced(ctx, cl, adm, st, v, stdout)
	}
	if st.Serving.Version == name {
		fmt.Fprintf(stdout, "%s serves already\n", name)
	} else if err := cutover(ctx, c, cl, name, stdout); err != nil {
		return err
	}
	st.Serving.Version = name
	return c.retireReplaced(ctx, cl, adm, st, v, stdout)
}

// loadControlTopic reads topic; a cluster without it has no versions.
func loadControlTopic(ctx context.Context, adm *kadm.Client, brokers []string, topic string) (control.State, error) {
	topics, err := adm.ListTopics(ctx, topic)
	if err != nil {
		return control.State{}, fmt.Errorf("list topics: %w", err)
	}
	if !topics.Has(topic) {
		return control.State{}, nil
	}
	st, err := control.Load(ctx, brokers, topic)
	if err != nil {
		return control.State{}, fmt.Errorf("read %s: %w", topic, err)
	}
	return st, nil
}

// declare writes the new version to the control topic, after setting its
// stage-1 offsets when it starts at a time; the instances start it when
// they read it.
func declare(ctx context.Context, c replayConfig, cl *kgo.Client, adm *kadm.Client, st control.State, name string, stderr io.Writer) (control.Version, error) {
	serving := st.Versions[st.Serving.Version]
	var procs processors
	if err := json.Unmarshal(serving.Config, &procs); err != nil {
		return control.Version{}, fmt.Errorf("the configuration of %s: %w", serving.Name, err)
	}
	procs.overlay(c.procs, c.set)
	config, err := json.Marshal(procs)
	if err != nil {
		return control.Version{}, err
	}
	n := versionNames("", name)
	if err := checkUnused(ctx, adm, n); err != nil {
		return control.Version{}, err
	}
	v := control.Version{Name: name, From: c.from, Replaces: st.Serving.Version, Config: config, Created: time.Now().UTC()}
	if !c.fromTime.IsZero() {
		if !c.force {
			return control.Version{}, fmt.Errorf("%w: refusing to replay from %s: the day rollups (plays) and the fan zones count every listen, "+
				"so a version that sees only the listens after a time has wrong totals (only live windows starting after it are right); "+
				"use --from earliest, or --force to build it anyway", errUsage, c.from)
		}
		v.Forced = true
		if err := setStartOffsets(ctx, adm, n.usersGroup, c.fromTime); err != nil {
			return control.Version{}, err
		}
	}
	if err := control.PutVersion(ctx, cl, c.controlTopic, v); err != nil {
		return control.Version{}, err
	}
	fmt.Fprintf(stderr, "declared %s (from %s, replacing %s) with %s\n", name, v.From, v.Replaces, config)
	return v, nil
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
		}
	}
}

// checkUnused refuses a version whose consumer groups already hold
// offsets: something else used its names.
func checkUnused(ctx context.Context, adm *kadm.Client, n names) error {
	for _, g := range []string{n.usersGroup, n.aggregatesGroup} {
		offsets, err := fetchOffsets(ctx, adm, g)
		if err != nil {
			return err
		}
		if len(offsets) > 0 {
			return fmt.Errorf("group %s already has offsets though its version is not in the control topic; pick another --version", g)
		}
	}
	return nil
}

// setStartOffsets commits, for group on listens, the offset of the first
// listen produced at or after t in every partition (the end where none).
func setStartOffsets(ctx context.Context, adm *kadm.Client, group string, t time.Time) error {
	listed, err := adm.ListOffsetsAfterMilli(ctx, t.UnixMilli(), topicListens)
	if err == nil {
		err = listed.Error()
	}
	if err != nil {
		return fmt.Errorf("offsets of %s at %s: %w", topicListens, t.Format(time.RFC3339), err)
	}
	resp, err := adm.CommitOffsets(ctx, group, listed.Offsets())
	if err == nil {
		err = resp.Error()
	}
	if err != nil {
		return fmt.Errorf("group %s: commit start offsets: %w", group, err)
	}
	return nil
}

// cutover makes name the serving version and waits until every instance
// that answers serves it.
func cutover(ctx context.Context, c replayConfig, cl *kgo.Client, name string, stdout io.Writer) error {
	start := time.Now()
	if err := control.PutServing(ctx, cl, c.controlTopic, control.Serving{Version: name, Since: start.UTC()}); err != nil {
		return err
	}
	for {
		statuses, _, err := instanceStatuses(ctx, c.brokers)
		if err != nil {
			return err
		}
		switched := 0
		for _, s := range statuses {
			if s.Serving == name {
				switched++
			}
		}
		if switched == len(statuses) {
			fmt.Fprintf(stdout, "cutover: %d instance(s) serve %s, %d ms after the switch\n", switched, name, time.Since(start).Milliseconds())
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("cutover: %d of %d instances serve %s: %w", switched, len(statuses), name, ctx.Err())
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// retireReplaced retires the version v replaced when --retire is given,
// after the grace period. The serving version is never retired.
func (c replayConfig) retireReplaced(ctx context.Context, cl *kgo.Client, adm *kadm.Client, st control.State, v control.Version, stdout io.Writer) error {
	if !c.retire {
		return nil
	}
	old, ok := st.Versions[v.Replaces]
	switch {
	case v.Replaces == "" || !ok:
		fmt.Fprintf(stdout, "%s replaced no version: nothing to retire\n", v.Name)
		return nil
	case old.Name == st.Serving.Version:
		return fmt.Errorf("refusing to retire %s: it is the serving version (add --cutover to switch to %s first)", old.Name, v.Name)
	}
	if old.Active() {
		fmt.Fprintf(stdout, "retiring %s in %s (reads with version=%s still work until then)\n", old.Name, c.grace, old.Name)
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(c.grace):
		}
		now := time.Now().UTC()
		old.Retired = &now
		if err := control.PutVersion(ctx, cl, c.controlTopic, old); err != nil {
			return err
		}
	}
	n := versionNames("", old.Name)
	if err := deleteGroups(ctx, adm, n.usersGroup, n.aggregatesGroup); err != nil {
		return err
	}
	topics := []string{n.deltas, n.changelog, n.usersChangelog, n.liveFinal}
	resp, err := adm.DeleteTopics(ctx, topics...)
	if err != nil {
		return fmt.Errorf("delete the topics of %s: %w", old.Name, err)
	}
	for _, r := range resp.Sorted() {
		if r.Err != nil && !errors.Is(r.Err, kerr.UnknownTopicOrPartition) {
			return fmt.Errorf("delete topic %s: %w", r.Topic, r.Err)
		}
	}
	fmt.Fprintf(stdout, "retired %s: groups %s, %s and topics %s deleted; instances delete its state directories\n",
		old.Name, n.usersGroup, n.aggregatesGroup, strings.Join(topics, ", "))
	return nil
}

// deleteGroups deletes groups once their members are gone (the instances
// leave them when they stop a retired version; an instance that is down
// leaves when its session times out).
func deleteGroups(ctx context.Context, adm *kadm.Client, groups ...string) error {
	for _, g := range groups {
		for {
			resp, err := adm.DeleteGroup(ctx, g)
			if err == nil {
				err = resp.Err
			}
			if err == nil || errors.Is(err, kerr.GroupIDNotFound) {
				break
			}
			if !errors.Is(err, kerr.NonEmptyGroup) {
				return fmt.Errorf("delete group %s: %w", g, err)
			}
			select {
			case <-ctx.Done():
				return fmt.Errorf("delete group %s: members still in it: %w", g, ctx.Err())
			case <-time.After(200 * time.Millisecond):
			}
		}
	}
	return nil
}
