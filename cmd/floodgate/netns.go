package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/floodgate/floodgate/internal/exitcode"
	"github.com/floodgate/floodgate/netns"
)

// runNetns is `floodgate netns up|down|clean|preflight`: test hosts by hand.
func runNetns(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprintln(stderr, "usage: floodgate netns up|down|clean|preflight [flags]")
		return exitcode.Failure
	}
	verb, args := args[0], args[1:]
	fs := flag.NewFlagSet("netns "+verb, flag.ContinueOnError)
	run := fs.String("run", "", "run id (1–6 lower-case letters or digits)")
	switch verb {
	case "up":
		hosts := fs.String("hosts", "core,gw-1,gw-2,cl-1", "comma-separated host names")
		if stop, code := parse(fs, args, stderr); stop {
			return code
		}
		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
		defer stop()
		n, err := netns.Build(ctx, netns.Spec{Run: *run, Hosts: strings.Split(*hosts, ","), Mode: netns.ModeNetns})
		if err != nil {
			fmt.Fprintln(stderr, "netns up:", err)
			return 1
		}
		fmt.Fprintf(stdout, "run %s: bridge %s (%s, harness side %s)\n", n.Run, n.Bridge, n.Subnet, n.Gateway)
		for _, h := range n.Hosts() {
			fmt.Fprintf(stdout, "  %-10s %-15s ip netns exec fg-%s-%s <command>\n", h.Name, h.Addr, n.Run, h.Name)
		}
		fmt.Fprintf(stdout, "remove with: floodgate netns down -run %s\n", n.Run)
		return 0
	case "down", "clean":
		if stop, code := parse(fs, args, stderr); stop {
			return code
		}
		if verb == "down" && *run == "" {
			fmt.Fprintln(stderr, "netns down: -run is required (netns clean removes every run's leftovers)")
			return exitcode.Failure
		}
		removed, err := netns.Clean(context.Background(), *run)
		for _, r := range removed {
			fmt.Fprintln(stdout, "removed", r)
		}
		if err != nil {
			fmt.Fprintln(stderr, "netns:", err)
			return 1
		}
		if len(removed) == 0 {
			fmt.Fprintln(stdout, "nothing to remove")
		}
		return 0
	case "preflight":
		conns := fs.Int("conns", 100000, "connections the run needs in total")
		per := fs.Int("per-process", 18000, "connections in the largest process")
		mode := fs.String("mode", "netns", "netns or loopback")
		asJSON := fs.Bool("json", false, "print JSON")
		if stop, code := parse(fs, args, stderr); stop {
			return code
		}
		cs := netns.Preflight(netns.Mode(*mode), *conns, *per)
		if *asJSON {
			json.NewEncoder(stdout).Encode(cs)
		} else {
			for _, c := range cs {
				mark := "ok  "
				if !c.OK {
					mark = map[bool]string{true: "FAIL", false: "warn"}[c.Fatal]
				}
				fmt.Fprintf(stdout, "%s %-28s %-24s %s\n", mark, c.Name, c.Value, c.Advice)
			}
		}
		if len(netns.Failed(cs)) > 0 {
			return 3
		}
		return 0
	}
	fmt.Fprintf(stderr, "floodgate netns: unknown verb %q (want up, down, clean or preflight)\n", verb)
	return exitcode.Failure
}
