package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/floodgate/floodgate/internal/exitcode"
	"github.com/floodgate/floodgate/scenario"
	"github.com/floodgate/floodgate/sim"
	"github.com/floodgate/floodgate/sim/live"
)

// runScenario is `floodgate scenario check|run FILE`.
func runScenario(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprintln(stderr, "usage: floodgate scenario check FILE... | run FILE [-out DIR] [-mode netns|loopback] [-profile PHASE]")
		return exitcode.Failure
	}
	switch args[0] {
	case "check":
		return scenarioCheck(args[1:], stdout, stderr)
	case "run":
		return scenarioRun(args[1:], stdout, stderr)
	}
	fmt.Fprintf(stderr, "floodgate scenario: unknown verb %q (want check or run)\n", args[0])
	return exitcode.Failure
}

// scenarioCheck validates scenario files without running them.
func scenarioCheck(files []string, stdout, stderr io.Writer) int {
	if len(files) == 0 {
		fmt.Fprintln(stderr, "usage: floodgate scenario check FILE...")
		return exitcode.Failure
	}
	code := 0
	for _, f := range files {
		s, err := scenario.Load(f)
		if err != nil {
			var es scenario.Errors
			if errors.As(err, &es) {
				fmt.Fprintln(stderr, es.Error())
			} else {
				fmt.Fprintf(stderr, "%s: %v\n", f, err)
			}
			code = 1
			continue
		}
		netNote := ""
		if s.NetworkFaults() {
			netNote = "; network faults: needs netns mode (root) and nft"
		}
		fmt.Fprintf(stdout, "%s: ok (%s; %d gateways, %d agents, %d clients, %v of phases, %d gates%s)\n",
			f, s.Name, s.Topology.Gateways, s.Topology.Agents, s.Clients.Count, s.Duration(), len(s.Gates), netNote)
	}
	return code
}

func scenarioRun(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprintln(stderr, "usage: floodgate scenario run FILE [flags]")
		return exitcode.Failure
	}
	file, args := args[0], args[1:]
	fs := flag.NewFlagSet("scenario run", flag.ContinueOnError)
	out := fs.String("out", "", "run folder (default reports/out/<name>/<UTC time>, with a latest link beside it)")
	mode := fs.String("mode", "", "netns or loopback (default: the scenario's; auto picks netns when root)")
	profPhase := fs.String("profile", "", "take a CPU profile of every server process and of one agent in this phase, into RUN_DIR/profiles/")
	profSecs := fs.Duration("profile-seconds", sim.DefaultProfileSeconds, "how long each -profile runs, from the middle of the phase (at most the phase)")
	liveAddr := fs.String("live", "", "serve the run's progress while it runs on this address (ip:port): a page at /, /progress.json and Prometheus /metrics (empty: off)")
	log, done, code := parseLogged(fs, args, stderr)
	if done {
		return code
	}
	s, err := scenario.Load(file)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return exitcode.Failure
	}
	var prof *sim.Profile
	if *profPhase != "" {
		prof = &sim.Profile{Phase: *profPhase, Seconds: *profSecs}
		if err := prof.Check(s); err != nil {
			fmt.Fprintln(stderr, "scenario:", err)
			return exitcode.Failure
		}
	}
	dir := *out
	if dir == "" {
		base := filepath.Join("reports", "out", s.Name)
		dir = filepath.Join(base, time.Now().UTC().Format("20060102T150405Z"))
		if err := os.MkdirAll(dir, 0o755); err != nil {
			fmt.Fprintln(stderr, "scenario:", err)
			return exitcode.Failure
		}
		latest := filepath.Join(base, "latest")
		os.Remove(latest)
		os.Symlink(filepath.Base(dir), latest)
	}
	bin, err := os.Executable()
	if err != nil {
		fmt.Fprintln(stderr, "scenario:", err)
		return exitcode.Failure
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	fmt.Fprintf(stdout, "running %s (%v of phases) → %s\n", s.Name, s.Duration(), dir)
	disp := newRunDisplay(stderr, s)
	progress := disp.update
	if *liveAddr != "" {
		lv := live.New(s.Name)
		lctx, stopLive := context.WithCancel(ctx)
		defer stopLive()
		go func() {
			err := lv.Serve(lctx, *liveAddr, func(addr string) { fmt.Fprintf(stdout, "live view: http://%s/\n", addr) })
			if err != nil {
				log.Warn("the live view could not start; the run goes on without it", "err", err)
			}
		}()
		progress = func(p sim.Progress) { disp.update(p); lv.Update(p) }
	}
	info, err := sim.Run(ctx, sim.Options{Scenario: s, Dir: dir, Binary: bin, Mode: *mode, Logger: log, Progress: progress, Profile: prof})
	disp.close()
	if err != nil {
		fmt.Fprintf(stderr, "scenario: harness error: %v\n", err)
	}
	return verdict(dir, info, err, stdout, stderr)
}
