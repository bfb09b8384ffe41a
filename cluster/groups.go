package cluster

import (
	"context"
	"errors"
	"log/slog"
	"maps"
	"slices"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
)

// describeTimeout bounds one DescribeGroups round trip.
const describeTimeout = 5 * time.Second

// stateStable is the group state in which assignments are complete.
const stateStable = "Stable"

// groupWatch describes the tracked groups. Only the refresh goroutine
// uses it.
type groupWatch struct {
	d   *Directory
	adm *kadm.Client
	// tracked is the directory's tracked groups when the describe began.
	tracked map[string]string
	// status is the last logged status of each group.
	status map[string]string
	// warned holds the groups whose members without an instance id
	// were logged.
	warned map[string]bool
}

// refresh describes the groups every RefreshInterval until ctx ends.
func (d *Directory) refresh(ctx context.Context, adm *kadm.Client) {
	w := &groupWatch{
		d:      d,
		adm:    adm,
		status: make(map[string]string),
		warned: make(map[string]bool),
	}
	t := time.NewTicker(d.cfg.RefreshInterval)
	defer t.Stop()
	for {
		d.mu.RLock()
		w.tracked = maps.Clone(d.tracked)
		d.mu.RUnlock()
		views := w.describe(ctx)
		if ctx.Err() != nil {
			return
		}
		d.mu.Lock()
		for g := range views {
			// NB: a group untracked while it was described stays out.
			if _, ok := d.tracked[g]; !ok {
				delete(views, g)
			}
		}
		d.groups = views
		d.mu.Unlock()
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// describe returns what the brokers say about each group now. A group
// that is not Stable, or that could not be described, gets no owners.
func (w *groupWatch) describe(ctx context.Context) map[string]assignment {
	groups := slices.Sorted(maps.Keys(w.tracked))
	views := make(map[string]assignment, len(groups))
	if len(groups) == 0 {
		return views
	}
	rctx, cancel := context.WithTimeout(ctx, describeTimeout)
	described, err := w.adm.DescribeGroups(rctx, groups...)
	cancel()
	for _, g := range groups {
		dg, ok := described[g]
		switch {
		case !ok:
			if err == nil {
				err = errors.New("missing from the answer")
			}
			w.log(g, slog.LevelWarn, "could not describe the group; its owners are unknown", "err", err)
		case errors.Is(dg.Err, kerr.GroupIDNotFound):
			w.log(g, slog.LevelInfo, "group does not exist yet")
		case dg.Err != nil:
			w.log(g, slog.LevelWarn, "could not describe the group; its owners are unknown", "err", dg.Err)
		case dg.State != stateStable:
			w.log(g, slog.LevelInfo, "group is not stable; its owners are unknown until it is", "state", dg.State)
		default:
			views[g] = w.owners(dg)
			w.log(g, slog.LevelInfo, "group is stable", "members", len(dg.Members))
		}
	}
	return views
}

// owners reads the assignment of a stable group.
func (w *groupWatch) owners(dg kadm.DescribedGroup) assignment {
	topic := w.tracked[dg.Group]
	owners := make(map[int32]string)
	for _, m := range dg.Members {
		if m.InstanceID == nil {
			if !w.warned[dg.Group] {
				w.warned[dg.Group] = true
				w.d.cfg.Logger.Warn("ignoring group members without an instance id: their partitions have no known owner",
					attrGroup, dg.Group, "member", m.MemberID)
			}
			continue
		}
		c, ok := m.Assigned.AsConsumer()
		if !ok {
			continue
		}
		for _, t := range c.Topics {
			if t.Topic != topic {
				continue
			}
			for _, p := range t.Partitions {
				owners[p] = *m.InstanceID
			}
		}
	}
	return assignment{stable: true, owners: owners}
}

// log logs msg for group g when it differs from the last message logged
// for g, so a group that stays in one state is logged once.
func (w *groupWatch) log(g string, level slog.Level, msg string, args ...any) {
	if w.status[g] == msg {
		return
	}
	w.status[g] = msg
	w.d.cfg.Logger.Log(context.Background(), level, msg, append([]any{attrGroup, g}, args...)...)
}
