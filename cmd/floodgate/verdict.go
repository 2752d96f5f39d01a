package main

import (
	"fmt"
	"io"
	"log/slog"

	"github.com/floodgate/floodgate/internal/exitcode"
	"github.com/floodgate/floodgate/reports"
	"github.com/floodgate/floodgate/runfolder"
)

// verdict builds the run folder's report and returns the run's exit code: 0 pass,
// 2 a gate failed, 3 invalid, 1 harness error.
func verdict(dir string, _ *runfolder.RunInfo, _ error, stdout, stderr io.Writer) int {
	sum, err := reports.BuildWith(dir, reports.Options{Logger: slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))})
	if err != nil {
		fmt.Fprintf(stderr, "report: %v\n", err)
		return exitcode.Failure
	}
	fmt.Fprintln(stdout, reports.VerdictLine(sum, dir))
	fmt.Fprint(stdout, reports.FiguresText(sum))
	return sum.ExitCode
}
