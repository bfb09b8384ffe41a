package main

import (
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/kappa-stream/kappa/control"
	"github.com/kappa-stream/kappa/serve"
)

// TestVersionsBackend checks what a read of each kind of version gets
// before the control topic is read and after: 503 (serve.ErrStarting)
// while the instance cannot know or is starting the version, 404 for a
// retired or unknown one, the backend of a running one.
func TestVersionsBackend(t *testing.T) {
	vs := &versions{
		inst:    &instance{c: instanceConfig{controlTopic: "kappa.control"}},
		running: map[string]*versionRun{"v2": {name: "v2", backend: &serve.Backend{}}},
	}
	if _, err := vs.Backend("v2"); err != nil {
		t.Fatalf("running v2: %v", err)
	}
	if _, err := vs.Backend("v3"); !errors.Is(err, serve.ErrStarting) {
		t.Fatalf("before the control topic is read: %v, want ErrStarting", err)
	}
	retired := time.Now()
	vs.mu.Lock()
	vs.state = &control.State{
		Versions: map[string]control.Version{"v1": {Name: "v1", Retired: &retired}, "v2": {Name: "v2"}, "v3": {Name: "v3"}},
		Serving:  control.Serving{Version: "v2"},
	}
	vs.mu.Unlock()
	for _, tc := range []struct {
		version  string
		starting bool
		msg      string
	}{
		{"v1", false, "version v1 is retired (serving v2)"},
		{"v3", true, "version v3 is starting on this instance"},
		{"v4", false, `version "v4" does not run here (running: v2; serving v2)`},
	} {
		_, err := vs.Backend(tc.version)
		if err == nil || errors.Is(err, serve.ErrStarting) != tc.starting || !strings.Contains(err.Error(), tc.msg) {
			t.Errorf("%s: %v, want %q (starting: %t)", tc.version, err, tc.msg, tc.starting)
		}
	}
	if vs.Serving() != "v2" {
		t.Errorf("serving %q", vs.Serving())
	}
}

// TestReconcileServing follows the serving pointer of the control state.
func TestReconcileServing(t *testing.T) {
	vs := &versions{
		inst:    &instance{c: instanceConfig{controlTopic: "kappa.control"}, logger: slog.New(slog.DiscardHandler)},
		running: map[string]*versionRun{"v1": {name: "v1"}},
	}
	st := control.State{
		Versions: map[string]control.Version{"v1": {Name: "v1"}},
		Serving:  control.Serving{Version: "v1"},
	}
	vs.reconcile(t.Context(), st)
	if _, err := vs.Backend("v1"); vs.Serving() != "v1" || err != nil {
		t.Fatalf("after reconcile: serving %q, reading v1: %v", vs.Serving(), err)
	}
}
