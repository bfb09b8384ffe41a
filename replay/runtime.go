package replay

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"golang.org/x/sync/errgroup"

	"github.com/kappa-stream/kappa/cluster"
	"github.com/kappa-stream/kappa/control"
	"github.com/kappa-stream/kappa/processors"
	"github.com/kappa-stream/kappa/serve"
	"github.com/kappa-stream/kappa/state"
	"github.com/kappa-stream/kappa/topology"
)

// RuntimeConfig configures the versions an instance runs.
type RuntimeConfig struct {
	// Data is the instance's data directory: a version's stores are in
	// <Data>/<version>/.
	Data string
	// Input and DLQ are the listens topic and its dead letters; Partitions
	// is the partition count of Input, which every per-version topic
	// shares.
	Input, DLQ string
	Partitions int32
	// ControlTopic is the compacted topic of the versions.
	ControlTopic string
	// Specs are the processors (the registry's).
	Specs []processors.Spec
	// Declare is the configuration of Version, which the instance
	// declares, serving, when the cluster has no version yet; Configured
	// says it came from flags (which are ignored, with a warning, once
	// the cluster has versions).
	Declare    processors.Config
	Version    string
	Configured bool
	// Stage is the runner configuration every stage shares (brokers,
	// instance id, intervals, logger, metrics, client options).
	Stage topology.Config
	// StoreOpts are the options of every store (the shared cache).
	StoreOpts []state.Opt
	// RecentMiB and SimilarCacheMiB are handed to the processors
	// (processors.Env).
	RecentMiB, SimilarCacheMiB int
	// Admin provisions and inspects topics and groups; Client writes to
	// the control topic.
	Admin  *kadm.Client
	Client *kgo.Client
	// Directory is where the instance advertises the partitions it owns.
	Directory *cluster.Directory
	// Advertise is the instance's base URL, in its status.
	Advertise string
	// Logger receives the versions' events (default: discard).
	Logger *slog.Logger
	// RetryAfter is how long after a failure a version is started again
	// (default 30 s; doubled per failure in a row, at most 5 min).
	RetryAfter time.Duration
	// MaxFuture is how far after its record's timestamp a listen's ts may
	// lie; a later one goes to DLQ (default events.DefaultMaxFuture).
	MaxFuture time.Duration
}

// deltasPurgeInterval is how often stage 2 deletes the repartition
// records it has committed: the topic keeps only what is in flight.
const deltasPurgeInterval = 10 * time.Second

// reconcileInterval is how often the runtime retries the versions that
// could not start or failed, without a change in the control topic.
const reconcileInterval = 5 * time.Second

// maxRetryAfter bounds the wait before a failing version starts again.
const maxRetryAfter = 5 * time.Minute

// Runtime runs the topology versions of one instance, in step with the
// control topic: every active version runs, a retired one is stopped and
// its state directories deleted, and reads without version= go to the
// serving one. A version that fails (a bad configuration, a processor's
// error or panic) is stopped, reported in Status and started again
// later; the other versions, and the instance, keep running. It
// implements serve.Versions.
type Runtime struct {
	c RuntimeConfig

	mu sync.RWMutex
	// running are the versions running here, by name. REQUIRES: mu held.
	running map[string]*version
	// failed are the versions whose last start or run failed, by name,
	// with when they may start again. REQUIRES: mu held.
	failed map[string]*failure
	// state is the control topic's content as last reconciled; nil until
	// the topic has been read. REQUIRES: mu held.
	state *control.State
	// stopped receives a version whose stages stopped by themselves.
	stopped chan *version
}

// failure is a version that failed, and when it may start again.
type failure struct {
	err   error
	at    time.Time
	retry time.Time
	n     int // failures in a row
}

// NewRuntime returns the runtime of c; Run runs it.
func NewRuntime(c RuntimeConfig) *Runtime {
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.RetryAfter <= 0 {
		c.RetryAfter = 30 * time.Second
	}
	return &Runtime{c: c, running: map[string]*version{}, failed: map[string]*failure{}, stopped: make(chan *version, 8)}
}

// Run follows the control topic through f (which the caller runs) and
// runs its versions until ctx ends; then it stops them all. On a cluster
// without versions it first declares Version, serving.
func (rt *Runtime) Run(ctx context.Context, f *control.Follower) error {
	defer rt.stopAll()
	select {
	case <-f.Synced():
	case <-ctx.Done():
		return nil
	}
	st := f.State()
	if len(st.Versions) == 0 {
		if err := rt.declareFirst(ctx, f); err != nil {
			return err
		}
		st = f.State()
	} else if rt.c.Configured {
		rt.c.Logger.Warn("processor flags ignored: every version runs with the configuration it was declared with in "+rt.c.ControlTopic+
			"; kappa replay builds a version with another", "serving", st.Serving.Version)
	}
	t := time.NewTicker(reconcileInterval)
	defer t.Stop()
	for {
		rt.reconcile(ctx, st)
		select {
		case <-ctx.Done():
			return nil
		case v := <-rt.stopped:
			rt.stoppedBy(v)
		case <-f.Changed():
		case <-t.C:
		}
		st = f.State()
	}
}

// declareFirst declares Version, serving, and waits until the follower
// has read it back.
func (rt *Runtime) declareFirst(ctx context.Context, f *control.Follower) error {
	config, err := json.Marshal(rt.c.Declare)
	if err != nil {
		return err
	}
	now := time.Now().UTC()
	v := control.Version{Name: rt.c.Version, From: control.FromEarliest, Repartition: Repartition, Config: config, Created: now}
	if err := control.PutVersion(ctx, rt.c.Client, rt.c.ControlTopic, v); err != nil {
		return err
	}
	if err := control.PutServing(ctx, rt.c.Client, rt.c.ControlTopic, control.Serving{Version: v.Name, Since: now}); err != nil {
		return err
	}
	rt.c.Logger.Info("declared the first version", "version", v.Name, "config", rt.c.Declare.Describe())
	for {
		if st := f.State(); st.Serving.Version != "" {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-f.Changed():
		}
	}
}

// Serving implements serve.Versions.
func (rt *Runtime) Serving() string {
	rt.mu.RLock()
	defer rt.mu.RUnlock()
	return rt.serving()
}

// serving is the serving version, "" before the control topic is read.
// REQUIRES: mu held.
func (rt *Runtime) serving() string {
	if rt.state == nil {
		return ""
	}
	return rt.state.Serving.Version
}

// Backend implements serve.Versions.
func (rt *Runtime) Backend(v string) (*serve.Backend, error) {
	rt.mu.RLock()
	defer rt.mu.RUnlock()
	if vr, ok := rt.running[v]; ok {
		return vr.backend, nil
	}
	declared, known := control.Version{}, false
	if rt.state != nil {
		declared, known = rt.state.Versions[v]
	}
	switch {
	case rt.state == nil:
		return nil, fmt.Errorf("%w: the instance is reading %s", serve.ErrStarting, rt.c.ControlTopic)
	case known && !declared.Active():
		return nil, errors.New("version " + v + " is retired (serving " + rt.serving() + ")")
	case known && rt.failed[v] != nil:
		f := rt.failed[v]
		return nil, fmt.Errorf("%w: version %s failed on this instance (%v); it starts again at %s", serve.ErrStarting, v, f.err, f.retry.UTC().Format(time.RFC3339))
	case known:
		return nil, fmt.Errorf("%w: version %s is starting on this instance", serve.ErrStarting, v)
	}
	return nil, fmt.Errorf("version %q does not run here (running: %s; serving %s)", v,
		strings.Join(slices.Sorted(maps.Keys(rt.running)), ", "), rt.serving())
}

// Ready reports whether the serving version is ready: its stores are
// restored and it has caught up with the log.
func (rt *Runtime) Ready(ctx context.Context) (bool, error) {
	rt.mu.RLock()
	vr := rt.running[rt.serving()]
	rt.mu.RUnlock()
	if vr == nil {
		return false, nil
	}
	return vr.ready(ctx)
}

// Status is the instance's view of its versions (GET /v1/status).
func (rt *Runtime) Status() serve.Status {
	rt.mu.RLock()
	defer rt.mu.RUnlock()
	st := serve.Status{Instance: rt.c.Stage.InstanceID, HTTP: rt.c.Advertise, Serving: rt.serving()}
	names := slices.Collect(maps.Keys(rt.running))
	for n := range rt.failed {
		if _, ok := rt.running[n]; !ok {
			names = append(names, n)
		}
	}
	slices.SortFunc(names, func(a, b string) int { return control.Number(a) - control.Number(b) })
	for _, name := range names {
		var vs serve.VersionStatus
		if vr := rt.running[name]; vr != nil {
			vs = vr.status(name == st.Serving)
		} else {
			vs = serve.VersionStatus{Version: name, Serving: name == st.Serving}
			if rt.state != nil {
				vs.Config = rt.state.Versions[name].Config
			}
		}
		if f := rt.failed[name]; f != nil {
			vs.Failed = &serve.Failure{Error: f.err.Error(), At: f.at, RetryAt: f.retry, Failures: f.n}
		}
		st.Versions = append(st.Versions, vs)
	}
	return st
}

// reconcile brings the running versions in step with the control state:
// starts the active versions that do not run (unless they failed and
// wait to retry), stops the retired ones and deletes their state.
func (rt *Runtime) reconcile(ctx context.Context, st control.State) {
	rt.mu.Lock()
	if was := rt.serving(); st.Serving.Version != was {
		rt.c.Logger.Info("serving version", "version", st.Serving.Version, "was", was, "since", st.Serving.Since)
	}
	rt.state = &st
	rt.mu.Unlock()
	for _, v := range st.Sorted() {
		if v.Active() {
			rt.start(ctx, v)
		} else {
			rt.retire(v)
		}
	}
}

// fail records that version name failed with err.
func (rt *Runtime) fail(name string, err error) {
	rt.mu.Lock()
	defer rt.mu.Unlock()
	f := rt.failed[name]
	if f == nil {
		f = &failure{}
		rt.failed[name] = f
	}
	f.n++
	wait := min(rt.c.RetryAfter<<min(f.n-1, 10), maxRetryAfter)
	f.err, f.at, f.retry = err, time.Now(), time.Now().Add(wait)
	rt.c.Logger.Error("version failed; the other versions keep running, it starts again later", "version", name, "retry_in", wait, "err", err)
}

// start runs version v unless it runs already or waits to retry.
func (rt *Runtime) start(ctx context.Context, v control.Version) {
	rt.mu.RLock()
	_, ok := rt.running[v.Name]
	f := rt.failed[v.Name]
	rt.mu.RUnlock()
	if ok || (f != nil && time.Now().Before(f.retry)) {
		return
	}
	vr, err := rt.newVersion(ctx, v)
	if err != nil {
		rt.fail(v.Name, err)
		return
	}
	rctx, cancel := context.WithCancel(ctx)
	vr.cancel = cancel
	rt.mu.Lock()
	rt.running[v.Name] = vr
	rt.mu.Unlock()
	rt.c.Directory.Track(vr.n.AggregatesGroup, vr.n.Deltas)
	rt.c.Logger.Info("version running", "version", v.Name, "from", v.From, "config", vr.config.Describe())
	go func() {
		g, gctx := errgroup.WithContext(rctx)
		for _, s := range vr.stages {
			g.Go(func() error { return s.runner.Run(gctx) })
		}
		vr.err = g.Wait()
		close(vr.done)
		if rctx.Err() == nil {
			select {
			case rt.stopped <- vr:
			case <-ctx.Done():
			}
		}
	}()
}

// stoppedBy handles a version whose stages stopped by themselves: it is
// taken out of the running ones and, on an error, marked failed.
func (rt *Runtime) stoppedBy(vr *version) {
	rt.mu.Lock()
	if rt.running[vr.name] == vr {
		delete(rt.running, vr.name)
	}
	rt.mu.Unlock()
	rt.c.Directory.Untrack(vr.n.AggregatesGroup)
	err := vr.err
	if err == nil {
		err = errors.New("its stages stopped")
	}
	rt.fail(vr.name, err)
}

// retire stops version v if it runs and deletes its state directories.
func (rt *Runtime) retire(v control.Version) {
	rt.mu.Lock()
	vr := rt.running[v.Name]
	delete(rt.running, v.Name)
	delete(rt.failed, v.Name)
	rt.mu.Unlock()
	if vr != nil {
		rt.c.Directory.Untrack(vr.n.AggregatesGroup)
		vr.cancel()
		<-vr.done
		rt.leave(vr.groups()...)
		rt.c.Logger.Info("retired version stopped", "version", v.Name)
	}
	dir := filepath.Join(rt.c.Data, v.Name)
	if _, err := os.Stat(dir); err != nil {
		return
	}
	if err := os.RemoveAll(dir); err != nil {
		rt.c.Logger.Error("deleting a retired version's state failed", "version", v.Name, "dir", dir, "err", err)
		return
	}
	rt.c.Logger.Info("retired version's state deleted", "version", v.Name, "dir", dir)
}

// stopAll stops every running version and waits for them.
func (rt *Runtime) stopAll() {
	rt.mu.Lock()
	running := slices.Collect(maps.Values(rt.running))
	rt.mu.Unlock()
	for _, vr := range running {
		vr.cancel()
	}
	for _, vr := range running {
		<-vr.done
	}
}

// leaveTimeout bounds the LeaveGroup of a retired version's groups.
const leaveTimeout = 5 * time.Second

// leave takes this instance out of groups at once. A static member that
// stops does not leave its groups (a restart takes its partitions back),
// so without this a retired version's groups would keep it as a member,
// and could not be deleted, until its session timed out.
func (rt *Runtime) leave(groups ...string) {
	ctx, cancel := context.WithTimeout(context.Background(), leaveTimeout)
	defer cancel()
	for _, g := range groups {
		resp, err := rt.c.Admin.LeaveGroup(ctx, kadm.LeaveGroup(g).InstanceIDs(rt.c.Stage.InstanceID).Reason("version retired"))
		if err == nil {
			err = resp.Error()
		}
		if err != nil {
			rt.c.Logger.Warn("leaving a retired version's group failed; it lets this instance go when its session times out", "group", g, "err", err)
		}
	}
}
