package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/floodgate/floodgate/gateway/admin"
	"github.com/floodgate/floodgate/internal/exitcode"
	"github.com/prometheus/client_golang/prometheus"
)

// role is the start-up skeleton of every long-running process (gateway, state,
// msg, router, ipconf, control): its flag set with the -admin and logging flags,
// then — in main — parse, the admin listener, build, the signals, the READY line,
// serve, stop. A command registers its own flags on fs and hands main its build.
type role struct {
	name      string
	fs        *flag.FlagSet
	adminAddr *string
}

// newRole returns the skeleton of the role name, whose admin listener defaults to
// defAdmin.
func newRole(name, defAdmin string) *role {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	r := &role{name: name, fs: fs}
	r.adminAddr = fs.String("admin", defAdmin,
		"admin address for /metrics, /healthz, pprof and /debug/memstats: keep it private (empty: off)")
	return r
}

// env is what a role's build gets: its logger, the registry its admin listener
// serves, and that listener's address ("-" when off), which the gateway
// advertises in the gateway table.
type env struct {
	log      *slog.Logger
	reg      *prometheus.Registry
	adminURL string
}

// serving is what a role's build returns.
type serving struct {
	// addr is the role's main listener, printed on the READY line.
	addr string
	// health backs the admin listener's /healthz; nil: healthy while up.
	health func() error
	// run serves until ctx ends (SIGINT, SIGTERM) and returns once stopped.
	run func(ctx context.Context) error
	// ready, if set, is closed once the role serves: the READY line waits for it
	// (the gateway holds its lease first). nil: READY as soon as run starts.
	ready <-chan struct{}
	// close releases what build opened, after run has returned; nil: nothing.
	close func()
}

// usageError is a flag value build found wrong: printed as "<role>: <err>" on
// stderr, exit 1, without the "failed to start" of a runtime error.
type usageError struct{ err error }

func (e usageError) Error() string { return e.err.Error() }
func (e usageError) Unwrap() error { return e.err }

// usagef builds a usageError.
func usagef(format string, args ...any) error { return usageError{fmt.Errorf(format, args...)} }

// main runs the role with args: exitcode.OK after a clean stop or -h, exitcode.Failure after a bad
// flag or a failure to start or to serve. One machine-readable line
// goes to stdout once the role serves — "READY <name> <addr> <admin addr or ->"
// — everything else is logged to stderr.
func (r *role) main(args []string, stdout, stderr io.Writer, build func(env) (serving, error)) int {
	log, stop, code := parseLogged(r.fs, args, stderr)
	if stop {
		return code
	}
	e := env{log: log, reg: admin.NewRegistry(), adminURL: "-"}
	// The admin listener comes first so that build can advertise its real address;
	// its /healthz asks the role's health check once build has set one.
	var health atomic.Pointer[func() error]
	if *r.adminAddr != "" {
		srv, err := admin.Start(*r.adminAddr, admin.Handler(e.reg, func() error {
			if h := health.Load(); h != nil {
				return (*h)()
			}
			return nil
		}), log)
		if err != nil {
			log.Error(r.name+" failed to start", "err", err)
			return exitcode.Failure
		}
		defer srv.Close(time.Second)
		e.adminURL = srv.Addr()
	}
	sv, err := build(e)
	if err != nil {
		if errors.As(err, new(usageError)) {
			fmt.Fprintf(stderr, "%s: %v\n", r.name, err)
			return exitcode.Failure
		}
		log.Error(r.name+" failed to start", "err", err)
		return exitcode.Failure
	}
	if sv.close != nil {
		defer sv.close()
	}
	if sv.health != nil {
		health.Store(&sv.health)
	}
	ctx, cancel := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- sv.run(ctx) }()
	var runErr error
	ran := false
	if sv.ready != nil {
		select {
		case <-sv.ready:
		case runErr = <-done: // stopped (or failed) before serving
			ran = true
		}
	}
	if !ran {
		fmt.Fprintf(stdout, "READY %s %s %s\n", r.name, sv.addr, e.adminURL)
		runErr = <-done
	}
	if runErr != nil {
		log.Error(r.name+" stopped with an error", "err", runErr)
		return exitcode.Failure
	}
	log.Info(r.name + " stopped")
	return exitcode.OK
}
