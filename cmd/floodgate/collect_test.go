package main

import (
	"bytes"
	"path/filepath"
	"strings"
	"testing"
)

// collect exits 1 on a usage error and when the folder cannot be made, like
// report, and says why.
func TestCollectExitCodes(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		name string
		args []string
		code int
		says string
	}{
		{"help", []string{"collect", "-h"}, 0, "usage: floodgate collect"},
		{"no inputs", []string{"collect", "-out", filepath.Join(dir, "run")}, 1, "want SEGMENT_DIR_OR_FILE"},
		{"no -out", []string{"collect", dir}, 1, "-out is required"},
		{"an unknown flag", []string{"collect", "-nope", dir}, 1, "flag provided but not defined"},
		{"no outputs in the input", []string{"collect", dir, "-out", filepath.Join(dir, "run")}, 1, "holds no loadgen output"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out, errb bytes.Buffer
			if code := dispatch(tc.args, &out, &errb); code != tc.code || !strings.Contains(errb.String(), tc.says) {
				t.Fatalf("exit %d, stderr %q; want %d saying %q", code, errb.String(), tc.code, tc.says)
			}
		})
	}
}
