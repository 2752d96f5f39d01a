package sim

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/floodgate/floodgate/runfolder"
	"github.com/floodgate/floodgate/scenario"
)

// Profile asks a run for CPU profiles: of every server process and of the first
// load agent, taken at once over Seconds from the middle of Phase.
type Profile struct {
	Phase   string
	Seconds time.Duration // default 15 s; at most the phase's length
}

// DefaultProfileSeconds is how long a profile runs when Profile.Seconds is 0.
const DefaultProfileSeconds = 15 * time.Second

// Check says what is wrong with the request for scenario s, or nil.
func (p Profile) Check(s *scenario.Scenario) error {
	if p.Seconds < 0 {
		return fmt.Errorf("profile: %v: the length must be positive", p.Seconds)
	}
	for _, ph := range s.Phases {
		if ph.Name == p.Phase {
			return nil
		}
	}
	names := make([]string, len(s.Phases))
	for i, ph := range s.Phases {
		names[i] = ph.Name
	}
	return fmt.Errorf("profile: scenario %s has no phase %q (it has %v)", s.Name, p.Phase, names)
}

// window is when the profiles run within the phase [start, end): the middle
// Seconds of it (the whole phase when it is shorter).
func (p Profile) window(start, end time.Time) (from time.Time, d time.Duration) {
	d = p.Seconds
	if d == 0 {
		d = DefaultProfileSeconds
	}
	d = min(d, end.Sub(start))
	return start.Add((end.Sub(start) - d) / 2), d.Truncate(time.Second)
}

// profileTargets are the processes profiled: every live process with an admin
// listener (the stack's roles and the agent started with one), Redis aside.
func (r *runner) profileTargets() []*proc {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []*proc
	for _, p := range r.procs {
		if p.admin != "" && p.role != "redis" && p.alive() {
			out = append(out, p)
		}
	}
	return out
}

// profile waits for the profile window of the requested phase, takes a CPU
// profile of every target at once into profiles/<process>.pprof, and records
// each in run.json (with the error, if one could not be taken). The returned
// channel closes when every profile is written or the run stopped.
func (r *runner) profile(ctx context.Context) <-chan struct{} {
	done := make(chan struct{})
	req := *r.opts.Profile
	var w runfolder.PhaseWindow
	r.mu.Lock()
	for _, ph := range r.info.Phases {
		if ph.Name == req.Phase {
			w = ph
		}
	}
	r.mu.Unlock()
	from, d := req.window(w.Start, w.End)
	go func() {
		defer close(done)
		if d < time.Second {
			r.noteProfile(runfolder.ProfileFile{Phase: req.Phase, From: from, Error: "the phase is shorter than a second: no profile taken"})
			return
		}
		select {
		case <-r.clock.After(from.Sub(r.clock.Now())):
		case <-ctx.Done():
			return
		}
		if err := os.MkdirAll(filepath.Join(r.dir, runfolder.DirProfiles), 0o755); err != nil {
			r.noteProfile(runfolder.ProfileFile{Phase: req.Phase, From: from, Error: err.Error()})
			return
		}
		targets := r.profileTargets()
		taken := make([]runfolder.ProfileFile, len(targets))
		var wg sync.WaitGroup
		for i, p := range targets {
			wg.Go(func() {
				pf := runfolder.ProfileFile{Process: p.name, Role: p.role, Phase: req.Phase, From: time.Now(), Seconds: d.Seconds(),
					File: filepath.Join(runfolder.DirProfiles, p.name+".pprof")}
				if err := r.fetchProfile(ctx, p.admin, d, filepath.Join(r.dir, pf.File)); err != nil {
					pf.File, pf.Error = "", err.Error()
					r.log.Warn("profile", "process", p.name, "err", err)
				}
				taken[i] = pf
			})
		}
		wg.Wait()
		for _, pf := range taken { // in the order the processes started
			r.noteProfile(pf)
		}
	}()
	return done
}

// noteProfile records a profile in run.json.
func (r *runner) noteProfile(pf runfolder.ProfileFile) {
	r.mu.Lock()
	r.info.Profiles = append(r.info.Profiles, pf)
	r.mu.Unlock()
}

// fetchProfile saves admin's /debug/pprof/profile over d into path.
func (r *runner) fetchProfile(ctx context.Context, admin string, d time.Duration, path string) error {
	ctx, cancel := context.WithTimeout(ctx, d+15*time.Second)
	defer cancel()
	url := fmt.Sprintf("http://%s/debug/pprof/profile?seconds=%d", admin, int(d.Seconds()))
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	// The profile takes d: the scrape client's timeout would cut it short, and
	// ctx bounds it instead.
	resp, err := (&http.Client{Transport: r.http.Transport}).Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return fmt.Errorf("%s: %s: %s", url, resp.Status, msg)
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, resp.Body); err != nil {
		f.Close()
		return fmt.Errorf("%s: %w", url, err)
	}
	return f.Close()
}
