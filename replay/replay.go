// Package replay is the Kappa cycle of kappa: versions of the topology
// (their names), rebuilding a new version from the log beside the serving
// one (its start offsets by timestamp), tracking it until it has caught
// up, cutting every instance over to it through the control topic, and
// retiring the old one. The instances do the processing: they run every
// version the control topic lists (cmd/kappa); Run is the operator's side.
package replay

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kappa-stream/kappa/control"
)

// ErrInvalid marks a replay the operator asked for that cannot be done as
// asked (a usage error).
var ErrInvalid = errors.New("replay: invalid request")

// Config is one `kappa replay`. Zero fields take the documented defaults.
type Config struct {
	// Brokers are the seed brokers (required).
	Brokers []string
	// ClientOpts are extra franz-go options of every client the replay
	// makes, e.g. TLS and SASL.
	ClientOpts []kgo.Opt
	// ControlTopic, Directory and Input are the deployment's control
	// topic, instance directory topic and listens topic (required).
	ControlTopic, Directory, Input string
	// Features is the song-features topic the features stage of a
	// version with similar users and songs reads ("": not checked).
	Features string
	// Version is the version to build or resume (default: the next).
	Version string
	// From is control.FromEarliest or an RFC 3339 time (FromTime); required
	// for a new version.
	From     string
	FromTime time.Time
	// Force builds a version from a time although its rollups and fan
	// zones will be wrong.
	Force bool
	// Cutover makes the version serve once caught up; Retire retires the
	// version it replaced after Grace.
	Cutover, Retire bool
	Grace           time.Duration
	// MaxLag is the lag in listens within which the version counts as
	// caught up (default ReadyLag).
	MaxLag int64
	// NewConfig makes the processor configuration of a new version from
	// the serving version's (required).
	NewConfig func(serving json.RawMessage) (json.RawMessage, error)
	// Configured is true when the operator gave configuration (ignored,
	// with a note, when the version exists).
	Configured bool
}

func (c *Config) validate() error {
	switch {
	case len(c.Brokers) == 0 || c.ControlTopic == "" || c.Directory == "" || c.Input == "" || c.NewConfig == nil:
		return errors.New("replay: config needs brokers, the topics and NewConfig")
	case c.Version != "" && !control.ValidName(c.Version):
		return fmt.Errorf("%w: version %q: want v1, v2, …", ErrInvalid, c.Version)
	case c.MaxLag < 0 || c.Grace < 0:
		return fmt.Errorf("%w: negative max lag or grace", ErrInvalid)
	}
	if c.MaxLag == 0 {
		c.MaxLag = ReadyLag
	}
	return nil
}

// Run rebuilds, cuts over and retires as c says, reporting on stdout and
// its progress on stderr. Errors that are the operator's (a refused
// replay, a missing --from) wrap ErrInvalid.
func Run(ctx context.Context, c Config, stdout, stderr io.Writer) error {
	if err := c.validate(); err != nil {
		return err
	}
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(c.Brokers...)}, c.ClientOpts...)...)
	if err != nil {
		return err
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	st, err := LoadControl(ctx, adm, c.Brokers, c.ControlTopic, c.ClientOpts...)
	if err != nil {
		return err
	}
	if st.Serving.Version == "" {
		return fmt.Errorf("no version serves yet (%s is empty): start kappa up or kappa process first", c.ControlTopic)
	}
	name := c.Version
	if name == "" {
		name = st.Next()
	}
	v, exists := st.Versions[name]
	switch {
	case exists && !v.Active():
		return fmt.Errorf("version %s was retired at %s; names are not reused: the next is %s", name, v.Retired.Format(time.RFC3339), st.Next())
	case exists:
		fmt.Fprintf(stderr, "version %s exists (declared %s, from %s): resuming\n", name, v.Created.Format(time.RFC3339), v.From)
		if c.Configured || c.From != "" {
			fmt.Fprintf(stderr, "  ignoring --from and the processor flags: %s runs with %s\n", name, v.Config)
		}
	default:
		if c.From == "" {
			return fmt.Errorf("%w: --from is required to build the new version %s (earliest rebuilds everything)", ErrInvalid, name)
		}
		if v, err = declare(ctx, c, cl, adm, st, name, stderr); err != nil {
			return err
		}
	}
	if err := watch(ctx, c, adm, v, stderr); err != nil {
		return err
	}
	if !c.Cutover {
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

// LoadControl reads topic; a cluster without it has no versions. opts are
// extra franz-go options, e.g. TLS and SASL.
func LoadControl(ctx context.Context, adm *kadm.Client, brokers []string, topic string, opts ...kgo.Opt) (control.State, error) {
	topics, err := adm.ListTopics(ctx, topic)
	if err != nil {
		return control.State{}, fmt.Errorf("list topics: %w", err)
	}
	if !topics.Has(topic) {
		return control.State{}, nil
	}
	st, err := control.Load(ctx, brokers, topic, opts...)
	if err != nil {
		return control.State{}, fmt.Errorf("read %s: %w", topic, err)
	}
	return st, nil
}

// declare writes the new version to the control topic, after setting its
// stage-1 offsets when it starts at a time; the instances start it when
// they read it.
func declare(ctx context.Context, c Config, cl *kgo.Client, adm *kadm.Client, st control.State, name string, stderr io.Writer) (control.Version, error) {
	serving := st.Versions[st.Serving.Version]
	config, err := c.NewConfig(serving.Config)
	if err != nil {
		return control.Version{}, fmt.Errorf("the configuration of %s, changed: %w", name, err)
	}
	v := control.Version{Name: name, From: c.From, Replaces: st.Serving.Version, Repartition: Repartition, Config: config, Created: time.Now().UTC()}
	n := NamesOf("", v)
	if err := checkUnused(ctx, adm, n); err != nil {
		return control.Version{}, err
	}
	if !c.FromTime.IsZero() {
		if !c.Force {
			return control.Version{}, fmt.Errorf("%w: refusing to replay from %s: the day rollups (plays) and the fan zones count every listen, "+
				"so a version that sees only the listens after a time has wrong totals (only live windows starting after it are right); "+
				"use --from earliest, or --force to build it anyway", ErrInvalid, c.From)
		}
		v.Forced = true
		if err := setStartOffsets(ctx, adm, n.UsersGroup, c.Input, c.FromTime); err != nil {
			return control.Version{}, err
		}
	}
	if err := control.PutVersion(ctx, cl, c.ControlTopic, v); err != nil {
		return control.Version{}, err
	}
	fmt.Fprintf(stderr, "declared %s (from %s, replacing %s) with %s\n", name, v.From, v.Replaces, config)
	return v, nil
}

// checkUnused refuses a version whose consumer groups already hold
// offsets: something else used its names.
func checkUnused(ctx context.Context, adm *kadm.Client, n Names) error {
	for _, g := range []string{n.UsersGroup, n.AggregatesGroup} {
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
func setStartOffsets(ctx context.Context, adm *kadm.Client, group, input string, t time.Time) error {
	listed, err := adm.ListOffsetsAfterMilli(ctx, t.UnixMilli(), input)
	if err == nil {
		err = listed.Error()
	}
	if err != nil {
		return fmt.Errorf("offsets of %s at %s: %w", input, t.Format(time.RFC3339), err)
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
func cutover(ctx context.Context, c Config, cl *kgo.Client, name string, stdout io.Writer) error {
	start := time.Now()
	if err := control.PutServing(ctx, cl, c.ControlTopic, control.Serving{Version: name, Since: start.UTC()}); err != nil {
		return err
	}
	for {
		statuses, _, err := InstanceStatuses(ctx, c.Brokers, c.Directory, c.ClientOpts...)
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
func (c Config) retireReplaced(ctx context.Context, cl *kgo.Client, adm *kadm.Client, st control.State, v control.Version, stdout io.Writer) error {
	if !c.Retire {
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
		fmt.Fprintf(stdout, "retiring %s in %s (reads with version=%s still work until then)\n", old.Name, c.Grace, old.Name)
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(c.Grace):
		}
		now := time.Now().UTC()
		old.Retired = &now
		if err := control.PutVersion(ctx, cl, c.ControlTopic, old); err != nil {
			return err
		}
	}
	n := NamesOf("", old)
	if err := deleteGroups(ctx, adm, n.Groups()...); err != nil {
		return err
	}
	topics := n.Topics()
	resp, err := adm.DeleteTopics(ctx, topics...)
	if err != nil {
		return fmt.Errorf("delete the topics of %s: %w", old.Name, err)
	}
	for _, r := range resp.Sorted() {
		if r.Err != nil && !errors.Is(r.Err, kerr.UnknownTopicOrPartition) {
			return fmt.Errorf("delete topic %s: %w", r.Topic, r.Err)
		}
	}
	fmt.Fprintf(stdout, "retired %s: groups %s and topics %s deleted; instances delete its state directories\n",
		old.Name, strings.Join(n.Groups(), ", "), strings.Join(topics, ", "))
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
