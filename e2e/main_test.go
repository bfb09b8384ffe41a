// Package e2e runs the real kappa binary against a Kafka-protocol broker
// and checks its answers against an independent computation from the raw
// events. The tests import nothing under test except the generator (for
// input) and the embedded broker (as the external cluster); the peer
// benchmarks build their competitors on kappa's decoder and Pebble adapter
// and are checked against the same independent model.
package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// kappaBin is the kappa binary built for this test run.
var kappaBin string

// The cluster secret of the tests' instances.
const (
	envClusterSecret  = "KAPPA_CLUSTER_SECRET"
	testClusterSecret = "e2e-cluster-secret-0123456789abcdef"
)

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "kappa-e2e-bin")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	kappaBin = filepath.Join(dir, "kappa")
	// NB: every kappa process the tests start (up, process, replay…)
	// inherits the cluster secret: the instances of a test's cluster
	// share it, as an operator's would.
	if err := os.Setenv(envClusterSecret, testClusterSecret); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	build := exec.Command("go", "build", "-o", kappaBin, "../cmd/kappa")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "build kappa:", err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}
