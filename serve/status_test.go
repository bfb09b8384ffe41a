package serve

import (
	"encoding/json"
	"maps"
	"strings"
	"testing"
)

// TestVersionStatusJSON: the users pending per processor are the fields
// <processor>_pending of a version's status (fans_pending and
// similar_pending, as scripts read them), and read back.
func TestVersionStatusJSON(t *testing.T) {
	vs := VersionStatus{Version: "v2", Pending: map[string]int64{"fans": 3, "similar": 0}, PendingAgeMS: 12}
	b, err := json.Marshal(vs)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`"fans_pending":3`, `"similar_pending":0`, `"pending_age_ms":12`, `"version":"v2"`} {
		if !strings.Contains(string(b), want) {
			t.Errorf("%s lacks %s", b, want)
		}
	}
	var back VersionStatus
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if !maps.Equal(back.Pending, vs.Pending) || back.Version != "v2" || back.PendingAgeMS != 12 {
		t.Errorf("read back %+v", back)
	}
	if b, _ := json.Marshal(VersionStatus{Version: "v1"}); strings.Contains(string(b), "pending") {
		t.Errorf("without pending processors: %s", b)
	}
}
