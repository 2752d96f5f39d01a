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
	"strings"
	"syscall"
	"time"

	"github.com/floodgate/floodgate/gateway/admin"
	"github.com/floodgate/floodgate/loadgen"
)

// runLoadgen is `floodgate loadgen`: one agent. The plan comes from -plan, or from
// flags for a quick single-phase run.
func runLoadgen(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("loadgen", flag.ContinueOnError)
	var (
		planFile  = fs.String("plan", "", "plan file (JSON); without it the flags below make a one-phase plan")
		segment   = fs.String("segment", "0/1", "run slice i of n of the plan (i/n)")
		name      = fs.String("name", "", "agent name (default agent-<i>)")
		out       = fs.String("out", "", "directory for <name>.hlog and <name>.json")
		progress  = fs.String("progress", "auto", "progress display: auto, bars, plain or json")
		waitStart = fs.Bool("wait-start", false, `connect, then wait for {"start":"<RFC3339 time>"} on stdin before traffic`)
		ipconf    = fs.String("ipconf", "", "ipconf base URL (quick plan)")
		gateways  = fs.String("gateways", "", "comma-separated gateway addresses (quick plan, instead of -ipconf)")
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
	seg, err := loadgen.ParseSegment(*segment)
	if err != nil {
		fmt.Fprintln(stderr, "loadgen:", err)
		return 2
	}
	var plan loadgen.Plan
	if *planFile != "" {
		if plan, err = loadgen.LoadPlan(*planFile); err != nil {
			fmt.Fprintln(stderr, "loadgen:", err)
			return 2
		}
		if *bind != "" {
			plan.Bind = strings.Split(*bind, ",")
		}
	} else {
		held, err := kf.load(tokenKey)
		if err != nil {
			fmt.Fprintln(stderr, "loadgen:", err)
			return 2
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
		if *bind != "" {
			plan.Bind = strings.Split(*bind, ",")
		}
		if err := plan.Validate(); err != nil {
			fmt.Fprintln(stderr, "loadgen:", err)
			return 2
		}
	}
	if *out != "" {
		if err := os.MkdirAll(*out, 0o755); err != nil {
			fmt.Fprintln(stderr, "loadgen:", err)
			return 1
		}
	}
	n := plan.Users / seg.Count
	disp, err := loadgen.NewDisplay(stderr, *progress, n)
	if err != nil {
		fmt.Fprintln(stderr, "loadgen:", err)
		return 2
	}
	if *progress == "json" { // a controlling process reads progress on stdout
		disp, _ = loadgen.NewDisplay(stdout, "json", n)
	}
	opts := loadgen.Options{Plan: plan, Segment: seg, Name: *name, OutDir: *out, Progress: disp.Update, Logger: log}
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
	if *waitStart {
		start := make(chan time.Time, 1)
		opts.Start = start
		go readStart(os.Stdin, start, stop, log.Warn)
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
