package main

import (
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"
)

// TestCheckAuth validates the access flags and finds the cluster secret
// in a file or the environment.
func TestCheckAuth(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "secret")
	if err := os.WriteFile(good, []byte("0123456789abcdef0123456789abcdef\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	short := filepath.Join(dir, "short")
	if err := os.WriteFile(short, []byte("tiny\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name       string
		args       []string
		env        string
		standalone bool
		ok         bool
		secret     string
	}{
		{"process without a secret", nil, "", false, false, ""},
		{"up without a secret", nil, "", true, true, ""},
		{"from the environment", nil, "fedcba9876543210fedcba9876543210", false, true, "fedcba9876543210fedcba9876543210"},
		{"the file wins", []string{"--cluster-secret-file", good}, "fedcba9876543210fedcba9876543210", false, true, "0123456789abcdef0123456789abcdef\n"},
		{"a short secret", []string{"--cluster-secret-file", short}, "", true, false, ""},
		{"a missing file", []string{"--cluster-secret-file", filepath.Join(dir, "none")}, "", true, false, ""},
		{"insecure and require-keys", []string{"--insecure", "--require-keys"}, "", true, false, ""},
		{"no fans floor", []string{"--min-zone-fans", "0"}, "", true, false, ""},
		{"resolution 16", []string{"--max-public-res", "16"}, "", true, false, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv(envClusterSecret, tc.env)
			fs := newFlagSet("process", "", io.Discard)
			c := authConfig{standalone: tc.standalone}
			authFlags(fs, &c)
			if err := fs.Parse(tc.args); err != nil {
				t.Fatal(err)
			}
			err := checkAuth(fs, &c)
			if (err == nil) != tc.ok || (err != nil && !errors.Is(err, errUsage)) {
				t.Fatalf("checkAuth: %v, want ok %t", err, tc.ok)
			}
			if tc.ok && string(c.secret) != tc.secret {
				t.Fatalf("secret %q, want %q", c.secret, tc.secret)
			}
		})
	}
}
