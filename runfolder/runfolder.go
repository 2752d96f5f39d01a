// Package runfolder names the files of a run folder and the raw facts in them: what
// the scenario runner (sim) writes while a run goes on, and reports reads to derive
// the verdict, the summary and the plots. It is a leaf: the runner writes it
// without knowing about reports, and reports reads it without reaching back into
// the runner.
package runfolder

import (
	"time"

	"github.com/floodgate/floodgate/loadgen"
	"github.com/floodgate/floodgate/netns"
)

// Files of a run folder, written by the runner (sim). The runner writes raw facts
// only; everything derived is written by this package.
const (
	FileScenario  = "scenario.yaml"   // the scenario file as run (a copy)
	FilePlan      = "plan.json"       // the load plan the agents ran (loadgen.Plan)
	FileRun       = "run.json"        // RunInfo
	FileMetrics   = "metrics.jsonl"   // MetricsSample per line: scraped /metrics, every second
	FileProcesses = "processes.jsonl" // ProcessSample per line: RSS and CPU, every second
	FileAlerts    = "alerts.jsonl"    // AlertEvent per line: control's alert events
	FileProgress  = "progress.jsonl"  // ProgressSample per line: each agent's progress, every second
	DirHlog       = "hlog"            // agent-<i>.hlog (interval histograms) and agent-<i>.json (loadgen.Result)
	DirLogs       = "logs"            // <process>.log: each process's stderr
	DirProfiles   = "profiles"        // <process>.pprof: CPU profiles (scenario run -profile)
)

// RunInfo is run.json: what ran, where, when.
type RunInfo struct {
	Scenario     string        `json:"scenario"`
	ScenarioFile string        `json:"scenario_file"`
	ScenarioHash string        `json:"scenario_sha256"`
	Seed         int64         `json:"seed"`
	Mode         netns.Mode    `json:"mode"`                // netns or loopback
	HostsRun     string        `json:"hosts_run,omitempty"` // the run id in the test hosts' names (netns.Leftovers)
	Commit       string        `json:"commit,omitempty"`
	Kernel       string        `json:"kernel"`
	CPUs         int           `json:"cpus"`
	GoVersion    string        `json:"go_version"`
	NofileHard   uint64        `json:"nofile_hard"`
	Preflight    []netns.Check `json:"preflight"`
	Started      time.Time     `json:"started"` // the runner's start
	// TrafficStart is when the agents' phases began (the shared start time), and
	// TrafficEnd when the last phase ended; the agents then waited out the loss deadline.
	TrafficStart time.Time     `json:"traffic_start"`
	TrafficEnd   time.Time     `json:"traffic_end"`
	Ended        time.Time     `json:"ended"`
	Phases       []PhaseWindow `json:"phases"`
	Faults       []FaultEvent  `json:"faults"`
	Processes    []ProcessInfo `json:"processes"`
	Agents       int           `json:"agents"`
	Clients      int64         `json:"clients"`
	Peak         PeakConns     `json:"peak"`
	Connecting   ConnectWindow `json:"connecting"`
	Events       []RunEvent    `json:"events"`            // unexpected deaths, autoscale actions, harness problems
	Invalid      []string      `json:"invalid,omitempty"` // reasons the runner already knows the run is invalid
	HarnessError string        `json:"harness_error,omitempty"`
	Caveats      []string      `json:"caveats"` // what the runner knows makes this run's numbers less than real; reports adds the mode's and the shared CPUs'.
	Interrupted  bool          `json:"interrupted"`
	// Profiles are the CPU profiles the runner took, when asked to.
	Profiles []ProfileFile  `json:"profiles,omitempty"`
	Extra    map[string]any `json:"extra,omitempty"`
}

// ProfileFile is one CPU profile the runner took (floodgate scenario run
// -profile PHASE): a process's /debug/pprof/profile over Seconds from From.
type ProfileFile struct {
	Process string    `json:"process"`
	Role    string    `json:"role"`
	Phase   string    `json:"phase"`
	From    time.Time `json:"from"`
	Seconds float64   `json:"seconds"`
	// File is the profile's path in the run folder, profiles/<process>.pprof;
	// empty when it could not be taken (Error says why).
	File  string `json:"file,omitempty"`
	Error string `json:"error,omitempty"`
}

// PhaseWindow is when one phase ran (wall clock).
type PhaseWindow struct {
	Name  string    `json:"name"`
	Start time.Time `json:"start"`
	End   time.Time `json:"end"`
}

// FaultEvent is one injected fault, as it happened.
type FaultEvent struct {
	Phase  string    `json:"phase"`
	Action string    `json:"action"` // kill, pause, restart, drain, scale_out, reconnect_storm, connect_flood
	Target string    `json:"target,omitempty"`
	At     time.Time `json:"at"`
	// End is the heal: for a pause, when SIGCONT went out; for a restart or a
	// reconnect storm, when the restarted process(es) served again.
	End    time.Time `json:"end,omitempty"`
	Detail string    `json:"detail,omitempty"`
	Error  string    `json:"error,omitempty"` // the fault could not be applied
}

// ProcessInfo is one process the runner started (restarts included, each its own
// entry with the same name).
type ProcessInfo struct {
	Name    string    `json:"name"` // gw-1, state, agent-0, ...
	Role    string    `json:"role"` // gateway, state, msg, router, ipconf, control, redis, agent
	Host    string    `json:"host"`
	Addr    string    `json:"addr,omitempty"`  // main listen address
	Admin   string    `json:"admin,omitempty"` // admin (metrics) address, host:port
	PID     int       `json:"pid"`
	Started time.Time `json:"started"`
	Exited  time.Time `json:"exited,omitempty"`
	// ExitCause: "" while running; "fault" (the runner killed it), "stopped" (the
	// runner's teardown), "finished" (an agent done with its plan), "unexpected"
	// (it died by itself).
	ExitCause string `json:"exit_cause,omitempty"`
	ExitCode  int    `json:"exit_code,omitempty"`
}

// PeakConns is the most connections seen.
// ConnectWindow is the population's first connect: from the agents' start to every
// client logged in (or to the runner giving up waiting: Established < the target).
type ConnectWindow struct {
	Start       time.Time `json:"start"`
	End         time.Time `json:"end"`
	Established int64     `json:"established"`
}

// PeakConns is the most clients logged in at once, and when.
type PeakConns struct {
	Established int64     `json:"established"` // agents' logged-in users, summed
	At          time.Time `json:"at"`
}

// RunEvent is something that happened during a run worth a line in the report.
type RunEvent struct {
	At     time.Time `json:"at"`
	Kind   string    `json:"kind"` // unexpected_exit, autoscale, harness, ...
	Detail string    `json:"detail"`
}

// MetricsSample is one scrape of one process's /metrics: every floodgate_* sample
// (and process_*, go_memstats_heap_*), keyed by name with labels as Prometheus
// writes them, e.g. `floodgate_reactor_connections{gateway="gw-1"}`. Histograms
// give their _sum and _count.
type MetricsSample struct {
	T       time.Time          `json:"t"`
	Process string             `json:"process"`
	Metrics map[string]float64 `json:"metrics"`
}

// ProcessSample is one reading of a process's resources from /proc.
type ProcessSample struct {
	T        time.Time `json:"t"`
	Process  string    `json:"process"`
	Role     string    `json:"role"`
	RSSBytes int64     `json:"rss_bytes"`
	CPUSecs  float64   `json:"cpu_s"` // utime+stime so far
}

// AlertEvent is one of control's alert events (GET /v1/alerts), as received.
type AlertEvent struct {
	T        time.Time `json:"t"` // when the runner read it
	Seq      uint64    `json:"seq"`
	Time     time.Time `json:"time"` // control's time of the event
	Kind     string    `json:"kind"`
	Gateway  string    `json:"gateway"`
	Detail   string    `json:"detail"`
	Resolved bool      `json:"resolved"`
}

// ProgressSample is one agent progress report.
type ProgressSample struct {
	T time.Time `json:"t"`
	loadgen.Snapshot
}
