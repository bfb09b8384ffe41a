package replay

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

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
// listed).
func InstanceStatuses(ctx context.Context, brokers []string, directory string) (statuses []Status, unreachable []string, err error) {
	urls, err := cluster.ReadInstances(ctx, brokers, directory)
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

// EnvAPIKey is the environment variable holding the admin API key
// FetchStatus presents to instances that require keys.
const EnvAPIKey = "KAPPA_API_KEY"

// FetchStatus asks the instance at base URL for its status, with the
// admin key in $KAPPA_API_KEY when it is set.
func FetchStatus(ctx context.Context, base string) (Status, error) {
	ctx, cancel := context.WithTimeout(ctx, statusTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimSuffix(base, "/")+"/v1/status", nil)
	if err != nil {
		return Status{}, err
	}
	// NB: an instance that requires API keys shows its status to an
	// admin key only: the operator's, from the environment.
	if key := os.Getenv(EnvAPIKey); key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return Status{}, err
	}
	defer resp.Body.Close()
	switch resp.StatusCode {
	case http.StatusOK:
	case http.StatusUnauthorized, http.StatusForbidden:
		return Status{}, fmt.Errorf("status %s: HTTP %d: the instance requires an admin API key in $%s", base, resp.StatusCode, EnvAPIKey)
	default:
		return Status{}, fmt.Errorf("status %s: HTTP %d", base, resp.StatusCode)
	}
	var st Status
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
		return Status{}, fmt.Errorf("status %s: %w", base, err)
	}
	return st, nil
}
