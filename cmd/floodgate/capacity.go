package main

import (
	"encoding"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/floodgate/floodgate/internal/exitcode"
	"github.com/floodgate/floodgate/internal/units"
	"github.com/floodgate/floodgate/reports"
)

// runCapacity plans capacity from a stepped-load run: it fits each role's memory
// per connection and CPU per message across the run's phases and sizes the
// target, writes capacity.md, capacity.json and capacity.png into the run folder,
// regenerates the report (which then shows the plan) and prints the plan.
func runCapacity(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("capacity", flag.ContinueOnError)
	var (
		users    units.Count
		rate     rateFlag
		machine  machineFlag
		headroom = units.Fraction(0.3)
		slo      = units.Duration(100 * time.Millisecond)
	)
	text := func(v encoding.TextUnmarshaler) func(string) error {
		return func(s string) error { return v.UnmarshalText([]byte(s)) }
	}
	fs.Func("users", "concurrent users to plan for, e.g. 100M", text(&users))
	fs.Var(&rate, "msg-rate", "delivered messages per second to plan for, e.g. 1M/s or 250000")
	fs.Var(&machine, "machine", `a machine, e.g. "cores=32,mem=128GiB"`)
	fs.Func("headroom", "share of each machine's CPU and memory to keep spare (default 30%)", text(&headroom))
	fs.Func("slo", "push p99 SLO (default 100ms)", text(&slo))
	nofile := fs.Uint64("nofile", 0, "per-process fd limit for gateways (default: the run's measured hard limit)")
	reserve := fs.Int("fd-reserve", 1024, "fds a gateway keeps for anything but client sockets")
	var lf logFlags
	lf.register(fs)
	pos, stop, code := parseArgs(fs, args, stderr, "RUN_DIR")
	if stop {
		return code
	}
	log, err := lf.logger(stderr)
	if err != nil {
		fmt.Fprintln(stderr, "capacity:", err)
		return exitcode.Failure
	}
	if users <= 0 || rate <= 0 || machine.cores <= 0 || machine.mem <= 0 {
		fmt.Fprintln(stderr, "capacity: -users, -msg-rate and -machine are required")
		fs.Usage()
		return exitcode.Failure
	}
	dir := pos[0]
	t := reports.CapacityTarget{Users: int64(users), MsgRate: float64(rate), Cores: machine.cores, MemBytes: int64(machine.mem),
		Headroom: float64(headroom), SLOUS: slo.D().Microseconds(), Nofile: *nofile, FDReserve: *reserve}
	if _, err := reports.PlanCapacity(dir, t, log); err != nil {
		fmt.Fprintln(stderr, "capacity:", err)
		return exitcode.Failure
	}
	// Regenerate the report so that it shows the plan, keeping its baseline.
	var baseline string
	if prev, err := reports.ReadSummary(filepath.Join(dir, reports.FileSummary)); err == nil {
		baseline = prev.Baseline
	}
	if _, err := reports.BuildWith(dir, reports.Options{Baseline: baseline, Logger: log}); err != nil {
		fmt.Fprintln(stderr, "capacity: regenerating the report:", err)
		return exitcode.Failure
	}
	md, err := os.ReadFile(filepath.Join(dir, reports.FileCapacity))
	if err != nil {
		fmt.Fprintln(stderr, "capacity:", err)
		return exitcode.Failure
	}
	stdout.Write(md)
	return 0
}

// rateFlag reads a rate: "1M/s", "60/m", or a plain number per second.
type rateFlag float64

// String implements flag.Value.
func (r *rateFlag) String() string { return strconv.FormatFloat(float64(*r), 'g', -1, 64) }

// Set implements flag.Value.
func (r *rateFlag) Set(s string) error {
	if !strings.Contains(s, "/") {
		s += "/s"
	}
	var v units.Rate
	if err := v.UnmarshalText([]byte(s)); err != nil {
		return err
	}
	*r = rateFlag(v)
	return nil
}

// machineFlag reads "cores=32,mem=128GiB".
type machineFlag struct {
	cores int
	mem   units.Size
}

// String implements flag.Value.
func (m *machineFlag) String() string { return fmt.Sprintf("cores=%d,mem=%v", m.cores, m.mem) }

// Set implements flag.Value.
func (m *machineFlag) Set(s string) error {
	for _, kv := range strings.Split(s, ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(kv), "=")
		switch {
		case ok && k == "cores":
			n, err := strconv.Atoi(v)
			if err != nil || n <= 0 {
				return fmt.Errorf("cores %q: want a positive whole number", v)
			}
			m.cores = n
		case ok && k == "mem":
			if err := m.mem.Set(v); err != nil {
				return err
			}
		default:
			return fmt.Errorf("%q: want cores=N,mem=SIZE", kv)
		}
	}
	return nil
}
