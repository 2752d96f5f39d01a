package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/floodgate/floodgate/internal/testbin"
	"github.com/floodgate/floodgate/loadgen"
	"github.com/floodgate/floodgate/runfolder"
	"github.com/floodgate/floodgate/sim"
)

// The segment comes from the flag, else $FLOODGATE_SEGMENT, else an Indexed Job's
// completion index of $FLOODGATE_SEGMENTS, else the whole plan.
func TestSegmentOfFollowsFlagThenEnvironment(t *testing.T) {
	for _, tc := range []struct {
		name    string
		flag    string
		env     map[string]string
		want    loadgen.Segment
		wantErr bool
	}{
		{name: "nothing: the whole plan", want: loadgen.Segment{Index: 0, Count: 1}},
		{name: "the flag wins", flag: "2/5", env: map[string]string{envSegment: "1/3", envJobIndex: "4", envSegments: "8"}, want: loadgen.Segment{Index: 2, Count: 5}},
		{name: "FLOODGATE_SEGMENT before the job index", env: map[string]string{envSegment: "1/3", envJobIndex: "4", envSegments: "8"}, want: loadgen.Segment{Index: 1, Count: 3}},
		{name: "job index of FLOODGATE_SEGMENTS", env: map[string]string{envJobIndex: "4", envSegments: "8"}, want: loadgen.Segment{Index: 4, Count: 8}},
		{name: "job index without a count", env: map[string]string{envJobIndex: "4"}, wantErr: true},
		{name: "job index past the count", env: map[string]string{envJobIndex: "8", envSegments: "8"}, wantErr: true},
		{name: "count not a number", env: map[string]string{envJobIndex: "0", envSegments: "8/9"}, wantErr: true},
		{name: "bad FLOODGATE_SEGMENT", env: map[string]string{envSegment: "3"}, wantErr: true},
		{name: "bad flag", flag: "1/1", wantErr: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := segmentOf(tc.flag, func(k string) string { return tc.env[k] })
			if tc.wantErr {
				if err == nil {
					t.Fatalf("segment %v, want an error", got)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("segment %v, %v; want %v", got, err, tc.want)
			}
		})
	}
}

func TestParseStartAt(t *testing.T) {
	if at, err := parseStartAt(""); err != nil || !at.IsZero() {
		t.Fatalf("empty: %v, %v; want the zero time", at, err)
	}
	at, err := parseStartAt("2026-12-06T15:04:05.25Z")
	if want := time.Date(2026, 12, 6, 15, 4, 5, 250e6, time.UTC); err != nil || !at.Equal(want) {
		t.Fatalf("got %v, %v; want %v", at, err, want)
	}
	if _, err := parseStartAt("15:04"); err == nil {
		t.Fatal("a time without a date was accepted")
	}
}

// The plan the Kubernetes load Job runs (deploy/k8s/load/plan.json) is a valid
// plan once the agent adds the token key, which it holds none of itself.
func TestKubernetesLoadPlanIsValid(t *testing.T) {
	p, err := loadgen.ReadPlan("../../deploy/k8s/load/plan.json")
	if err != nil {
		t.Fatal(err)
	}
	if p.Secret != "" {
		t.Fatal("the plan holds a secret: it belongs in the Secret floodgate-keys")
	}
	p.Secret = strings.Repeat("k", 32)
	if err := p.Validate(); err != nil {
		t.Fatal(err)
	}
}

// Two loadgen processes of the built binary, configured as an Indexed Job's pods
// are (the segment from JOB_COMPLETION_INDEX of FLOODGATE_SEGMENTS, the start from
// FLOODGATE_START_AT, the token key from the environment: the plan holds none),
// start their traffic at the shared instant and leave what collect assembles.
func TestLoadgenSegmentsConfiguredByTheEnvironmentAreCollected(t *testing.T) {
	if testing.Short() {
		t.Skip("real processes")
	}
	gw := startProc(t, "gateway", "-listen", "127.0.0.1:0", "-admin", "")
	dir := t.TempDir()
	planPath := filepath.Join(dir, "plan.json")
	plan := fmt.Sprintf(`{"seed": 1, "gateways": [%q], "secret": "", "users": 200, "uid_base": 9000, "connect_rate": 2000,
		"traffic": {"rate": 200, "pattern": "pairs", "payload_bytes": 64}, "behaviour": {}, "deadline": "10s",
		"phases": [{"name": "steady", "duration": "2s"}]}`, gw.Ready[2])
	if err := os.WriteFile(planPath, []byte(plan), 0o644); err != nil {
		t.Fatal(err)
	}
	start := time.Now().Add(2 * time.Second).UTC().Truncate(time.Millisecond)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var (
		wg   sync.WaitGroup
		errs [2]error
		segs [2]string
	)
	for i := range 2 {
		segs[i] = filepath.Join(dir, fmt.Sprintf("seg-%d", i))
		cmd := exec.CommandContext(ctx, testbin.Floodgate(t), "loadgen", "-plan", planPath, "-out", segs[i], "-progress", "plain", "-log-level", "warn")
		cmd.Env = append(os.Environ(), testKeyEnv("loadgen")...)
		cmd.Env = append(cmd.Env, "FLOODGATE_SEGMENT=", fmt.Sprintf("JOB_COMPLETION_INDEX=%d", i), "FLOODGATE_SEGMENTS=2",
			"FLOODGATE_START_AT="+start.Format(time.RFC3339Nano))
		wg.Go(func() {
			if out, err := cmd.CombinedOutput(); err != nil {
				errs[i] = fmt.Errorf("segment %d: %w\n%s", i, err, out)
			}
		})
	}
	wg.Wait()
	if err := errors.Join(errs[:]...); err != nil {
		t.Fatal(err)
	}
	for i, d := range segs {
		name := filepath.Join(d, fmt.Sprintf("agent-%d", i))
		var res loadgen.Result
		if b, err := os.ReadFile(name + loadgen.SuffixResult); err != nil || json.Unmarshal(b, &res) != nil {
			t.Fatalf("segment %d: no result: %v", i, err)
		}
		if res.Segment != fmt.Sprintf("%d/2", i) || res.Users != 100 || !res.Started.Equal(start) || res.Messages.Delivered == 0 {
			t.Errorf("segment %d: segment %s, %d users, traffic from %v (want %v), %d delivered", i, res.Segment, res.Users, res.Started, start, res.Messages.Delivered)
		}
		copyOf, err := loadgen.ReadPlan(name + loadgen.SuffixPlan)
		if err != nil || copyOf.Secret != "" || copyOf.Users != 200 {
			t.Errorf("segment %d: plan copy %+v, %v: want the plan, no secret", i, copyOf, err)
		}
		if b, err := os.ReadFile(name + loadgen.SuffixProgress); err != nil || !bytes.Contains(b, []byte(`"agent":"agent-`)) {
			t.Errorf("segment %d: progress log %q, %v", i, b, err)
		}
	}
	run := filepath.Join(dir, "run")
	var out, errb bytes.Buffer
	if code := dispatch([]string{"collect", "-plan", planPath, "-out", run, segs[0], segs[1]}, &out, &errb); code != 0 {
		t.Fatalf("collect: exit %d: %s", code, errb.String())
	}
	var info runfolder.RunInfo
	if b, err := os.ReadFile(filepath.Join(run, runfolder.FileRun)); err != nil || json.Unmarshal(b, &info) != nil {
		t.Fatalf("run.json: %v", err)
	}
	if info.Agents != 2 || !info.TrafficStart.Equal(start) {
		t.Fatalf("run.json: %d agents, traffic from %v; want 2 from %v", info.Agents, info.TrafficStart, start)
	}
}

// The agent's plan is the plan file's, its secret taken from the token key when
// it has none and its source addresses from -bind when given; without a file it
// is the quick plan of the flags, the comma lists split.
func TestAgentPlanFromAFileOrTheQuickFlags(t *testing.T) {
	clearKeyEnv(t)
	t.Setenv("FLOODGATE_TOKEN_KEY", testTokenKey)
	dir := t.TempDir()
	planFile := filepath.Join(dir, "plan.json")
	const planText = `{"seed": 4, "gateways": ["127.0.0.1:7"], "secret": "", "users": 10, "uid_base": 100, "connect_rate": 0,
		"traffic": {"rate": 5, "pattern": "pairs", "payload_bytes": 64}, "behaviour": {},
		"phases": [{"name": "p", "duration": "1s"}], "bind": ["127.0.0.9"]}`
	if err := os.WriteFile(planFile, []byte(planText), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name    string
		args    []string
		check   func(t *testing.T, p loadgen.Plan)
		wantErr bool
	}{
		{"plan file, secret from the key", []string{"-plan", planFile}, func(t *testing.T, p loadgen.Plan) {
			if p.Secret != testTokenKey || p.Seed != 4 || p.UIDBase != 100 || !reflect.DeepEqual(p.Bind, []string{"127.0.0.9"}) {
				t.Fatalf("plan %+v", p)
			}
		}, false},
		{"plan file, bind overridden", []string{"-plan", planFile, "-bind", "127.0.0.2,127.0.0.3"}, func(t *testing.T, p loadgen.Plan) {
			if !reflect.DeepEqual(p.Bind, []string{"127.0.0.2", "127.0.0.3"}) {
				t.Fatalf("bind %v", p.Bind)
			}
		}, false},
		{"quick plan", []string{"-gateways", "127.0.0.1:1,127.0.0.1:2", "-ws-gateways", ",127.0.0.1:3", "-websocket-share", "0.5",
			"-users", "40", "-rate", "30", "-duration", "3s", "-uid-base", "77"}, func(t *testing.T, p loadgen.Plan) {
			if !reflect.DeepEqual(p.Gateways, []string{"127.0.0.1:1", "127.0.0.1:2"}) || !reflect.DeepEqual(p.WSGateways, []string{"", "127.0.0.1:3"}) ||
				p.WebSocketShare != 0.5 || p.Users != 40 || p.Traffic.Rate != 30 || p.UIDBase != 77 || p.Bind != nil ||
				len(p.Phases) != 1 || p.Phases[0].Duration.D() != 3*time.Second || p.Secret != testTokenKey {
				t.Fatalf("plan %+v", p)
			}
		}, false},
		{"quick plan, fresh uids", []string{"-gateways", "127.0.0.1:1"}, func(t *testing.T, p loadgen.Plan) {
			if p.UIDBase == 0 || p.Users != 1000 {
				t.Fatalf("uid base %d for %d users: want a fresh range of the defaults", p.UIDBase, p.Users)
			}
		}, false},
		{"quick plan without a gateway", nil, nil, true},
		{"missing plan file", []string{"-plan", filepath.Join(dir, "none.json")}, nil, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fs := flag.NewFlagSet("loadgen", flag.ContinueOnError)
			planPath, bind := fs.String("plan", "", ""), fs.String("bind", "", "")
			quick := registerQuickPlan(fs)
			kf := registerKeys(fs, tokenKey)
			if err := fs.Parse(tc.args); err != nil {
				t.Fatal(err)
			}
			p, err := agentPlan(*planPath, quick, splitList(*bind), kf, slog.New(slog.DiscardHandler))
			if tc.wantErr {
				if err == nil {
					t.Fatalf("plan %+v, want an error", p)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			tc.check(t, p)
		})
	}
}

// -progress json writes each snapshot as a "progress" event on stdout, the line
// the scenario runner reads; the other modes show the snapshot's counts on
// stderr; an unknown mode is refused, naming json too.
func TestAgentDisplayModes(t *testing.T) {
	snap := loadgen.Snapshot{Agent: "agent-3", Phase: "steady", Users: 50, Active: 48, Reconnects: 2, InFlight: 7,
		Counts: loadgen.Counts{Sent: 900, Delivered: 880, Lost: 3, Failed: 1}}
	for _, tc := range []struct {
		mode                 string
		wantStdout, wantErrw []string
		wantErr              bool
	}{
		{mode: "json", wantStdout: []string{`{"event":"progress","agent":"agent-3","phase":"steady"`, `"sent":900`}},
		{mode: "plain", wantErrw: []string{"steady     connected 48/50  sent 900  delivered 880  lost 3  failed 1  in flight 7  reconnects 2"}},
		{mode: "auto", wantErrw: []string{"connected 48/50"}},
		{mode: "fancy", wantErr: true},
	} {
		t.Run(tc.mode, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			d, err := newAgentDisplay(tc.mode, 50, &stdout, &stderr)
			if tc.wantErr {
				if err == nil || !strings.Contains(err.Error(), "json") {
					t.Fatalf("error %v, want one naming every mode", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			d.Update(snap)
			d.Close()
			for _, w := range tc.wantStdout {
				if !strings.Contains(stdout.String(), w) {
					t.Errorf("stdout %q lacks %q", stdout.String(), w)
				}
			}
			for _, w := range tc.wantErrw {
				if !strings.Contains(stderr.String(), w) {
					t.Errorf("stderr %q lacks %q", stderr.String(), w)
				}
			}
			if len(tc.wantStdout) == 0 && stdout.Len() > 0 || len(tc.wantErrw) == 0 && stderr.Len() > 0 {
				t.Errorf("wrote to the other stream: stdout %q, stderr %q", stdout.String(), stderr.String())
			}
		})
	}
}

// A scenario run's line shows the established clients and the counts, and the
// counts that must stay 0 once one is not; none before the first phase.
func TestRunDisplayState(t *testing.T) {
	for _, tc := range []struct {
		name       string
		p          sim.Progress
		line, miss string
	}{
		{"before the traffic", sim.Progress{Clients: 10, Active: 4}, "", ""},
		{"clean", sim.Progress{Phase: "steady", Clients: 10, Active: 9, Sent: 5, Delivered: 4, Reconnects: 1},
			"steady       established 9/10  sent 5  delivered 4  lost 0  failed 0  reconnects 1", "duplicates"},
		{"something wrong", sim.Progress{Phase: "fault", Clients: 10, Active: 9, Duplicates: 1, Phantom: 2},
			"reconnects 0  duplicates 1  phantom 2  misdelivered 0", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := progressState(tc.p)
			if s.Connected != tc.p.Active || !strings.Contains(s.Line, tc.line) {
				t.Fatalf("state %+v, want line %q", s, tc.line)
			}
			if tc.line == "" && s.Line != "" {
				t.Fatalf("a line %q before the first phase", s.Line)
			}
			if tc.miss != "" && strings.Contains(s.Line+s.Status, tc.miss) {
				t.Fatalf("state %+v mentions %s", s, tc.miss)
			}
			if !strings.Contains(s.Status, fmt.Sprintf("sent %d  delivered %d", tc.p.Sent, tc.p.Delivered)) {
				t.Fatalf("status %q lacks the counts", s.Status)
			}
		})
	}
}
