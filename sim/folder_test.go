package sim

import (
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/floodgate/floodgate/runfolder"
)

// A run never reads an earlier run's raw files as its own: an earlier run folder
// is replaced; a folder that is not a run folder is left alone and refused.
func TestPrepareDirReplacesOnlyAnEarlierRun(t *testing.T) {
	quiet := slog.New(slog.DiscardHandler)
	write := func(t *testing.T, dir string, files ...string) {
		t.Helper()
		for _, f := range files {
			p := filepath.Join(dir, f)
			if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(p, []byte("x"), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	for _, tc := range []struct {
		name      string
		files     []string // in the folder before the run; nil: the folder does not exist
		wantErr   string
		wantKept  string // a file that must survive
		wantEmpty bool   // the folder is gone (or empty) afterwards
	}{
		{name: "a new folder", files: nil},
		{name: "an empty folder", files: []string{}},
		{name: "an earlier run", files: []string{runfolder.FileRun, runfolder.FileProcesses, "hlog/agent-0.hlog", "logs/gw-1.log"}, wantEmpty: true},
		{name: "someone else's files", files: []string{"notes.txt"}, wantErr: "refusing", wantKept: "notes.txt"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "run")
			if tc.files != nil {
				if err := os.MkdirAll(dir, 0o755); err != nil {
					t.Fatal(err)
				}
				write(t, dir, tc.files...)
			}
			err := prepareDir(dir, quiet)
			if tc.wantErr == "" && err != nil || tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)) {
				t.Fatalf("prepareDir: %v, want error containing %q", err, tc.wantErr)
			}
			if tc.wantKept != "" {
				if _, err := os.Stat(filepath.Join(dir, tc.wantKept)); err != nil {
					t.Errorf("%s was not kept: %v", tc.wantKept, err)
				}
			}
			if tc.wantEmpty {
				if entries, _ := os.ReadDir(dir); len(entries) != 0 {
					t.Errorf("the earlier run's files are still there: %d entries", len(entries))
				}
			}
		})
	}
}
