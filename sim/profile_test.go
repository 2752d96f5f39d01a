package sim

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/floodgate/floodgate/runfolder"
	"github.com/floodgate/floodgate/scenario"
)

// A profile runs over the middle of its phase, whole seconds, never longer than
// the phase.
func TestProfileWindowIsTheMiddleOfThePhase(t *testing.T) {
	t.Parallel()
	start := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		name      string
		secs      time.Duration
		phase     time.Duration
		from, dur time.Duration // from the phase's start
	}{
		{"the default in a 20 s phase", 0, 20 * time.Second, 2500 * time.Millisecond, 15 * time.Second},
		{"5 s of a 20 s phase", 5 * time.Second, 20 * time.Second, 7500 * time.Millisecond, 5 * time.Second},
		{"longer than the phase", time.Minute, 8 * time.Second, 0, 8 * time.Second},
		{"a fraction of a second is dropped", 5 * time.Second, 4500 * time.Millisecond, 0, 4 * time.Second},
	} {
		t.Run(tc.name, func(t *testing.T) {
			from, d := Profile{Phase: "p", Seconds: tc.secs}.window(start, start.Add(tc.phase))
			if from.Sub(start) != tc.from || d != tc.dur {
				t.Fatalf("window from %v for %v, want from %v for %v", from.Sub(start), d, tc.from, tc.dur)
			}
		})
	}
}

// A profile must name a phase of the scenario.
func TestProfileNamesAPhase(t *testing.T) {
	t.Parallel()
	s, err := scenario.Parse("p.yaml", []byte("name: p\ntopology: {gateways: 1, agents: 1}\nclients: {count: 10}\nphases:\n  - {name: steady, duration: 5s}\n"))
	if err != nil {
		t.Fatal(err)
	}
	if err := (Profile{Phase: "steady"}).Check(s); err != nil {
		t.Fatal(err)
	}
	if err := (Profile{Phase: "stedy"}).Check(s); err == nil || !strings.Contains(err.Error(), `no phase "stedy" (it has [steady])`) {
		t.Fatalf("a missing phase: %v", err)
	}
}

// At the middle of the requested phase every live process with an admin
// listener is profiled at once, Redis aside; each profile is recorded in start
// order, as a file or with why it could not be taken.
func TestProfileTakesEveryTargetAtTheWindow(t *testing.T) {
	var asked atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		asked.Add(1)
		if r.URL.Path != "/debug/pprof/profile" || r.URL.Query().Get("seconds") != "2" {
			http.Error(w, "wrong request "+r.URL.String(), http.StatusBadRequest)
			return
		}
		w.Write([]byte("pprof bytes"))
	}))
	defer srv.Close()
	broken := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		http.Error(w, "profiling disabled", http.StatusServiceUnavailable)
	}))
	defer broken.Close()
	clk := newFakeClock()
	r := newTestRunner(t, timedFaults, clk)
	admin := strings.TrimPrefix(srv.URL, "http://")
	for _, s := range []spec{
		{name: "state", role: "state", admin: admin},
		{name: "gw-1", role: "gateway", admin: strings.TrimPrefix(broken.URL, "http://")},
		{name: "redis", role: "redis", admin: admin},
		{name: "router", role: "router"},
		{name: "agent-0", role: "agent", admin: admin},
	} {
		s.host, s.bin, s.args = r.net.Host("core"), "sleep", []string{"60"}
		if _, err := r.start(context.Background(), s); err != nil {
			t.Fatal(err)
		}
	}
	start := clk.Now()
	r.info.Phases = []runfolder.PhaseWindow{{Name: "one", Start: start, End: start.Add(10 * time.Second)},
		{Name: "two", Start: start.Add(10 * time.Second), End: start.Add(20 * time.Second)}}
	r.opts.Profile = &Profile{Phase: "two", Seconds: 2 * time.Second}
	done := r.profile(context.Background())
	clk.waitPending(t, 1)
	clk.AdvanceTo(start.Add(14*time.Second - 1))
	if asked.Load() != 0 || clk.pending() != 1 {
		t.Fatal("profiling started before the window")
	}
	clk.AdvanceTo(start.Add(14 * time.Second)) // the middle 2 s of 10 s from 10 s
	select {
	case <-done:
	case <-time.After(settle):
		t.Fatal("the profiles were not taken")
	}
	var got []string
	for _, pf := range r.info.Profiles {
		got = append(got, pf.Process)
		if pf.Phase != "two" || (pf.Process == "gw-1") != (pf.Error != "") {
			t.Errorf("profile %+v", pf)
		}
		if pf.Error == "" {
			if b, err := os.ReadFile(filepath.Join(r.dir, pf.File)); err != nil || string(b) != "pprof bytes" || pf.Seconds != 2 {
				t.Errorf("%s: file %q holds %q (%v), %v s", pf.Process, pf.File, b, err, pf.Seconds)
			}
		} else if !strings.Contains(pf.Error, "503 Service Unavailable: profiling disabled") {
			t.Errorf("%s: error %q does not say why", pf.Process, pf.Error)
		}
	}
	if strings.Join(got, ",") != "state,gw-1,agent-0" {
		t.Fatalf("profiled %v, want state,gw-1,agent-0 in start order", got)
	}
}

// A phase shorter than a second is not profiled, and run.json says so.
func TestAPhaseTooShortIsNotProfiled(t *testing.T) {
	clk := newFakeClock()
	r := newTestRunner(t, timedFaults, clk)
	start := clk.Now()
	r.info.Phases = []runfolder.PhaseWindow{{Name: "blip", Start: start, End: start.Add(900 * time.Millisecond)}}
	r.opts.Profile = &Profile{Phase: "blip"}
	select {
	case <-r.profile(context.Background()):
	case <-time.After(settle):
		t.Fatal("profile did not end")
	}
	if len(r.info.Profiles) != 1 || !strings.Contains(r.info.Profiles[0].Error, "shorter than a second") {
		t.Fatalf("profiles %+v", r.info.Profiles)
	}
}
