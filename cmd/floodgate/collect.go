package main

import (
	"flag"
	"fmt"
	"io"

	"github.com/floodgate/floodgate/internal/exitcode"
	"github.com/floodgate/floodgate/runfolder"
)

// runCollect is `floodgate collect`: a run folder from the outputs of a plan's
// segments run apart (an Indexed Job's pods, several machines), for `floodgate
// report` and `compare`. Exit codes as report's: 0 done, 1 on a usage error or
// when the folder could not be made.
func runCollect(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("collect", flag.ContinueOnError)
	var (
		plan = fs.String("plan", "", "the plan file the segments ran (default: the copy each segment wrote beside its outputs; every copy must match)")
		out  = fs.String("out", "", "the run folder to write (must not exist, or be empty)")
		sc   = fs.String("scenario", "", "a scenario file to report against: its gates, validity bounds, knee (default: one derived from the plan, with the gates push p99 < 100ms, lost == 0, failed == 0)")
		name = fs.String("name", "distributed", "the derived scenario's name (without -scenario)")
	)
	inputs, stop, code := parseInputs(fs, args, stderr, "SEGMENT_DIR_OR_FILE...")
	if stop {
		return code
	}
	if *out == "" {
		fmt.Fprintln(stderr, "collect: -out is required")
		fs.Usage()
		return exitcode.Failure
	}
	info, err := runfolder.Collect(runfolder.CollectOptions{Inputs: inputs, Plan: *plan, Scenario: *sc, Name: *name, Out: *out})
	if err != nil {
		fmt.Fprintln(stderr, err)
		return exitcode.Failure
	}
	fmt.Fprintf(stdout, "collected %d segments of %s (%d clients) → %s; next: floodgate report %s\n",
		info.Agents, info.Scenario, info.Clients, *out, *out)
	return 0
}

// parseInputs parses flags anywhere among one or more positional arguments, like
// parseArgs; a usage error stops with exit code 1.
func parseInputs(fs *flag.FlagSet, args []string, stderr io.Writer, what string) (pos []string, stop bool, code int) {
	if pos, stop, code = parseInterleaved(fs, args, stderr, what); stop {
		return nil, stop, code
	}
	if len(pos) == 0 {
		fmt.Fprintf(stderr, "%s: want %s\n", fs.Name(), what)
		fs.Usage()
		return nil, true, 1
	}
	return pos, false, 0
}
