package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/floodgate/floodgate/internal/exitcode"
)

const netFaultScenario = `name: nf
mode: MODE
topology: {gateways: 2, agents: 1}
clients: {count: 100}
phases:
  - name: cut
    duration: 10s
    faults:
      - {at: 1s, partition: [gw-2, core], for: 5s}
      - {at: 2s, blackhole: gw-1}
`

// scenario check validates network faults: accepted (with their needs said) in
// auto mode, refused at their line in loopback mode.
func TestScenarioCheckValidatesNetworkFaults(t *testing.T) {
	for _, tc := range []struct {
		mode, want string
		code       int
	}{
		{"auto", "nf.yaml: ok (nf; 2 gateways, 1 agents, 100 clients, 10s of phases, 0 gates; network faults: needs netns mode (root) and nft)", 0},
		{"loopback", "nf.yaml:9:9: phases[0].faults[0].partition: a network fault needs netns mode (root)", 1},
	} {
		t.Run(tc.mode, func(t *testing.T) {
			file := filepath.Join(t.TempDir(), "nf.yaml")
			os.WriteFile(file, []byte(strings.Replace(netFaultScenario, "MODE", tc.mode, 1)), 0o644)
			var out, errOut bytes.Buffer
			code := scenarioCheck([]string{file}, &out, &errOut)
			if code != tc.code || !strings.Contains(out.String()+errOut.String(), tc.want) {
				t.Fatalf("exit %d (want %d); output:\n%s%s\nwant %q", code, tc.code, out.String(), errOut.String(), tc.want)
			}
		})
	}
}

// scenario run -profile must name one of the scenario's phases; a typo stops
// before anything is built, as a harness error (exit 1), naming the phases.
func TestScenarioRunProfileNamesAPhase(t *testing.T) {
	file := filepath.Join(t.TempDir(), "nf.yaml")
	os.WriteFile(file, []byte(strings.Replace(netFaultScenario, "MODE", "auto", 1)), 0o644)
	var out, errOut bytes.Buffer
	code := scenarioRun([]string{file, "-profile", "cutt", "-out", t.TempDir()}, &out, &errOut)
	if code != exitcode.Failure || !strings.Contains(errOut.String(), `no phase "cutt" (it has [cut])`) {
		t.Fatalf("exit %d; output:\n%s%s", code, out.String(), errOut.String())
	}
}
