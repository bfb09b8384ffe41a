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

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kappa-stream/kappa/cluster"
	"github.com/kappa-stream/kappa/serve"
)

// InstanceStatuses asks every instance in the directory topic for its
// status; unreachable lists those that did not answer (stopped ones stay
// listed). opts are extra franz-go options, e.g. TLS and SASL.
func InstanceStatuses(ctx context.Context, brokers []string, directory string, opts ...kgo.Opt) (statuses []serve.Status, unreachable []string, err error) {
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

// EnvAPIKey is the environment variable holding the admin API key
// FetchStatus presents to instances that require keys.
const EnvAPIKey = "KAPPA_API_KEY"

// FetchStatus asks the instance at base URL for its status, with the
// admin key in $KAPPA_API_KEY when it is set.
func FetchStatus(ctx context.Context, base string) (serve.Status, error) {
	ctx, cancel := context.WithTimeout(ctx, statusTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimSuffix(base, "/")+"/v1/status", nil)
	if err != nil {
		return serve.Status{}, err
	}
	// NB: an instance that requires API keys shows its status to an
	// admin key only: the operator's, from the environment.
	if key := os.Getenv(EnvAPIKey); key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return serve.Status{}, err
	}
	defer resp.Body.Close()
	switch resp.StatusCode {
	case http.StatusOK:
	case http.StatusUnauthorized, http.StatusForbidden:
		return serve.Status{}, fmt.Errorf("status %s: HTTP %d: the instance requires an admin API key in $%s", base, resp.StatusCode, EnvAPIKey)
	default:
		return serve.Status{}, fmt.Errorf("status %s: HTTP %d", base, resp.StatusCode)
	}
	var st serve.Status
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
		return serve.Status{}, fmt.Errorf("status %s: %w", base, err)
	}
	return st, nil
}
