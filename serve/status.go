package serve

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"

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
	// Pending is, per processor that holds users back before publishing
	// them (fan zones: --fan-delay; similar users: --similar-delay), the
	// number of users of this instance's stage-1 partitions that stage 2
	// does not have yet. In JSON each is a field "<processor>_pending"
	// (fans_pending, similar_pending); absent when the processor is off.
	Pending map[string]int64 `json:"-"`
	// PendingAgeMS is how long the user pending longest (fan zones or
	// similar users) has waited, in ms; 0 when none is pending.
	PendingAgeMS int64 `json:"pending_age_ms,omitempty"`
	// Failed says that the version failed on this instance (nil: it did
	// not): it is not running, and starts again at RetryAt.
	Failed *Failure `json:"failed,omitempty"`
}

// Failure is a version's last failure on an instance.
type Failure struct {
	Error string `json:"error"`
	// At is when it failed, RetryAt when it starts again.
	At      time.Time `json:"at"`
	RetryAt time.Time `json:"retry_at"`
	// Failures counts the failures in a row.
	Failures int `json:"failures"`
}

const pendingSuffix = "_pending"

// MarshalJSON writes the fields and one "<processor>_pending" per
// Pending entry.
func (vs VersionStatus) MarshalJSON() ([]byte, error) {
	type plain VersionStatus
	b, err := json.Marshal(plain(vs))
	if err != nil || len(vs.Pending) == 0 {
		return b, err
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, err
	}
	for name, n := range vs.Pending {
		m[name+pendingSuffix] = json.RawMessage(strconv.FormatInt(n, 10))
	}
	return json.Marshal(m)
}

// UnmarshalJSON reads what MarshalJSON writes.
func (vs *VersionStatus) UnmarshalJSON(b []byte) error {
	type plain VersionStatus
	if err := json.Unmarshal(b, (*plain)(vs)); err != nil {
		return err
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(b, &m); err != nil {
		return err
	}
	for k, v := range m {
		name, ok := strings.CutSuffix(k, pendingSuffix)
		if !ok {
			continue
		}
		n, err := strconv.ParseInt(string(v), 10, 64)
		if err != nil {
			return fmt.Errorf("%s: %w", k, err)
		}
		if vs.Pending == nil {
			vs.Pending = map[string]int64{}
		}
		vs.Pending[name] = n
	}
	return nil
}

// StageStatus is the instance's partitions of one stage.
type StageStatus struct {
	Group      string                     `json:"group"`
	Topic      string                     `json:"topic"`
	Partitions []topology.PartitionStatus `json:"partitions"`
}
