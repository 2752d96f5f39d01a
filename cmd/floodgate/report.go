package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"

	"github.com/floodgate/floodgate/internal/exitcode"
	"github.com/floodgate/floodgate/reports"
)

// runReport regenerates a run folder's derived files (summary.json, report.md,
// index.html and its plots, junit.xml, merged .hlog) from its raw files, prints
// the verdict line and exits with the verdict's code: 0 pass, 2 fail, 3 invalid,
// 1 when the report could not be made (or the harness had failed).
func runReport(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("report", flag.ContinueOnError)
	baseline := fs.String("baseline", "", "a run folder or summary.json to overlay on the latency distribution plots")
	noPlots := fs.Bool("no-plots", false, "skip the PNG plots (fast: summary, tables, junit.xml and merged logs only)")
	var lf logFlags
	lf.register(fs)
	pos, stop, code := parseArgs(fs, args, stderr, "RUN_DIR")
	if stop {
		return code
	}
	log, err := lf.logger(stderr)
	if err != nil {
		fmt.Fprintln(stderr, "report:", err)
		return exitcode.Failure
	}
	sum, err := reports.BuildWith(pos[0], reports.Options{Baseline: *baseline, NoPlots: *noPlots, Logger: log})
	if err != nil {
		fmt.Fprintln(stderr, "report:", err)
		return exitcode.Failure
	}
	fmt.Fprintln(stdout, reports.VerdictLine(sum, pos[0]))
	fmt.Fprint(stdout, reports.FiguresText(sum))
	return sum.ExitCode
}

// parseArgs parses flags that may come before, between or after the named
// positional arguments (`report RUN_DIR -baseline X` reads as well as
// `report -baseline X RUN_DIR`). A usage error stops with exit code 1, not 2: for
// these commands 2 means a failed gate or a regression, and a typo must not read
// as one.
func parseArgs(fs *flag.FlagSet, args []string, stderr io.Writer, names ...string) (pos []string, stop bool, code int) {
	what := strings.Join(names, " ")
	if pos, stop, code = parseInterleaved(fs, args, stderr, what); stop {
		return nil, stop, code
	}
	if len(pos) != len(names) {
		fmt.Fprintf(stderr, "%s: want %s, got %d argument(s)\n", fs.Name(), what, len(pos))
		fs.Usage()
		return nil, true, 1
	}
	return pos, false, 0
}

// parseInterleaved parses fs's flags wherever they stand among the positional
// arguments, which it returns in order; what names the positional arguments in the
// usage line. -h stops with exit code 0, a bad flag with 1.
func parseInterleaved(fs *flag.FlagSet, args []string, stderr io.Writer, what string) (pos []string, stop bool, code int) {
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "usage: floodgate %s [flags] %s\n", fs.Name(), what)
		fs.PrintDefaults()
	}
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return nil, true, 0
			}
			return nil, true, 1
		}
		args = fs.Args()
		if len(args) == 0 {
			return pos, false, 0
		}
		pos, args = append(pos, args[0]), args[1:]
	}
}
