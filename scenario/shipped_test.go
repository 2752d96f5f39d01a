package scenario

import (
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
)

// shippedFiles lists scenarios/*.yaml, failing the test if there are none.
func shippedFiles(t testing.TB) []string {
	t.Helper()
	files, err := filepath.Glob("../scenarios/*.yaml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no scenarios in ../scenarios: %v", err)
	}
	return files
}

// Every shipped scenario loads and passes the checks, is named after its file,
// describes itself, and holds what a run relies on: a positive length, phases
// and faults that add up, gates of known kinds.
func TestEveryShippedScenarioLoadsAndValidates(t *testing.T) {
	for _, file := range shippedFiles(t) {
		name := strings.TrimSuffix(filepath.Base(file), ".yaml")
		t.Run(name, func(t *testing.T) {
			s, err := Load(file)
			if err != nil {
				t.Fatal(err)
			}
			if s.Name != name || s.File != file {
				t.Errorf("name %q from %q, want %q from %q", s.Name, s.File, name, file)
			}
			if strings.TrimSpace(s.Description) == "" {
				t.Error("no description")
			}
			var total time.Duration
			for _, p := range s.Phases {
				total += p.Duration.D()
				for i := range p.Faults {
					if f := &p.Faults[i]; f.Action() == "" || f.Offset >= p.Duration {
						t.Errorf("phase %s fault %d: action %q at %v", p.Name, i, f.Action(), f.Offset)
					}
				}
			}
			if s.Duration() != total || total <= 0 {
				t.Errorf("Duration() = %v, the phases add up to %v", s.Duration(), total)
			}
			if n := s.InitialClients(); n < 1 || n > int64(s.Clients.Count) {
				t.Errorf("%d initial clients of %d", n, s.Clients.Count)
			}
			for _, g := range s.Gates {
				if g.Kind() == "" {
					t.Errorf("gate %q: no kind", g.Text)
				}
			}
			if s.NetworkFaults() && s.Mode == "loopback" {
				t.Error("network faults in loopback mode")
			}
		})
	}
}

// The README's table of shipped scenarios names exactly the files there are.
func TestReadmeListsTheShippedScenarios(t *testing.T) {
	readme, err := os.ReadFile("../scenarios/README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, table, ok := strings.Cut(string(readme), "## Shipped scenarios")
	if !ok {
		t.Fatal("scenarios/README.md has no Shipped scenarios section")
	}
	var listed []string
	for _, m := range regexp.MustCompile("(?m)^\\| `([a-z0-9-]+)` \\|").FindAllStringSubmatch(table, -1) {
		listed = append(listed, m[1])
	}
	var shipped []string
	for _, f := range shippedFiles(t) {
		shipped = append(shipped, strings.TrimSuffix(filepath.Base(f), ".yaml"))
	}
	slices.Sort(listed)
	slices.Sort(shipped)
	if !slices.Equal(listed, shipped) {
		t.Errorf("README lists %v\nscenarios/ holds %v", listed, shipped)
	}
}

// smoke is what CI runs: under a minute, no network faults (no root needed),
// no Redis.
func TestSmokeRunsAnywhereInUnderAMinute(t *testing.T) {
	s, err := Load("../scenarios/smoke.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if s.Duration() >= time.Minute || s.NetworkFaults() || s.Topology.UsesRedis() {
		t.Errorf("smoke: %v long, network faults %v, Redis %v", s.Duration(), s.NetworkFaults(), s.Topology.UsesRedis())
	}
}
