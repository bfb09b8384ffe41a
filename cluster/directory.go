// Package cluster is kappa's instance directory: which instance owns each
// partition of a consumer group's input topic, and at which HTTP base URL
// that instance answers. Any instance can then route a query to the
// instance that holds the partition's state.
//
// Two sources make the directory. Every instance advertises itself in a
// compacted directory topic (key: instance id; value: JSON
// {"instance_id", "http", "started"}) and follows that topic from the
// start, so it knows every instance's URL; the latest record per key
// wins, and a tombstone removes the instance. And every instance
// describes the tracked consumer groups periodically: the members use
// static membership, so each assignment names its owner by instance id.
//
// While a group is not Stable (a rebalance is in progress) its owners are
// unknown: a query then gets "retry later" rather than going to an owner
// that may be giving its partitions up. Routing stays advisory even so:
// the owner a directory names may have moved since the last describe, so
// an instance must answer a routed request only from a store it holds.
package cluster

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// Log attribute keys.
const (
	attrTopic     = "topic"
	attrPartition = "partition"
	attrOffset    = "offset"
	attrGroup     = "group"
	attrInstance  = "instance"
)

// Directory tracks the instances of a kappa cluster and the partitions
// they own. Create it with New and start it with Run; Owner and Members
// are safe for concurrent use with Run and with each other.
type Directory struct {
	cfg     Config
	started time.Time
	running atomic.Bool

	mu sync.RWMutex
	// instances are the other instances advertised in the directory
	// topic, by id. This instance's own entry comes from cfg, never from
	// the topic. REQUIRES: mu held.
	instances map[string]instance
	// tracked maps the tracked groups to their input topics.
	// REQUIRES: mu held.
	tracked map[string]string
	// groups holds the latest description of every tracked group.
	// REQUIRES: mu held.
	groups map[string]assignment
}

// instance is one advertised instance.
type instance struct {
	url     string
	started time.Time
}

// assignment is what one describe found out about a group.
type assignment struct {
	// stable is false while the group rebalances, or when it could not be
	// described; owners is then nil.
	stable bool
	// owners maps each assigned partition of the group's topic to the
	// instance id of its member.
	owners map[int32]string
}

// New validates cfg and creates a Directory. It does not contact the
// brokers; until Run has described the groups, Owner knows no owner.
func New(cfg Config) (*Directory, error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	tracked := maps.Clone(cfg.Groups)
	if tracked == nil {
		tracked = make(map[string]string)
	}
	return &Directory{
		cfg:       cfg,
		started:   time.Now(),
		instances: make(map[string]instance),
		tracked:   tracked,
		groups:    make(map[string]assignment),
	}, nil
}

// Track adds group, whose members are assigned partitions of topic, to
// the groups whose owners the directory tracks (from the next refresh on).
func (d *Directory) Track(group, topic string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.tracked[group] = topic
}

// Untrack stops tracking group; its owners are unknown from now on.
func (d *Directory) Untrack(group string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	delete(d.tracked, group)
	delete(d.groups, group)
}

// Run advertises this instance, follows the directory topic and describes
// the groups every RefreshInterval, until ctx ends; then it returns nil.
// Failures to reach the brokers are logged and retried, never returned;
// Run fails only when ClientOpts are invalid or when it is called a
// second time. Once Run has returned, Owner knows no owner.
func (d *Directory) Run(ctx context.Context) error {
	if !d.running.CompareAndSwap(false, true) {
		return errors.New("cluster: Run called twice")
	}
	opts := []kgo.Opt{
		kgo.SeedBrokers(d.cfg.Brokers...),
		kgo.ConsumeTopics(d.cfg.Topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
	}
	cl, err := kgo.NewClient(append(opts, d.cfg.ClientOpts...)...)
	if err != nil {
		return fmt.Errorf("cluster: client: %w", err)
	}
	defer cl.Close()
	var wg sync.WaitGroup
	wg.Go(func() { d.advertise(ctx, cl) })
	wg.Go(func() { d.follow(ctx, cl) })
	wg.Go(func() { d.refresh(ctx, kadm.NewClient(cl)) })
	wg.Wait()
	d.mu.Lock()
	clear(d.groups)
	d.mu.Unlock()
	return nil
}

// Owner returns the instance that owns partition of group's topic and
// its HTTP base URL. ok is false when that is not known right now: the
// group is rebalancing or could not be described, the partition is not
// assigned, its member has no instance id, or its instance has not
// advertised a URL. The caller should then answer "retry later". Owner
// never blocks on the network.
func (d *Directory) Owner(group string, partition int32) (instanceID, url string, ok bool) {
	d.mu.RLock()
	defer d.mu.RUnlock()
	a := d.groups[group]
	id, assigned := a.owners[partition]
	if !a.stable || !assigned {
		return "", "", false
	}
	if id == d.cfg.InstanceID {
		return id, d.cfg.HTTP, true
	}
	inst, advertised := d.instances[id]
	if !advertised {
		return "", "", false
	}
	return id, inst.url, true
}

// Member is an instance as the directory sees it.
type Member struct {
	InstanceID string
	// HTTP is the instance's base URL; empty when the instance owns
	// partitions but has not advertised itself.
	HTTP string
	// Started is when the instance started; zero when unknown.
	Started time.Time
	// Partitions are the partitions the instance owns, in order, per
	// tracked group that is stable.
	Partitions map[string][]int32
}

// Members lists this instance, every advertised instance and every
// instance that owns partitions, by instance id. An instance that stopped
// stays listed (its record is not withdrawn: as a static member it keeps
// its partitions for the session timeout, and a restart takes them back)
// until a tombstone for its id is written to the directory topic.
func (d *Directory) Members() []Member {
	d.mu.RLock()
	defer d.mu.RUnlock()
	byID := map[string]*Member{
		d.cfg.InstanceID: {InstanceID: d.cfg.InstanceID, HTTP: d.cfg.HTTP, Started: d.started},
	}
	member := func(id string) *Member {
		m, ok := byID[id]
		if !ok {
			m = &Member{InstanceID: id}
			byID[id] = m
		}
		return m
	}
	for id, inst := range d.instances {
		m := member(id)
		m.HTTP, m.Started = inst.url, inst.started
	}
	for group, a := range d.groups {
		if !a.stable {
			continue
		}
		for p, id := range a.owners {
			m := member(id)
			if m.Partitions == nil {
				m.Partitions = make(map[string][]int32)
			}
			m.Partitions[group] = append(m.Partitions[group], p)
		}
	}
	out := make([]Member, 0, len(byID))
	for _, id := range slices.Sorted(maps.Keys(byID)) {
		m := byID[id]
		for _, ps := range m.Partitions {
			slices.Sort(ps)
		}
		out = append(out, *m)
	}
	return out
}
