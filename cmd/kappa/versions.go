package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"golang.org/x/sync/errgroup"

	"github.com/kappa-stream/kappa/control"
	"github.com/kappa-stream/kappa/processors/fans"
	"github.com/kappa-stream/kappa/processors/live"
	"github.com/kappa-stream/kappa/processors/rollups"
	"github.com/kappa-stream/kappa/processors/similar"
	"github.com/kappa-stream/kappa/processors/topk"
	"github.com/kappa-stream/kappa/replay"
	"github.com/kappa-stream/kappa/serve"
	"github.com/kappa-stream/kappa/state"
	"github.com/kappa-stream/kappa/topology"
)

// versionRun is one topology version running on this instance: both
// stages of every processor it has on, and its read side.
type versionRun struct {
	name  string
	procs processors
	n     replay.Names
	// stages are stage 1 (on listens), stage 2 (on the repartition
	// topic) and, with --similar, the features stage.
	stages  []stage
	backend *serve.Backend
	cancel  context.CancelFunc
	// done is closed when every stage has stopped; err is their first
	// failure, set before.
	done chan struct{}
	err  error
}

// stage is one consumer group of a version: its runner, group and input.
type stage struct {
	runner       *topology.Runner
	group, topic string
}

// groups are the consumer groups of the version's stages.
func (vr *versionRun) groups() []string {
	out := make([]string, len(vr.stages))
	for i, s := range vr.stages {
		out[i] = s.group
	}
	return out
}

// ready reports whether every stage has joined and caught up.
func (vr *versionRun) ready(ctx context.Context) (bool, error) {
	for _, s := range vr.stages {
		if ok, err := s.runner.Ready(ctx); !ok || err != nil {
			return false, err
		}
	}
	return true, nil
}

func (vr *versionRun) status(serving bool) replay.VersionStatus {
	// NB: a processors value always marshals.
	config, _ := json.Marshal(vr.procs)
	st := replay.VersionStatus{Version: vr.name, Serving: serving, Config: config}
	for _, s := range vr.stages {
		st.Stages = append(st.Stages, replay.StageStatus{Group: s.group, Topic: s.topic, Partitions: s.runner.Status()})
	}
	if vr.procs.fanZones || vr.procs.simOn {
		fans, sim, oldest := vr.pending()
		if vr.procs.fanZones {
			st.FansPending = &fans
		}
		if vr.procs.simOn {
			st.SimilarPending = &sim
		}
		if !oldest.IsZero() {
			st.PendingAgeMS = max(time.Since(oldest).Milliseconds(), 1)
		}
	}
	return st
}

// pending counts the users of the instance's stage-1 partitions whose
// fan-zone counts and similar-users signature stage 2 does not have yet,
// and since when the oldest of them waits (zero: none); a store it cannot
// read (moving, restoring) counts nothing.
func (vr *versionRun) pending() (fansN, simN int64, oldest time.Time) {
	stage1 := vr.stages[0].runner
	count := func(n *int64, s *state.Store, f func(*state.Store) (int64, time.Time, error)) {
		k, since, err := f(s)
		if err != nil || k == 0 {
			return
		}
		*n += k
		if oldest.IsZero() || since.Before(oldest) {
			oldest = since
		}
	}
	for _, p := range stage1.Status() {
		s, release, ok := stage1.Store(p.Partition)
		if !ok {
			continue
		}
		if vr.procs.fanZones {
			count(&fansN, s, fans.PendingUsers)
		}
		if vr.procs.simOn {
			count(&simN, s, similar.PendingUsers)
		}
		release()
	}
	return fansN, simN, oldest
}

// versions are the topology versions of one instance, kept in step with
// the control topic: every active version runs, a retired one is stopped
// and its state directories deleted, and reads without version= go to
// the serving one. It implements serve.Versions.
type versions struct {
	inst *instance

	mu sync.RWMutex
	// running are the versions running here, by name. REQUIRES: mu held.
	running map[string]*versionRun
	// state is the control topic's content as last reconciled; nil until
	// the topic has been read. REQUIRES: mu held.
	state *control.State
	// failed receives the first version whose stages failed.
	failed chan *versionRun
}

func (vs *versions) Serving() string {
	vs.mu.RLock()
	defer vs.mu.RUnlock()
	return vs.serving()
}

// serving is the serving version, "" before the control topic is read.
// REQUIRES: mu held.
func (vs *versions) serving() string {
	if vs.state == nil {
		return ""
	}
	return vs.state.Serving.Version
}

func (vs *versions) Backend(v string) (*serve.Backend, error) {
	vs.mu.RLock()
	defer vs.mu.RUnlock()
	if vr, ok := vs.running[v]; ok {
		return vr.backend, nil
	}
	declared, known := control.Version{}, false
	if vs.state != nil {
		declared, known = vs.state.Versions[v]
	}
	switch {
	case vs.state == nil:
		return nil, fmt.Errorf("%w: the instance is reading %s", serve.ErrStarting, vs.inst.c.controlTopic)
	case known && !declared.Active():
		return nil, errors.New("version " + v + " is retired (serving " + vs.serving() + ")")
	case known:
		return nil, fmt.Errorf("%w: version %s is starting on this instance", serve.ErrStarting, v)
	}
	return nil, fmt.Errorf("version %q does not run here (running: %s; serving %s)", v,
		strings.Join(slices.Sorted(maps.Keys(vs.running)), ", "), vs.serving())
}

// ready reports whether the serving version is ready: its stores are
// restored and it has caught up with the log.
func (vs *versions) ready(ctx context.Context) (bool, error) {
	vs.mu.RLock()
	vr := vs.running[vs.serving()]
	vs.mu.RUnlock()
	if vr == nil {
		return false, nil
	}
	return vr.ready(ctx)
}

func (vs *versions) status() replay.Status {
	vs.mu.RLock()
	defer vs.mu.RUnlock()
	st := replay.Status{Instance: vs.inst.c.instanceID, HTTP: vs.inst.advertise, Serving: vs.serving()}
	for _, name := range slices.SortedFunc(maps.Keys(vs.running), func(a, b string) int { return control.Number(a) - control.Number(b) }) {
		st.Versions = append(st.Versions, vs.running[name].status(name == st.Serving))
	}
	return st
}

// reconcile brings the running versions in step with the control state:
// starts the active versions that do not run, stops the retired ones and
// deletes their state. A version that cannot start now (its topics cannot
// be provisioned) is logged and left for the next call.
func (vs *versions) reconcile(ctx context.Context, st control.State) {
	vs.mu.Lock()
	if was := vs.serving(); st.Serving.Version != was {
		vs.inst.logger.Info("serving version", "version", st.Serving.Version, "was", was, "since", st.Serving.Since)
	}
	vs.state = &st
	vs.mu.Unlock()
	for _, v := range st.Sorted() {
		if v.Active() {
			vs.start(ctx, v)
		} else {
			vs.retire(v.Name)
		}
	}
}

// start runs version v unless it runs already.
func (vs *versions) start(ctx context.Context, v control.Version) {
	vs.mu.RLock()
	_, ok := vs.running[v.Name]
	vs.mu.RUnlock()
	if ok {
		return
	}
	var procs processors
	if err := json.Unmarshal(v.Config, &procs); err != nil {
		vs.inst.logger.Error("version has a configuration this instance cannot read; not running it", "version", v.Name, "err", err)
		return
	}
	vr, err := vs.inst.newVersion(ctx, v.Name, procs)
	if err != nil {
		vs.inst.logger.Error("starting version failed; retrying", "version", v.Name, "err", err)
		return
	}
	rctx, cancel := context.WithCancel(ctx)
	vr.cancel = cancel
	vs.mu.Lock()
	vs.running[v.Name] = vr
	vs.mu.Unlock()
	vs.inst.dir.Track(vr.n.AggregatesGroup, vr.n.Deltas)
	vs.inst.logger.Info("version running", "version", v.Name, "from", v.From, "config", procs.describe())
	go func() {
		g, gctx := errgroup.WithContext(rctx)
		for _, s := range vr.stages {
			g.Go(func() error { return s.runner.Run(gctx) })
		}
		vr.err = g.Wait()
		close(vr.done)
		if vr.err != nil {
			select {
			case vs.failed <- vr:
			default:
			}
		}
	}()
}

// retire stops version name if it runs and deletes its state directories.
func (vs *versions) retire(name string) {
	vs.mu.Lock()
	vr := vs.running[name]
	delete(vs.running, name)
	vs.mu.Unlock()
	if vr != nil {
		vs.inst.dir.Untrack(vr.n.AggregatesGroup)
		vr.cancel()
		<-vr.done
		vs.inst.leave(vr.groups()...)
		vs.inst.logger.Info("retired version stopped", "version", name)
	}
	dir := filepath.Join(vs.inst.c.data, name)
	if _, err := os.Stat(dir); err != nil {
		return
	}
	if err := os.RemoveAll(dir); err != nil {
		vs.inst.logger.Error("deleting a retired version's state failed", "version", name, "dir", dir, "err", err)
		return
	}
	vs.inst.logger.Info("retired version's state deleted", "version", name, "dir", dir)
}

// stopAll stops every running version and waits for them.
func (vs *versions) stopAll() {
	vs.mu.Lock()
	running := slices.Collect(maps.Values(vs.running))
	vs.mu.Unlock()
	for _, vr := range running {
		vr.cancel()
	}
	for _, vr := range running {
		<-vr.done
	}
}

// newVersion provisions version name's topics and builds its stages.
func (inst *instance) newVersion(ctx context.Context, name string, procs processors) (*versionRun, error) {
	n := replay.NamesOf(inst.c.data, name)
	pctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	err := provisionVersion(pctx, inst.adm, inst.logger, n, inst.partitions, inst.featureParts)
	cancel()
	if err != nil {
		return nil, fmt.Errorf("provision the topics of %s: %w", name, err)
	}
	partitions := inst.partitions
	users := inst.common
	users.Group, users.Topic, users.DLQTopic = n.UsersGroup, topicListens, topicDLQ
	users.ManualTopics = []string{n.Deltas}
	var fanProc *fans.Processor
	if procs.fanZones {
		if fanProc, err = fans.NewProcessor(procs.fans); err != nil {
			return nil, err
		}
	}
	simIndex, err := procs.similarIndex()
	if err != nil {
		return nil, err
	}
	if fanProc != nil || simIndex != nil {
		users.Changelog, users.StoreDir, users.StoreOpts = n.UsersChangelog, n.UsersDir, inst.storeOpts
	}
	users.NewTask = func(p int32, s *state.Store) (topology.Task, error) {
		t := &listensTask{rollups: rollups.NewUserTask(n.Deltas, partitions), now: time.Now}
		if procs.topSongs {
			t.topkSongs = topk.NewSongCollector(n.Deltas, partitions)
		}
		if !procs.liveOff {
			t.live = live.NewCollector(procs.live, p, n.Deltas, partitions)
		}
		if fanProc != nil {
			var err error
			if t.fans, err = fans.NewCollector(fanProc, s, n.Deltas, partitions); err != nil {
				return nil, err
			}
		}
		if simIndex != nil {
			var err error
			if t.similar, err = simIndex.NewUserCollector(s, n.Deltas, partitions); err != nil {
				return nil, err
			}
		}
		return t, nil
	}
	stage1, err := topology.New(users)
	if err != nil {
		return nil, err
	}
	aggregates := inst.common
	aggregates.Group, aggregates.Topic, aggregates.Changelog = n.AggregatesGroup, n.Deltas, n.Changelog
	aggregates.StoreDir = n.AggregatesDir
	aggregates.PurgeInterval = deltasPurgeInterval
	aggregates.StoreOpts = inst.storeOpts
	if simIndex != nil {
		// NB: a similarity query scores hundreds of items, each read by
		// many queries: in memory, not a Pebble seek each.
		aggregates.StoreOpts = append(slices.Clone(inst.storeOpts),
			state.WithReadCache((inst.c.similarCacheMiB<<20)/int(partitions), similar.IsItemKey))
	}
	// NB: one repartition record sums a commit interval of a listens
	// partition, so stage 2 is ready within a few intervals, not within
	// stage 1's 1,000 records.
	aggregates.ReadyLag = replay.ReadyDeltasIntervals * 2 * int64(partitions)
	// NB: each task has a Recent of its own, made anew with the task
	// after an abort.
	recent := (inst.c.recentMiB << 20) / int(partitions)
	aggregates.NewTask = func(_ int32, s *state.Store) (topology.Task, error) {
		t := &aggregatesTask{rollups: rollups.NewAggregateTask(s, state.NewRecent(recent))}
		if fanProc != nil {
			t.fans = fans.NewCountTask(s)
		}
		if procs.topK {
			t.topk = topk.NewIndexer(s)
			t.rollups.Observe(t.topk)
		}
		if procs.topSongs {
			t.topkSongs = topk.NewSongTask(s)
		}
		if simIndex != nil {
			t.similar = simIndex.NewIndexTask(s)
		}
		if !procs.liveOff {
			var err error
			if t.live, err = live.NewTask(procs.live, s, partitions, n.LiveFinal, inst.liveMetrics); err != nil {
				return nil, err
			}
		}
		return t, nil
	}
	stage2, err := topology.New(aggregates)
	if err != nil {
		return nil, err
	}
	stages := []stage{{stage1, n.UsersGroup, topicListens}, {stage2, n.AggregatesGroup, n.Deltas}}
	if simIndex != nil {
		features := inst.common
		features.Group, features.Topic, features.DLQTopic = n.FeaturesGroup, topicFeatures, topicFeaturesDLQ
		features.Changelog, features.StoreDir = n.FeaturesChangelog, n.FeaturesDir
		// NB: a song's vector changes seldom; small memtables keep the
		// features stores from holding memory the stages need.
		features.StoreOpts = append(slices.Clone(inst.storeOpts), state.WithMemTableSize(featuresMemTableSize))
		features.ManualTopics = []string{n.Deltas}
		features.NewTask = func(_ int32, s *state.Store) (topology.Task, error) {
			return simIndex.NewFeatureTask(s, n.Deltas, partitions), nil
		}
		featureStage, err := topology.New(features)
		if err != nil {
			return nil, err
		}
		stages = append(stages, stage{featureStage, n.FeaturesGroup, topicFeatures})
	}
	topPartitions := 0
	if procs.topK {
		topPartitions = int(partitions)
	}
	return &versionRun{
		name: name, procs: procs, n: n, stages: stages,
		backend: &serve.Backend{
			Rollups: &placement{runner: stage2, dir: inst.dir, self: inst.c.instanceID, group: n.AggregatesGroup,
				partitions: int(partitions)},
			Live:           procs.liveServed(),
			Fans:           procs.fansServed(),
			Similar:        simIndex,
			TopPartitions:  topPartitions,
			TopArtistSongs: procs.topSongs,
		},
		done: make(chan struct{}),
	}, nil
}

// featuresMemTableSize is the memtable size of a features-stage store.
const featuresMemTableSize = 4 << 20

// leaveTimeout bounds the LeaveGroup of a retired version's groups.
const leaveTimeout = 5 * time.Second

// leave takes this instance out of groups at once. A static member that
// stops does not leave its groups (a restart takes its partitions back),
// so without this a retired version's groups would keep it as a member,
// and could not be deleted, until its session timed out.
func (inst *instance) leave(groups ...string) {
	ctx, cancel := context.WithTimeout(context.Background(), leaveTimeout)
	defer cancel()
	for _, g := range groups {
		resp, err := inst.adm.LeaveGroup(ctx, kadm.LeaveGroup(g).InstanceIDs(inst.c.instanceID).Reason("version retired"))
		if err == nil {
			err = resp.Error()
		}
		if err != nil {
			inst.logger.Warn("leaving a retired version's group failed; it lets this instance go when its session times out", "group", g, "err", err)
		}
	}
}
