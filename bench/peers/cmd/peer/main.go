// Command peer is a TCP echo server used as a comparison peer by Floodgate's
// benchmarks. It runs one of three implementations, selected with -server:
//
//	netstd  the standard library: net.Listen and one goroutine per connection
//	gnet    github.com/panjf2000/gnet/v2, an event-loop (epoll) reactor
//	nbio    github.com/lesismal/nbio, an event-loop (epoll) reactor
//
// Every implementation writes back whatever bytes it reads, unchanged.
//
// Usage:
//
//	peer -server netstd|gnet|nbio [-addr 127.0.0.1:PORT] [-admin 127.0.0.1:PORT] [-loops N]
//
// Once the echo listener and the admin listener are bound, peer prints exactly
// one line to stdout,
//
//	READY <server> <addr>
//
// where <addr> is the bound echo address (useful with port 0). Nothing else is
// written to stdout; logs, including the libraries' own, go to stderr. The
// admin address serves the admin package's measurement endpoints (gateway/admin.DebugHandler). On SIGTERM or
// SIGINT peer closes its listeners and connections and exits with status 0.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"log/slog"
	"os"
	"os/signal"
	"runtime"
	"syscall"
	"time"

	nbiologging "github.com/lesismal/nbio/logging"

	"github.com/floodgate/floodgate/gateway/admin"
)

// stopTimeout bounds shutdown so that the process exits within 2 s of a signal.
const stopTimeout = 1500 * time.Millisecond

// config holds the command-line settings.
type config struct {
	server string // netstd, gnet or nbio
	addr   string // echo listen address
	admin  string // admin (memstats, pprof) listen address; empty disables it
	loops  int    // event loops (gnet) or pollers (nbio)
}

// peer is a running echo server.
type peer interface {
	// Addr returns the address the server accepts connections on.
	Addr() string
	// Stop closes the listener and every connection, and waits, bounded by
	// ctx, for the server to wind down.
	Stop(ctx context.Context) error
}

func main() {
	log.SetPrefix("peer: ")
	// nbio logs to stdout by default; stdout is reserved for the READY line.
	nbiologging.Output = os.Stderr

	cfg, err := parseFlags(os.Args[1:])
	if errors.Is(err, flag.ErrHelp) {
		os.Exit(0)
	}
	if err != nil {
		log.Print(err)
		os.Exit(2)
	}
	ctx, cancel := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer cancel()
	if err := run(ctx, cfg, os.Stdout); err != nil {
		log.Fatal(err)
	}
}

// parseFlags parses and validates the command line (without the program name).
func parseFlags(args []string) (config, error) {
	fs := flag.NewFlagSet("peer", flag.ContinueOnError)
	var cfg config
	fs.StringVar(&cfg.server, "server", "", "echo server implementation: netstd, gnet or nbio (required)")
	fs.StringVar(&cfg.addr, "addr", "127.0.0.1:0", "echo listen address")
	fs.StringVar(&cfg.admin, "admin", "", "admin listen address serving /debug/memstats and /debug/pprof/ (empty: none)")
	fs.IntVar(&cfg.loops, "loops", runtime.GOMAXPROCS(0), "event loops (gnet) or pollers (nbio)")
	if err := fs.Parse(args); err != nil {
		return cfg, err
	}
	switch {
	case fs.NArg() > 0:
		return cfg, fmt.Errorf("unexpected arguments: %q", fs.Args())
	case cfg.server != "netstd" && cfg.server != "gnet" && cfg.server != "nbio":
		return cfg, fmt.Errorf("-server must be netstd, gnet or nbio, not %q", cfg.server)
	case cfg.loops < 1:
		return cfg, fmt.Errorf("-loops must be at least 1, not %d", cfg.loops)
	}
	return cfg, nil
}

// run starts the admin and echo servers, reports readiness on stdout and
// serves until ctx is done, then stops both.
func run(ctx context.Context, cfg config, stdout io.Writer) error {
	if cfg.admin != "" {
		srv, err := admin.Start(cfg.admin, admin.DebugHandler(), slog.New(slog.NewTextHandler(os.Stderr, nil)))
		if err != nil {
			return err
		}
		defer srv.Close(time.Second)
	}

	p, err := start(cfg)
	if err != nil {
		return fmt.Errorf("%s: %w", cfg.server, err)
	}
	if _, err := fmt.Fprintf(stdout, "READY %s %s\n", cfg.server, p.Addr()); err != nil {
		_ = p.Stop(context.Background())
		return err
	}

	<-ctx.Done()
	stopCtx, cancel := context.WithTimeout(context.Background(), stopTimeout)
	defer cancel()
	if err := p.Stop(stopCtx); err != nil {
		// Exit cleanly anyway: the process is going away and the kernel
		// closes whatever is left.
		log.Printf("%s: stop: %v", cfg.server, err)
	}
	return nil
}

// start starts the echo server selected by cfg.server.
func start(cfg config) (peer, error) {
	switch cfg.server {
	case "netstd":
		return startNetstd(cfg.addr)
	case "gnet":
		return startGnet(cfg.addr, cfg.loops)
	case "nbio":
		return startNbio(cfg.addr, cfg.loops)
	}
	return nil, fmt.Errorf("unknown server %q", cfg.server)
}
