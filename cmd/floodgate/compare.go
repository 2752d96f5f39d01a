package main

import (
	"flag"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/floodgate/floodgate/internal/exitcode"
	"github.com/floodgate/floodgate/reports"
)

// runCompare compares a run against a baseline, statistic by statistic, each
// within a band of max(relative, absolute); it prints the table and exits 0 within
// every band, 2 on a regression or a statistic missing (or unmeasured) in NEW, 3
// if NEW is an invalid run, 1 if the summaries could not be read or BASE is no
// valid baseline.
func runCompare(args []string, stdout, stderr io.Writer) int {
	stats := reports.DefaultStats()
	names := make([]string, len(stats))
	for i, st := range stats {
		names[i] = st.Name
	}
	fs := flag.NewFlagSet("compare", flag.ContinueOnError)
	only := fs.String("stats", strings.Join(names, ","), "statistics to compare")
	fs.Func("band", "override a statistic's band, e.g. push_p99=10%,1ms or lost=0 (repeatable); defaults: "+bandDefaults(stats),
		func(v string) error {
			name, spec, ok := strings.Cut(v, "=")
			i := slices.IndexFunc(stats, func(st reports.CompareStat) bool { return st.Name == name })
			if !ok || i < 0 {
				return fmt.Errorf("want STAT=REL%%,ABS with STAT one of %s", strings.Join(names, ", "))
			}
			b, err := reports.ParseBand(spec, stats[i].Unit)
			if err != nil {
				return err
			}
			stats[i].Band = b
			return nil
		})
	pos, stop, code := parseArgs(fs, args, stderr, "BASE", "NEW")
	if stop {
		return code
	}
	var chosen []reports.CompareStat
	for _, name := range strings.Split(*only, ",") {
		i := slices.IndexFunc(stats, func(st reports.CompareStat) bool { return st.Name == strings.TrimSpace(name) })
		if i < 0 {
			fmt.Fprintf(stderr, "compare: -stats: unknown statistic %q (known: %s)\n", name, strings.Join(names, ", "))
			return exitcode.Failure
		}
		chosen = append(chosen, stats[i])
	}
	c, err := reports.Compare(pos[0], pos[1], chosen)
	if err != nil {
		fmt.Fprintln(stderr, "compare:", err)
		return exitcode.Failure
	}
	if err := c.WriteTable(stdout); err != nil {
		fmt.Fprintln(stderr, "compare:", err)
		return exitcode.Failure
	}
	return c.ExitCode()
}

// bandDefaults describes the default bands for the flag's help.
func bandDefaults(stats []reports.CompareStat) string {
	var parts []string
	for _, st := range stats {
		parts = append(parts, fmt.Sprintf("%s=%g%%,%g%s", st.Name, st.Band.Rel*100, st.Band.Abs, st.Unit))
	}
	return strings.Join(parts, " ")
}
