package main

import (
	"bufio"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/floodgate/floodgate/gateway/admin"
	"github.com/floodgate/floodgate/internal/exitcode"
	"github.com/floodgate/floodgate/loadgen"
	"github.com/floodgate/floodgate/runfolder"
)

// runLoadgen is `floodgate loadgen`: one agent. The plan comes from -plan, or from
// flags for a quick single-phase run.
func runLoadgen(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("loadgen", flag.ContinueOnError)
	var (
		planFile  = fs.String("plan", "", "plan file (JSON); without it the flags below make a one-phase plan")
		segment   = fs.String("segment", "", "run slice i of n of the plan (i/n); default $"+envSegment+", else $"+envJobIndex+"/$"+envSegments+" (a Kubernetes Indexed Job's completion index), else 0/1")
		name      = fs.String("name", "", "agent name (default agent-<i>)")
		out       = fs.String("out", "", "directory for <name>.hlog, <name>.json, <name>.plan.json (the plan, secret left out) and <name>.progress.jsonl: what `floodgate collect` assembles into a run folder")
		progress  = fs.String("progress", "auto", "progress display: auto, bars, plain or json")
		waitStart = fs.Bool("wait-start", false, `connect, then wait for {"start":"<RFC3339 time>"} on stdin before traffic`)
		startAt   = fs.String("start-at", os.Getenv(envStartAt), "connect, then start the traffic at this RFC3339 time, shared by every segment (default $"+envStartAt+"; empty: as soon as the users are connected); a time already past starts at once, with a warning")
		ipconf    = fs.String("ipconf", "", "ipconf base URL (quick plan)")
		gateways  = fs.String("gateways", "", "comma-separated gateway addresses (quick plan, instead of -ipconf)")
		wsShare   = fs.Float64("websocket-share", 0, "share of users, 0 to 1, that connect to their gateway's WebSocket port (quick plan)")
		wsGws     = fs.String("ws-gateways", "", "comma-separated WebSocket addresses of -gateways, one per gateway, empty for none (quick plan; with -ipconf its list names them)")
		users     = fs.Int("users", 1000, "users (quick plan)")
		rate      = fs.Float64("rate", 1000, "messages per second (quick plan)")
		connRate  = fs.Float64("connect-rate", 5000, "connects per second (quick plan)")
		duration  = fs.Duration("duration", 30*time.Second, "traffic duration (quick plan)")
		payload   = fs.Int("payload", 64, "payload bytes (quick plan)")
		bind      = fs.String("bind", "", "comma-separated source addresses (overrides the plan's)")
		seed      = fs.Int64("seed", 1, "seed (quick plan)")
		uidBase   = fs.Int64("uid-base", -1, "the users are uid-base+1 … uid-base+users (quick plan); -1: a fresh range each run, so that messages an earlier run against the same stack left unacknowledged do not reach this run's users (they would count as phantom)")
		adminAddr = fs.String("admin", "", "serve pprof and /debug/memstats here (empty: off)")
	)
	kf := registerKeys(fs, tokenKey)
	log, done, code := parseLogged(fs, args, stderr)
	if done {
		return code
	}
	seg, err := segmentOf(*segment, os.Getenv)
	if err != nil {
		fmt.Fprintln(stderr, "loadgen:", err)
		return exitcode.Failure
	}
	start, err := parseStartAt(*startAt)
	if err != nil {
		fmt.Fprintln(stderr, "loadgen:", err)
		return exitcode.Failure
	}
	if !start.IsZero() && *waitStart {
		fmt.Fprintln(stderr, "loadgen: -start-at and -wait-start exclude each other")
		return exitcode.Failure
	}
	var plan loadgen.Plan
	if *planFile != "" {
		if plan, err = loadgen.ReadPlan(*planFile); err != nil {
			fmt.Fprintln(stderr, "loadgen:", err)
			return exitcode.Failure
		}
		if plan.Secret == "" {
			// A plan shared through a ConfigMap leaves the token key to a Secret.
			held, err := kf.load(tokenKey)
			if err != nil {
				fmt.Fprintln(stderr, "loadgen: the plan has no secret:", err)
				return exitcode.Failure
			}
			plan.Secret = string(held.token)
		}
		if *bind != "" {
			plan.Bind = strings.Split(*bind, ",")
		}
		if err := plan.Validate(); err != nil {
			fmt.Fprintln(stderr, "loadgen:", err)
			return exitcode.Failure
		}
	} else {
		held, err := kf.load(tokenKey)
		if err != nil {
			fmt.Fprintln(stderr, "loadgen:", err)
			return exitcode.Failure
		}
		base := uint64(*uidBase)
		if *uidBase < 0 {
			// A fresh range of a billion uids, from the clock: two runs a second
			// apart never share users.
			base = uint64(time.Now().Unix()%(1<<31)) * 1_000_000_000
			log.Info("quick plan users", "uid_base", base)
		}
		plan = loadgen.Plan{
			Seed: *seed, Ipconf: *ipconf, Secret: string(held.token), Users: *users, UIDBase: base, ConnectRate: *connRate,
			Traffic: loadgen.Traffic{Rate: *rate, Pattern: "pairs", PayloadBytes: *payload},
			Phases:  []loadgen.Phase{{Name: "steady", Duration: loadgen.Duration(*duration)}},
		}
		if *gateways != "" {
			plan.Gateways = strings.Split(*gateways, ",")
		}
		if *wsGws != "" {
			plan.WSGateways = strings.Split(*wsGws, ",")
		}
		plan.WebSocketShare = *wsShare
		if *bind != "" {
			plan.Bind = strings.Split(*bind, ",")
		}
		if err := plan.Validate(); err != nil {
			fmt.Fprintln(stderr, "loadgen:", err)
			return exitcode.Failure
		}
	}
	agentName := *name
	if agentName == "" {
		agentName = fmt.Sprintf("agent-%d", seg.Index)
	}
	if *out != "" {
		if err := os.MkdirAll(*out, 0o755); err != nil {
			fmt.Fprintln(stderr, "loadgen:", err)
			return 1
		}
		if err := writeRunPlan(filepath.Join(*out, agentName+loadgen.SuffixPlan), plan); err != nil {
			fmt.Fprintln(stderr, "loadgen:", err)
			return 1
		}
	}
	n := plan.Users / seg.Count
	disp, err := loadgen.NewDisplay(stderr, *progress, n)
	if err != nil {
		fmt.Fprintln(stderr, "loadgen:", err)
		return exitcode.Failure
	}
	if *progress == "json" { // a controlling process reads progress on stdout
		disp, _ = loadgen.NewDisplay(stdout, "json", n)
	}
	opts := loadgen.Options{Plan: plan, Segment: seg, Name: agentName, OutDir: *out, Progress: disp.Update, Logger: log}
	if *out != "" {
		pl, err := openProgressLog(filepath.Join(*out, agentName+loadgen.SuffixProgress))
		if err != nil {
			fmt.Fprintln(stderr, "loadgen:", err)
			return 1
		}
		defer pl.close()
		opts.Progress = func(s loadgen.Snapshot) { disp.Update(s); pl.write(s) }
	}
	if *adminAddr != "" {
		srv, err := admin.Start(*adminAddr, admin.DebugHandler(), log)
		if err != nil {
			fmt.Fprintln(stderr, "loadgen:", err)
			return 1
		}
		defer srv.Close(time.Second)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	switch {
	case *waitStart:
		start := make(chan time.Time, 1)
		opts.Start = start
		go readStart(os.Stdin, start, stop, log.Warn)
	case !start.IsZero():
		if late := time.Since(start); late > 0 {
			log.Warn("the start time is already past: the traffic starts as soon as the agent runs", "start_at", start.Format(time.RFC3339Nano), "late", late)
		}
		at := make(chan time.Time, 1)
		at <- start
		opts.Start = at
	}
	a, err := loadgen.New(opts)
	if err != nil {
		fmt.Fprintln(stderr, "loadgen:", err)
		return 1
	}
	res, err := a.Run(ctx)
	disp.Close()
	if err != nil {
		fmt.Fprintln(stderr, "loadgen:", err)
		return 1
	}
	if *progress == "json" {
		json.NewEncoder(stdout).Encode(struct {
			Event  string          `json:"event"`
			Result *loadgen.Result `json:"result"`
		}{"result", res})
	} else {
		res.WriteTable(stdout)
	}
	return 0
}

// readStart waits for the start command on r; EOF (the controller went away) stops
// the agent.
func readStart(r io.Reader, start chan<- time.Time, stop func(), warn func(string, ...any)) {
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		var cmd struct {
			Start time.Time `json:"start"`
		}
		if err := json.Unmarshal(sc.Bytes(), &cmd); err != nil || cmd.Start.IsZero() {
			warn("ignoring a control line", "line", sc.Text())
			continue
		}
		start <- cmd.Start
	}
	stop()
}

// Environment variables the loadgen command reads its defaults from (on
// Kubernetes: an Indexed Job's pods, every one running the same command line).
const (
	envStartAt  = "FLOODGATE_START_AT"   // -start-at
	envSegment  = "FLOODGATE_SEGMENT"    // -segment, i/n
	envSegments = "FLOODGATE_SEGMENTS"   // n, with the completion index as i
	envJobIndex = "JOB_COMPLETION_INDEX" // set by Kubernetes in an Indexed Job's pods
)

// segmentOf resolves the agent's segment: the -segment flag, else
// $FLOODGATE_SEGMENT, else $JOB_COMPLETION_INDEX of $FLOODGATE_SEGMENTS, else the
// whole plan (0/1). A completion index without a segment count is an error: the
// agent cannot know its share of the plan.
func segmentOf(flagValue string, getenv func(string) string) (loadgen.Segment, error) {
	switch {
	case flagValue != "":
		return loadgen.ParseSegment(flagValue)
	case getenv(envSegment) != "":
		seg, err := loadgen.ParseSegment(getenv(envSegment))
		if err != nil {
			return seg, fmt.Errorf("$%s: %w", envSegment, err)
		}
		return seg, nil
	case getenv(envJobIndex) != "":
		idx, n := getenv(envJobIndex), getenv(envSegments)
		if n == "" {
			return loadgen.Segment{}, fmt.Errorf("$%s is %s but $%s (the number of segments) is not set", envJobIndex, idx, envSegments)
		}
		if _, err := strconv.Atoi(n); err != nil {
			return loadgen.Segment{}, fmt.Errorf("$%s %q: want a number", envSegments, n)
		}
		seg, err := loadgen.ParseSegment(idx + "/" + n)
		if err != nil {
			return seg, fmt.Errorf("$%s/$%s: %w", envJobIndex, envSegments, err)
		}
		return seg, nil
	}
	return loadgen.Segment{Index: 0, Count: 1}, nil
}

// parseStartAt reads -start-at: empty is the zero time (no fixed start).
func parseStartAt(s string) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("-start-at %q: want an RFC3339 time like 2026-12-06T15:04:05Z: %w", s, err)
	}
	return t, nil
}

// writeRunPlan writes the plan the agent runs, its secret left out, beside its
// outputs: floodgate collect checks every segment ran the same plan.
func writeRunPlan(path string, p loadgen.Plan) error {
	p.Secret = ""
	b, err := json.MarshalIndent(p, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(path, append(b, '\n'), 0o644); err != nil {
		return fmt.Errorf("writing the plan: %w", err)
	}
	return nil
}

// progressLog appends the agent's progress snapshots, one runfolder.ProgressSample
// a line, as the scenario runner records them from an agent's stdout: the
// per-phase counts of a collected run come from it.
type progressLog struct {
	f *os.File
	w *bufio.Writer
}

func openProgressLog(path string) (*progressLog, error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, fmt.Errorf("progress log: %w", err)
	}
	return &progressLog{f: f, w: bufio.NewWriter(f)}, nil
}

// write appends one snapshot; it is called from the agent's scheduler once a
// second, and flushes so that a killed agent leaves whole lines behind.
func (l *progressLog) write(s loadgen.Snapshot) {
	b, _ := json.Marshal(runfolder.ProgressSample{T: time.Now(), Snapshot: s})
	l.w.Write(append(b, '\n'))
	l.w.Flush()
}

func (l *progressLog) close() {
	l.w.Flush()
	l.f.Close()
}
