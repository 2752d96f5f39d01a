package sim

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/floodgate/floodgate/loadgen"
)

// fakeEnv, when set, makes the test binary a fake floodgate: the runner starts
// it (Options.Binary) as every role of the stack and as the load agents, and it
// plays each just enough for a run — no real load, a few processes' worth of CPU.
// Its value chooses a behaviour (fakeOK, fakeAgentFails, …).
const fakeEnv = "FLOODGATE_SIM_FAKE"

// The fake's behaviours.
const (
	fakeOK              = "ok"                // every role serves; the agents connect, report and end at the start
	fakeAgentFails      = "agent-fails"       // agent-1 exits with 3 once the traffic is released
	fakeAgentSilent     = "agent-silent"      // the agents exit at once, saying nothing
	fakeAgentHangs      = "agent-hangs"       // the agents never end by themselves
	fakeGatewayNotReady = "gateway-not-ready" // the gateways' first line is not READY
)

// fakeGateways is how many gateways the fake ipconf advertises: more than any
// test's topology, so the stack is healthy at once.
const fakeGateways = 8

func TestMain(m *testing.M) {
	if behaviour, ok := os.LookupEnv(fakeEnv); ok {
		os.Exit(fakeFloodgate(behaviour, os.Args[1:]))
	}
	os.Exit(m.Run())
}

// useFakeFloodgate makes the runner's processes started in this test the fake
// floodgate behaving as behaviour, and returns the binary to start. A
// race-enabled fake would sleep a second at every exit (the race detector's
// atexit_sleep_ms): it is told not to.
func useFakeFloodgate(t *testing.T, behaviour string) string {
	t.Helper()
	bin, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv(fakeEnv, behaviour)
	t.Setenv("GORACE", strings.TrimSpace(os.Getenv("GORACE")+" atexit_sleep_ms=0"))
	return bin
}

// flagValue is the value after flag in args ("" if absent).
func flagValue(args []string, flag string) string {
	if i := slices.Index(args, flag); i >= 0 && i+1 < len(args) {
		return args[i+1]
	}
	return ""
}

// fakeFloodgate plays `floodgate args...` and returns its exit code.
func fakeFloodgate(behaviour string, args []string) int {
	if len(args) == 0 {
		return 1
	}
	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGTERM, syscall.SIGINT)
	role := args[0]
	switch role {
	case "loadgen":
		return fakeAgent(behaviour, args, stop)
	case "ipconf":
		ln, err := net.Listen("tcp", flagValue(args, "-listen"))
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		go http.Serve(ln, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			type gw struct {
				ID   string `json:"id"`
				Addr string `json:"addr"`
			}
			var list struct {
				Gateways []gw `json:"gateways"`
			}
			for i := 1; i <= fakeGateways; i++ {
				list.Gateways = append(list.Gateways, gw{ID: fmt.Sprintf("gw-%d", i), Addr: "127.0.0.1:1"})
			}
			json.NewEncoder(w).Encode(list)
		}))
	case "control":
		ln, err := net.Listen("tcp", flagValue(args, "-listen"))
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		go http.Serve(ln, http.HandlerFunc(fakeDrain))
	case "gateway":
		if behaviour == fakeGatewayNotReady {
			fmt.Println("STARTING")
			<-stop
			return 0
		}
	}
	fmt.Printf("READY %s %s\n", role, flagValue(args, "-listen"))
	<-stop
	return 0
}

// fakeDrain plays control's drain endpoint: it refuses a request without the
// run's admin token and answers with the request's body.
func fakeDrain(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost || r.URL.Path != "/v1/drain" {
		http.NotFound(w, r)
		return
	}
	if r.Header.Get("Authorization") != "Bearer "+os.Getenv("FLOODGATE_ADMIN_TOKEN") {
		w.WriteHeader(http.StatusUnauthorized)
		json.NewEncoder(w).Encode(map[string]string{"error": "no admin token"})
		return
	}
	var body map[string]any
	json.NewDecoder(r.Body).Decode(&body)
	json.NewEncoder(w).Encode(body)
}

// fakeAgent plays a load agent: it reports its segment's users connected, waits
// for the start line, and ends as behaviour says.
func fakeAgent(behaviour string, args []string, stop <-chan os.Signal) int {
	if behaviour == fakeAgentSilent {
		return 0
	}
	b, err := os.ReadFile(flagValue(args, "-plan"))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	var plan loadgen.Plan
	if err := json.Unmarshal(b, &plan); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	seg, of, _ := strings.Cut(flagValue(args, "-segment"), "/")
	i, _ := strconv.Atoi(seg)
	n, _ := strconv.Atoi(of)
	if n == 0 {
		n = 1
	}
	users := plan.Users / n
	if i < plan.Users%n {
		users++
	}
	name := flagValue(args, "-name")
	report := func(phase string, sent uint64) {
		line, _ := json.Marshal(map[string]any{"event": "progress", "agent": name, "phase": phase, "users": users,
			"active": users, "reconnects": 1, "messages": loadgen.Counts{Sent: sent, Delivered: sent}})
		fmt.Println(string(line))
	}
	report("connect", 0)
	in := bufio.NewScanner(os.Stdin)
	if !in.Scan() {
		return 1
	}
	report("steady", 10)
	switch {
	case behaviour == fakeAgentFails && name == "agent-1":
		return 3
	case behaviour == fakeAgentHangs:
		<-stop
	}
	return 0
}
