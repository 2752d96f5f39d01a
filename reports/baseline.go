package reports

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/floodgate/floodgate/loadgen"
)

// baseline is an earlier run shown beside this one on the latency plots: its
// whole-run distribution per tag when its merged logs are at hand, otherwise only
// the percentiles its summary states.
type baseline struct {
	label string
	sum   *Summary        // nil if only logs were found
	hists map[string]hist // tag → whole-run distribution; may be empty
}

// loadBaseline reads a run folder (its summary.json and merged <tag>.hlog) or a
// summary.json.
func loadBaseline(path string) (*baseline, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("baseline: %w", err)
	}
	b := &baseline{label: "baseline", hists: map[string]hist{}}
	sumPath := path
	if st.IsDir() {
		sumPath = filepath.Join(path, FileSummary)
		for _, tag := range loadgen.Tags {
			lg, err := readHlogFile(filepath.Join(path, tag+".hlog"))
			if errors.Is(err, fs.ErrNotExist) {
				continue
			}
			if err != nil {
				return nil, fmt.Errorf("baseline: %w", err)
			}
			var h hist
			for _, iv := range lg.intervals() {
				h.add(iv.h)
			}
			b.hists[tag] = h
		}
	}
	var s Summary
	switch err := readJSON(sumPath, &s); {
	case err == nil:
		b.sum = &s
		if s.Commit != "" {
			b.label = fmt.Sprintf("baseline %.12s", s.Commit)
		}
	case errors.Is(err, fs.ErrNotExist) && len(b.hists) > 0:
	default:
		return nil, fmt.Errorf("baseline: %w", err)
	}
	return b, nil
}

// readCapacity returns the capacity plan last made from a run folder
// (capacity.json), or nil if none was.
func readCapacity(dir string) (*CapacityPlan, error) {
	var plan CapacityPlan
	err := readJSON(filepath.Join(dir, FileCapacityJSON), &plan)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return &plan, nil
}
