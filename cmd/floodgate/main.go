// Command floodgate is the one binary of the Floodgate stack and harness: a
// subcommand per role.
package main

import (
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/floodgate/floodgate/internal/exitcode"
)

// command is one subcommand. run gets the arguments after the subcommand's name and
// returns the process exit code.
type command struct {
	name, summary string
	run           func(args []string, stdout, stderr io.Writer) int
}

func commands() []command {
	return []command{
		{"up", "the whole stack in this process on loopback, to try it by hand", runUp},
		{"client", "an example client: log in, send and receive", runClient},
		{"token", "mint a login token for a uid", runToken},
		{"gateway", "run a gateway node (client connections on the epoll reactor)", runGateway},
		{"state", "run the state service: sessions and gateway leases over link (memory or Redis)", runState},
		{"msg", "run the msg service: per-user inboxes over link (memory or Redis)", runMsg},
		{"router", "run the router (stored messages → the recipient's gateway)", runRouter},
		{"ipconf", "serve the weighted gateway list to clients (HTTPDNS)", runIpconf},
		{"control", "watch the fleet: alerts, drain, scale recommendations", runControl},
		{"scenario", "check or run a scenario file: topology, load, timed faults, gates", runScenario},
		{"loadgen", "run a load-generating agent (simulated users, push latency)", runLoadgen},
		{"netns", "test hosts in network namespaces: up, down, clean, preflight", runNetns},
		{"bench", "run the reactor benchmark: floodgate vs netstd, gnet, nbio (make bench)", runBench},
		{"collect", "assemble a run folder from the outputs of a plan's segments run apart (Kubernetes)", runCollect},
		{"report", "regenerate a run folder's report, plots and verdict from its raw files", runReport},
		{"compare", "compare a run's summary against a baseline's, stat by stat within bands", runCompare},
		{"capacity", "plan machines for a target load from a stepped-load run", runCapacity},
	}
}

func main() {
	os.Exit(dispatch(os.Args[1:], os.Stdout, os.Stderr))
}

func dispatch(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] == "help" || args[0] == "-h" || args[0] == "--help" {
		usage(stderr)
		if len(args) == 0 {
			return exitcode.Failure
		}
		return 0
	}
	for _, c := range commands() {
		if c.name == args[0] {
			return c.run(args[1:], stdout, stderr)
		}
	}
	fmt.Fprintf(stderr, "floodgate: unknown command %q\n\n", args[0])
	usage(stderr)
	return exitcode.Failure
}

func usage(w io.Writer) {
	var b strings.Builder
	b.WriteString("usage: floodgate <command> [flags]\n\ncommands:\n")
	for _, c := range commands() {
		fmt.Fprintf(&b, "  %-10s %s\n", c.name, c.summary)
	}
	b.WriteString("\nRun 'floodgate <command> -h' for a command's flags.\n")
	io.WriteString(w, b.String())
}
