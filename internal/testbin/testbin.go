// Package testbin builds the floodgate binary for tests that run it as separate
// processes (the real thing: flags, signals, READY lines, exit codes).
package testbin

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
)

// build compiles cmd/floodgate once per test process; every test in it shares the
// binary. A memo of the build's result, set once.
var build = sync.OnceValues(func() (string, error) {
	dir, err := os.MkdirTemp("", "floodgate-bin-")
	if err != nil {
		return "", err
	}
	bin := filepath.Join(dir, "floodgate")
	out, err := exec.Command("go", "build", "-o", bin, "github.com/floodgate/floodgate/cmd/floodgate").CombinedOutput()
	if err != nil {
		return "", errors.New(string(out))
	}
	return bin, nil
})

// Floodgate returns the path of a floodgate binary built from this module's
// source, failing t if it does not build.
func Floodgate(t testing.TB) string {
	t.Helper()
	bin, err := build()
	if err != nil {
		t.Fatalf("go build floodgate: %v", err)
	}
	return bin
}
