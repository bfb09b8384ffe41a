package replay

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kappa-stream/kappa/cluster"
	"github.com/kappa-stream/kappa/topology"
)

// Status is an instance's view of itself, the body of its GET /v1/status.
type Status struct {
	Instance string          `json:"instance"`
	HTTP     string          `json:"http"`
	Serving  string          `json:"serving"`
	Versions []VersionStatus `json:"versions"`
}

// VersionStatus is one version running on the instance.
type VersionStatus struct {
	Version string          `json:"version"`
	Serving bool            `json:"serving"`
	Config  json.RawMessage `json:"config"`
	Stages  []StageStatus   `json:"stages"`
	// SimilarPending is the number of users of this instance's stage-1
	// partitions whose changed signature stage 2 does not have yet
	// (--similar-delay); absent without --similar.
	SimilarPending *int64 `json:"similar_pending,omitempty"`
	// FansPending is the number of users of this instance's stage-1
	// partitions whose moved home or new fandom stage 2 does not count yet
	// (--fan-delay); absent without --fan-zones.
	FansPending *int64 `json:"fans_pending,omitempty"`
	// PendingAgeMS is how long the user pending longest (fan zones or
	// similar users) has waited, in ms; 0 when none is pending.
	PendingAgeMS int64 `json:"pending_age_ms,omitempty"`
}

// StageStatus is the instance's partitions of one stage.
type StageStatus struct {
	Group      string                     `json:"group"`
	Topic      string                     `json:"topic"`
	Partitions []topology.PartitionStatus `json:"partitions"`
}

// InstanceStatuses asks every instance in the directory topic for its
// status; unreachable lists those that did not answer (stopped ones stay
// listed). opts are extra franz-go options, e.g. TLS and SASL.
func InstanceStatuses(ctx context.Context, brokers []string, directory string, opts ...kgo.Opt) (statuses []Status, unreachable []string, err error) {
	urls, err := cluster.ReadInstances(ctx, brokers, directory, opts...)
	if err != nil {
		return nil, nil, err
	}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for id, url := range urls {
		wg.Go(func() {
			st, err := FetchStatus(ctx, url)
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

// FetchStatus asks the instance at base URL for its status.
func FetchStatus(ctx context.Context, base string) (Status, error) {
	ctx, cancel := context.WithTimeout(ctx, statusTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimSuffix(base, "/")+"/v1/status", nil)
	if err != nil {
		return Status{}, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return Status{}, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return Status{}, fmt.Errorf("status %s: HTTP %d", base, resp.StatusCode)
	}
	var st Status
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
		return Status{}, fmt.Errorf("status %s: %w", base, err)
	}
	return st, nil
}
