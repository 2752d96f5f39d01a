// Package sim will run scenario files: it raises the topology (netns), starts the stack
// and the loadgen agents, applies phases and timed faults on schedule, collects
// histograms, metrics and logs into a run folder, and hands them to reports.
//
// Nothing lives here yet; see the scenario-runner issue.
package sim
