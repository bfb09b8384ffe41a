package replay

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"time"

	"github.com/kappa-stream/kappa/cluster"
	"github.com/kappa-stream/kappa/control"
	"github.com/kappa-stream/kappa/events"
	"github.com/kappa-stream/kappa/processors"
	"github.com/kappa-stream/kappa/serve"
	"github.com/kappa-stream/kappa/state"
	"github.com/kappa-stream/kappa/topology"
)

// version is one topology version running on this instance: both stages
// of every processor it has on, their own stages, and its read side.
type version struct {
	name   string
	config processors.Config
	procs  []proc
	n      Names
	// stages are stage 1 (on listens), stage 2 (on the repartition
	// topic) and the processors' own stages.
	stages  []stage
	backend *serve.Backend
	cancel  context.CancelFunc
	// done is closed when every stage has stopped; err is their first
	// failure, set before.
	done chan struct{}
	err  error
}

// proc is a processor the version runs.
type proc struct {
	spec processors.Spec
	p    processors.Processor
}

// stage is one consumer group of a version: its runner, group and input.
type stage struct {
	runner       *topology.Runner
	group, topic string
}

// newVersion provisions version v's topics and builds its stages.
func (rt *Runtime) newVersion(ctx context.Context, v control.Version) (*version, error) {
	cfg := processors.NewConfig(rt.c.Specs)
	if err := json.Unmarshal(v.Config, &cfg); err != nil {
		return nil, fmt.Errorf("its configuration cannot run here: %w", err)
	}
	n := NamesOf(rt.c.Data, v)
	env := processors.Env{
		Version: v.Name, Repartition: n.Deltas, Partitions: rt.c.Partitions, Topic: n.Topic,
		RecentMiB: rt.c.RecentMiB, SimilarCacheMiB: rt.c.SimilarCacheMiB,
		Logger: rt.c.Logger, MeterProvider: rt.c.Stage.MeterProvider,
	}
	vr := &version{name: v.Name, config: cfg, n: n, done: make(chan struct{})}
	stage1State := false
	for i, spec := range cfg.Specs() {
		o := cfg.Options(i)
		if !o.Enabled() {
			continue
		}
		p, err := o.New(env)
		if err != nil {
			return nil, fmt.Errorf("processor %s: %w", spec.Name, err)
		}
		vr.procs = append(vr.procs, proc{spec: spec, p: p})
		stage1State = stage1State || spec.Stage1State
	}
	if err := rt.provision(ctx, vr, stage1State); err != nil {
		return nil, fmt.Errorf("provision the topics of %s: %w", v.Name, err)
	}

	users := rt.c.Stage
	users.Group, users.Topic, users.DLQTopic = n.UsersGroup, rt.c.Input, rt.c.DLQ
	users.ManualTopics = []string{n.Deltas}
	if stage1State {
		users.Changelog, users.StoreDir, users.StoreOpts = n.UsersChangelog, n.UsersDir, rt.c.StoreOpts
	}
	users.NewTask = func(p int32, s *state.Store) (topology.Task, error) {
		t := &stage1Task{now: time.Now, maxFuture: cmp.Or(rt.c.MaxFuture, events.DefaultMaxFuture)}
		for _, pr := range vr.procs {
			var part processors.Stage1
			err := guard(pr.spec.Name, func() (err error) {
				part, err = pr.p.NewStage1(p, s)
				return err
			})
			if err != nil {
				return nil, err
			}
			if part != nil {
				t.parts = append(t.parts, partOf(pr.spec.Name, part))
			}
		}
		return t, nil
	}
	stage1, err := topology.New(users)
	if err != nil {
		return nil, err
	}

	aggregates := rt.c.Stage
	aggregates.Group, aggregates.Topic, aggregates.Changelog = n.AggregatesGroup, n.Deltas, n.Changelog
	aggregates.StoreDir = n.AggregatesDir
	// NB: a record stage 2 cannot decode (garbage written to the topic)
	// goes to the dead letters instead of stopping every instance.
	aggregates.DLQTopic = n.DeltasDLQ
	aggregates.PurgeInterval = deltasPurgeInterval
	aggregates.StoreOpts = slices.Clone(rt.c.StoreOpts)
	for _, pr := range vr.procs {
		if so, ok := pr.p.(processors.StoreOpts); ok {
			aggregates.StoreOpts = append(aggregates.StoreOpts, so.Stage2StoreOpts()...)
		}
	}
	// NB: one repartition record sums a commit interval of a listens
	// partition, so stage 2 is ready within a few intervals, not within
	// stage 1's 1,000 records.
	aggregates.ReadyLag = ReadyDeltasIntervals * 2 * int64(rt.c.Partitions)
	unknown := map[byte]string{}
	for _, spec := range cfg.Specs() {
		for _, f := range spec.Formats {
			unknown[f] = spec.Name
		}
	}
	aggregates.NewTask = func(p int32, s *state.Store) (topology.Task, error) {
		t := &stage2Task{unknown: unknown}
		for _, pr := range vr.procs {
			var part processors.Stage2
			err := guard(pr.spec.Name, func() (err error) {
				part, err = pr.p.NewStage2(p, s)
				return err
			})
			if err != nil {
				return nil, err
			}
			t.parts = append(t.parts, partOf(pr.spec.Name, part))
		}
		for i := range t.parts {
			for _, f := range vr.procs[i].spec.Formats {
				t.byFormat[f] = &t.parts[i]
			}
			if err := follow(vr.procs[i].spec, t.parts); err != nil {
				return nil, err
			}
		}
		return t, nil
	}
	stage2, err := topology.New(aggregates)
	if err != nil {
		return nil, err
	}
	vr.stages = []stage{{stage1, n.UsersGroup, rt.c.Input}, {stage2, n.AggregatesGroup, n.Deltas}}

	for _, pr := range vr.procs {
		st, ok := pr.p.(processors.Stages)
		if !ok {
			continue
		}
		for _, s := range st.Stages() {
			c := rt.c.Stage
			c.Group, c.Topic, c.DLQTopic = n.Topic(s.Name), s.Topic, s.DLQ
			c.Changelog, c.StoreDir = n.Topic(s.Name+"-changelog"), n.dir(s.Name)
			c.StoreOpts = append(slices.Clone(rt.c.StoreOpts), s.StoreOpts...)
			c.ManualTopics = []string{n.Deltas}
			c.NewTask = s.NewTask
			r, err := topology.New(c)
			if err != nil {
				return nil, err
			}
			vr.stages = append(vr.stages, stage{r, c.Group, s.Topic})
		}
	}

	vr.backend = &serve.Backend{
		Rollups: &placement{runner: stage2, dir: rt.c.Directory, self: rt.c.Stage.InstanceID,
			group: n.AggregatesGroup, partitions: int(rt.c.Partitions)},
		Processors: map[string]processors.Processor{},
	}
	for _, pr := range vr.procs {
		vr.backend.Processors[pr.spec.Name] = pr.p
	}
	return vr, nil
}

func partOf[T any](name string, p T) part[T] { return part[T]{name: name, p: p} }

// follow hands the part of spec's processor the part it follows
// (processors.Follower), if any.
func follow(spec processors.Spec, parts []part[processors.Stage2]) error {
	if spec.Follows == "" {
		return nil
	}
	i := slices.IndexFunc(parts, func(p part[processors.Stage2]) bool { return p.name == spec.Name })
	j := slices.IndexFunc(parts, func(p part[processors.Stage2]) bool { return p.name == spec.Follows })
	if j < 0 || j > i {
		return fmt.Errorf("processor %s follows %s, which this version does not run before it", spec.Name, spec.Follows)
	}
	f, ok := parts[i].p.(processors.Follower)
	if !ok {
		return fmt.Errorf("processor %s declares it follows %s, but its stage-2 part is no processors.Follower", spec.Name, spec.Follows)
	}
	return guard(spec.Name, func() error { return f.Follow(parts[j].p) })
}

// provision creates the version's topics that are missing: the
// repartition topic, the changelogs, the processors' own topics and
// those of their own stages (partitioned like their inputs).
func (rt *Runtime) provision(ctx context.Context, vr *version, stage1State bool) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	n, p := vr.n, rt.c.Partitions
	compact := map[string]string{"cleanup.policy": "compact"}
	// NB: the repartition records are kept as long as listens: a stage 2
	// that was down for a week still finds every one it has not counted.
	specs := []topology.TopicSpec{
		{Name: n.Deltas, Partitions: p, Configs: map[string]string{"retention.ms": "-1"}},
		{Name: n.Changelog, Partitions: p, Configs: compact},
		{Name: n.DeltasDLQ, Partitions: p, Configs: map[string]string{"retention.ms": "-1"}},
	}
	if stage1State {
		specs = append(specs, topology.TopicSpec{Name: n.UsersChangelog, Partitions: p, Configs: compact})
	}
	for _, pr := range vr.procs {
		if t, ok := pr.p.(processors.Topics); ok {
			for _, s := range t.Topics() {
				s.Name = n.Topic(s.Name)
				specs = append(specs, s)
			}
		}
		st, ok := pr.p.(processors.Stages)
		if !ok {
			continue
		}
		for _, s := range st.Stages() {
			details, err := rt.c.Admin.ListTopics(ctx, s.Topic)
			if err != nil {
				return err
			}
			d, ok := details[s.Topic]
			if !ok || d.Err != nil || len(d.Partitions) == 0 {
				return fmt.Errorf("topic %s of the %s stage: not found", s.Topic, s.Name)
			}
			specs = append(specs, topology.TopicSpec{Name: n.Topic(s.Name + "-changelog"), Partitions: int32(len(d.Partitions)), Configs: compact})
		}
	}
	return topology.Provision(ctx, rt.c.Admin, rt.c.Logger, specs...)
}

// groups are the consumer groups of the version's stages.
func (vr *version) groups() []string {
	out := make([]string, len(vr.stages))
	for i, s := range vr.stages {
		out[i] = s.group
	}
	return out
}

// ready reports whether every stage has joined and caught up.
func (vr *version) ready(ctx context.Context) (bool, error) {
	for _, s := range vr.stages {
		if ok, err := s.runner.Ready(ctx); !ok || err != nil {
			return false, err
		}
	}
	return true, nil
}

func (vr *version) status(serving bool) serve.VersionStatus {
	// NB: a processors.Config always marshals.
	config, _ := json.Marshal(vr.config)
	st := serve.VersionStatus{Version: vr.name, Serving: serving, Config: config}
	for _, s := range vr.stages {
		st.Stages = append(st.Stages, serve.StageStatus{Group: s.group, Topic: s.topic, Partitions: s.runner.Status()})
	}
	oldest := vr.pending(&st)
	if !oldest.IsZero() {
		st.PendingAgeMS = max(time.Since(oldest).Milliseconds(), 1)
	}
	return st
}

// pending counts, per processor that holds users back (fan zones,
// similar users), the users of the instance's stage-1 partitions stage 2
// does not have yet, into st.Pending, and returns since when the oldest
// of them waits (zero: none); a store it cannot read (moving, restoring)
// counts nothing.
func (vr *version) pending(st *serve.VersionStatus) (oldest time.Time) {
	stage1 := vr.stages[0].runner
	for _, pr := range vr.procs {
		pp, ok := pr.p.(processors.Pending)
		if !ok {
			continue
		}
		if st.Pending == nil {
			st.Pending = map[string]int64{}
		}
		var n int64
		for _, p := range stage1.Status() {
			s, release, ok := stage1.Store(p.Partition)
			if !ok {
				continue
			}
			k, since, err := pp.Pending(s)
			release()
			if err != nil || k == 0 {
				continue
			}
			n += k
			if oldest.IsZero() || since.Before(oldest) {
				oldest = since
			}
		}
		st.Pending[pr.spec.Name] = n
	}
	return oldest
}

// placement locates the stage-2 partition of a key: this instance's
// store when it owns the partition and the store is restored, else the
// owner the directory knows, else nothing (a rebalance).
type placement struct {
	runner     *topology.Runner
	dir        *cluster.Directory
	self       string
	group      string
	partitions int
}

func (pl *placement) Locate(key []byte) serve.Location {
	// NB: murmur2 of the key, as stage 1 routes the records.
	p := topology.KeyPartition(key, pl.partitions)
	if s, release, ok := pl.runner.Store(p); ok {
		return serve.Location{Store: s, Release: release}
	}
	if id, url, ok := pl.dir.Owner(pl.group, p); ok && id != pl.self {
		return serve.Location{Owner: url}
	}
	return serve.Location{}
}
