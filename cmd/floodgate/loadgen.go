package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/floodgate/floodgate/gateway/admin"
	"github.com/floodgate/floodgate/internal/exitcode"
	"github.com/floodgate/floodgate/internal/progress"
	"github.com/floodgate/floodgate/loadgen"
	"github.com/floodgate/floodgate/runfolder"
)

// runLoadgen is `floodgate loadgen`: one agent. The plan comes from -plan, or from
// flags for a quick single-phase run (loadgen.QuickPlan).
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
		bind      = fs.String("bind", "", "comma-separated source addresses (overrides the plan's)")
		adminAddr = fs.String("admin", "", "serve pprof and /debug/memstats here (empty: off)")
	)
	quick := registerQuickPlan(fs)
	kf := registerKeys(fs, tokenKey)
	log, done, code := parseLogged(fs, args, stderr)
	if done {
		return code
	}
	fail := func(err error) int {
		fmt.Fprintln(stderr, "loadgen:", err)
		return exitcode.Failure
	}
	seg, err := segmentOf(*segment, os.Getenv)
	if err != nil {
		return fail(err)
	}
	start, err := parseStartAt(*startAt)
	if err != nil {
		return fail(err)
	}
	if !start.IsZero() && *waitStart {
		return fail(errors.New("-start-at and -wait-start exclude each other"))
	}
	plan, err := agentPlan(*planFile, quick, splitList(*bind), kf, log)
	if err != nil {
		return fail(err)
	}
	agentName := *name
	if agentName == "" {
		agentName = fmt.Sprintf("agent-%d", seg.Index)
	}
	opts := loadgen.Options{Plan: plan, Segment: seg, Name: agentName, OutDir: *out, Logger: log}
	disp, closeProgress, err := agentProgress(&opts, *progress, stdout, stderr)
	if err != nil {
		return fail(err)
	}
	defer closeProgress()
	if *adminAddr != "" {
		srv, err := admin.Start(*adminAddr, admin.DebugHandler(), log)
		if err != nil {
			return fail(err)
		}
		defer srv.Close(time.Second)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	opts.Start = startSignal(*waitStart, start, stop, log)
	a, err := loadgen.New(opts)
	if err != nil {
		return fail(err)
	}
	res, err := a.Run(ctx)
	disp.Close()
	if err != nil {
		return fail(err)
	}
	if *progress == "json" {
		json.NewEncoder(stdout).Encode(struct {
			Event  string          `json:"event"`
			Result *loadgen.Result `json:"result"`
		}{"result", res})
	} else {
		res.WriteTable(stdout)
	}
	return exitcode.OK
}

// quickFlags are the flags of a quick plan (loadgen.QuickPlan), used without -plan.
type quickFlags struct {
	q                    loadgen.QuickPlan
	gateways, wsGateways *string
}

// registerQuickPlan adds the quick plan's flags to fs.
func registerQuickPlan(fs *flag.FlagSet) *quickFlags {
	f := &quickFlags{}
	q := &f.q
	fs.StringVar(&q.Ipconf, "ipconf", "", "ipconf base URL (quick plan)")
	f.gateways = fs.String("gateways", "", "comma-separated gateway addresses (quick plan, instead of -ipconf)")
	fs.Float64Var(&q.WebSocketShare, "websocket-share", 0, "share of users, 0 to 1, that connect to their gateway's WebSocket port (quick plan)")
	f.wsGateways = fs.String("ws-gateways", "", "comma-separated WebSocket addresses of -gateways, one per gateway, empty for none (quick plan; with -ipconf its list names them)")
	fs.IntVar(&q.Users, "users", 1000, "users (quick plan)")
	fs.Float64Var(&q.Rate, "rate", 1000, "messages per second (quick plan)")
	fs.Float64Var(&q.ConnectRate, "connect-rate", 5000, "connects per second (quick plan)")
	fs.DurationVar(&q.Duration, "duration", 30*time.Second, "traffic duration (quick plan)")
	fs.IntVar(&q.PayloadBytes, "payload", 64, "payload bytes (quick plan)")
	fs.Int64Var(&q.Seed, "seed", 1, "seed (quick plan)")
	fs.Int64Var(&q.UIDBase, "uid-base", -1, "the users are uid-base+1 … uid-base+users (quick plan); -1: a fresh range each run, so that messages an earlier run against the same stack left unacknowledged do not reach this run's users (they would count as phantom)")
	return f
}

// agentPlan is the plan the agent runs: the plan file's (its secret, if it has
// none, from the token key file: a plan shared through a ConfigMap leaves the
// key to a Secret), else the quick plan's; bind, if given, overrides its source
// addresses.
func agentPlan(planFile string, quick *quickFlags, bind []string, kf *keyFlags, log *slog.Logger) (loadgen.Plan, error) {
	if planFile == "" {
		held, err := kf.load(tokenKey)
		if err != nil {
			return loadgen.Plan{}, err
		}
		q := quick.q
		q.Secret, q.Bind = string(held.token), bind
		q.Gateways, q.WSGateways = splitList(*quick.gateways), splitList(*quick.wsGateways)
		plan, err := q.Plan(time.Now())
		if err == nil && q.UIDBase < 0 {
			log.Info("quick plan users", "uid_base", plan.UIDBase)
		}
		return plan, err
	}
	plan, err := loadgen.ReadPlan(planFile)
	if err != nil {
		return plan, err
	}
	if plan.Secret == "" {
		held, err := kf.load(tokenKey)
		if err != nil {
			return plan, fmt.Errorf("the plan has no secret: %w", err)
		}
		plan.Secret = string(held.token)
	}
	if bind != nil {
		plan.Bind = bind
	}
	return plan, plan.Validate()
}

// splitList splits a comma-separated flag value; empty is nil.
func splitList(s string) []string {
	if s == "" {
		return nil
	}
	return strings.Split(s, ",")
}

// agentProgress sets opts.Progress: the display mode asks for and, with an
// output directory, the progress log beside the agent's other files, where it
// also writes the plan run. The returned func closes the log.
func agentProgress(opts *loadgen.Options, mode string, stdout, stderr io.Writer) (agentDisplay, func(), error) {
	disp, err := newAgentDisplay(mode, opts.Plan.Users/opts.Segment.Count, stdout, stderr)
	if err != nil {
		return nil, nil, err
	}
	opts.Progress = disp.Update
	if opts.OutDir == "" {
		return disp, func() {}, nil
	}
	if err := os.MkdirAll(opts.OutDir, 0o755); err != nil {
		return nil, nil, err
	}
	if err := writeRunPlan(filepath.Join(opts.OutDir, opts.Name+loadgen.SuffixPlan), opts.Plan); err != nil {
		return nil, nil, err
	}
	pl, err := openProgressLog(filepath.Join(opts.OutDir, opts.Name+loadgen.SuffixProgress))
	if err != nil {
		return nil, nil, err
	}
	opts.Progress = func(s loadgen.Snapshot) { disp.Update(s); pl.write(s) }
	return disp, pl.close, nil
}

// agentDisplay shows an agent's progress snapshots.
type agentDisplay interface {
	Update(s loadgen.Snapshot)
	Close()
}

// newAgentDisplay returns the display of -progress: "json" writes a JSON line a
// snapshot on stdout, for a controlling process (the scenario runner reads
// them); "auto", "bars" and "plain" show users connected and messages
// delivered on stderr (internal/progress).
func newAgentDisplay(mode string, users int, stdout, stderr io.Writer) (agentDisplay, error) {
	if mode == "json" {
		return &jsonProgress{enc: json.NewEncoder(stdout)}, nil
	}
	d, err := progress.New(stderr, mode, progress.Options{Label: "connected ", Total: int64(users), Messages: true})
	if err != nil { // progress knows its own modes; this flag has one more
		return nil, fmt.Errorf("progress %q: want auto, bars, plain or json", mode)
	}
	return agentBars{d}, nil
}

// agentBars is an agent's display on internal/progress.
type agentBars struct{ d *progress.Display }

func (b agentBars) Update(s loadgen.Snapshot) { b.d.Update(snapshotState(s)) }
func (b agentBars) Close()                    { b.d.Close() }

// snapshotState is what the display shows of an agent's snapshot.
func snapshotState(s loadgen.Snapshot) progress.State {
	c := s.Counts
	return progress.State{
		Connected: int64(s.Active), Sent: int64(c.Sent), Delivered: int64(c.Delivered),
		Status: fmt.Sprintf("phase %s  lost %d  failed %d  in flight %d  reconnects %d", s.Phase, c.Lost, c.Failed, s.InFlight, s.Reconnects),
		Line: fmt.Sprintf("%-10s connected %d/%d  sent %d  delivered %d  lost %d  failed %d  in flight %d  reconnects %d",
			s.Phase, s.Active, s.Users, c.Sent, c.Delivered, c.Lost, c.Failed, s.InFlight, s.Reconnects),
	}
}

// jsonProgress writes each snapshot as a "progress" event, one JSON line.
type jsonProgress struct {
	mu  sync.Mutex
	enc *json.Encoder
}

func (j *jsonProgress) Update(s loadgen.Snapshot) {
	j.mu.Lock()
	defer j.mu.Unlock()
	j.enc.Encode(struct {
		Event string `json:"event"`
		loadgen.Snapshot
	}{"progress", s})
}

func (j *jsonProgress) Close() {}

// startSignal is the agent's Start channel: the start command read on stdin
// (-wait-start; EOF stops the agent), or the fixed start time (-start-at, at
// once with a warning if already past), or nil: as soon as the users are in.
func startSignal(waitStart bool, start time.Time, stop func(), log *slog.Logger) <-chan time.Time {
	switch {
	case waitStart:
		ch := make(chan time.Time, 1)
		go readStart(os.Stdin, ch, stop, log.Warn)
		return ch
	case !start.IsZero():
		if late := time.Since(start); late > 0 {
			log.Warn("the start time is already past: the traffic starts as soon as the agent runs", "start_at", start.Format(time.RFC3339Nano), "late", late)
		}
		ch := make(chan time.Time, 1)
		ch <- start
		return ch
	}
	return nil
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
