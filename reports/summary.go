package reports

import (
	"time"

	"github.com/floodgate/floodgate/runfolder"
)

// SummaryVersion is the version of summary.json's layout; it grows when fields
// are added (fields are never renamed or removed). Version 2 added the
// accounting by identity (messages.phantom, misdelivered, redelivered, retried,
// stale; messages.duplicates now counts messages handed to the app twice, where
// version 1 counted wire duplicates, now messages.redelivered), relogins
// (connections.relogins, replace_late, replaced_unexpected) and
// faults[].heal_to_last_delivery_ms. Version 3 added hostile[], the hostile
// connections per class. Version 4 added push_by_gateway[], the push latency by
// recipient's gateway (whole run and per phase), and faults[].duration_ms; a
// fault with an end (network faults too) now has heal_to_last_delivery_ms.
// Version 5 added knee (a scenario with a knee: condition; such a run's validity
// rests on the steps up to its knee), phases[].cpu and connect_cpu (CPU per role
// per phase, per delivered message and per login, the agents apart), and
// trace_hops_us (whole run and per phase, for runs whose agents traced messages)
// and profiles (the CPU profiles of a run made with -profile).
const SummaryVersion = 5

// Summary is summary.json: the contract CI, `floodgate compare` and other tools
// read. Field names are a contract: add, never rename.
// Latencies ending in _us are microseconds, _ms milliseconds; sizes are bytes.
type Summary struct {
	Version  int    `json:"summary_version"`
	Scenario string `json:"scenario"`
	Seed     int64  `json:"seed"`
	Mode     string `json:"mode"` // netns or loopback
	// Verdict is pass, fail, invalid or error; ExitCode is the exit status that goes
	// with it (0, 2, 3, 1).
	Verdict        string   `json:"verdict"`
	ExitCode       int      `json:"exit_code"`
	InvalidReasons []string `json:"invalid_reasons,omitempty"`
	HarnessError   string   `json:"harness_error,omitempty"`
	Commit         string   `json:"commit,omitempty"`
	// DurationS is the traffic's length (first phase start to last phase end);
	// RunDurationS the runner's whole run, setup and teardown included.
	DurationS    float64 `json:"duration_s"`
	RunDurationS float64 `json:"run_duration_s"`

	Connections Connections `json:"connections"`
	// PushLatencyUS is the normal readers' push latency over the whole run (slow
	// readers are under LatencyUS["push_slow"]).
	PushLatencyUS Latency            `json:"push_latency_us"`
	Messages      Messages           `json:"messages"`
	ReconnectMS   MillisStats        `json:"reconnect_ms"`
	ConnectMS     MillisStats        `json:"connect_ms"`
	Generator     Generator          `json:"generator"`
	Processes     []Process          `json:"processes"`
	Phases        []PhaseSummary     `json:"phases"`
	Gates         []GateResult       `json:"gates"`
	LatencyUS     map[string]Latency `json:"latency_us"` // every SLI tag over the whole run
	// BeforeTrafficUS is every tag over what the agents logged before the first
	// phase (first connects, mostly): the whole run is this plus the phases.
	BeforeTrafficUS map[string]Latency `json:"before_traffic_latency_us"`
	Gateway         GatewayFigures     `json:"gateway"`
	Efficiency      Efficiency         `json:"efficiency"`
	Run             RunMeta            `json:"run"`
	Faults          []FaultSummary     `json:"faults"`
	// Hostile is each hostile class (behaviours.hostile); absent without any.
	Hostile []HostileSummary     `json:"hostile,omitempty"`
	Events  []runfolder.RunEvent `json:"events"`
	Alerts  int                  `json:"alerts"` // alert events control raised
	Caveats []string             `json:"caveats"`
	// PushByGateway is the push latency by the recipient's gateway, whole run
	// and per phase; absent for run folders whose agents did not record it.
	PushByGateway []GatewayPushSummary `json:"push_by_gateway,omitempty"`
	// Redis is the Redis servers' work (redis.go); absent without Redis.
	Redis *RedisSummary `json:"redis,omitempty"`
	// TraceHopsUS is each trace hop's latency over the whole run, in the order a
	// message meets them; absent for runs without traced messages.
	TraceHopsUS []HopLatency `json:"trace_hops_us,omitempty"`
	// ConnectCPU is the initial connect's logins per second and CPU per login;
	// absent without resource samples or a connect window.
	ConnectCPU *ConnectCPU `json:"connect_cpu,omitempty"`
	// Profiles are the CPU profiles the runner took (scenario run -profile),
	// each a file in the run folder; absent when none was asked for.
	Profiles []runfolder.ProfileFile `json:"profiles,omitempty"`
	// Knee is the last step holding the scenario's knee: condition on a valid
	// footing, and every step's own validity; absent for a scenario without one.
	Knee *Knee `json:"knee,omitempty"`
	// Baseline is the run or summary the plots were overlaid with, if any.
	Baseline string   `json:"baseline,omitempty"`
	Files    []string `json:"files"` // the derived files written beside it
}

// Connections are the client connection figures.
type Connections struct {
	Target          int64 `json:"target"`           // clients the scenario asked for
	PeakEstablished int64 `json:"peak_established"` // most logged in at once
	// PeakExact is false when the peak is the sum of each agent's own peak (an
	// upper bound: the agents may have peaked at different times).
	PeakExact       bool              `json:"peak_exact"`
	Established     uint64            `json:"established"` // first logins
	Reconnects      uint64            `json:"reconnects"`
	Disconnects     uint64            `json:"disconnects"`
	ConnectFailures uint64            `json:"connect_failures"`
	Kicks           map[string]uint64 `json:"kicks"` // KICK frames received, by reason
	// WebSocketUsers are the clients that spoke over the gateways' WebSocket port
	// (clients.websocket_share), the rest over TCP; WebSocketConns their upgraded
	// connections, WebSocketRefused the handshakes the gateways refused. All 0 in a
	// run without WebSocket clients.
	WebSocketUsers   int    `json:"websocket_users,omitempty"`
	WebSocketConns   uint64 `json:"websocket_conns,omitempty"`
	WebSocketRefused uint64 `json:"websocket_refused,omitempty"`
	// EstablishS is how long the initial population took to log in, from the
	// agents' start (their connect rate included); EstablishedInitially how many did.
	EstablishS           float64 `json:"establish_s"`
	EstablishedInitially int64   `json:"established_initially"`
	// Relogins are second logins on another gateway (behaviours.relogin);
	// ReplaceLate those whose old connection was not kicked REPLACED within 1 s of
	// the new LOGIN_OK (or ended without that kick); ReplacedUnexpected the KICK
	// REPLACED frames on connections nobody replaced from the agents' side.
	Relogins           uint64 `json:"relogins"`
	ReplaceLate        uint64 `json:"replace_late"`
	ReplacedUnexpected uint64 `json:"replaced_unexpected"`
}

// Messages is the delivery accounting, summed over agents (loadgen.Counts). A
// message is counted by its identity, (sender, client message id).
type Messages struct {
	Sent      uint64 `json:"sent"`
	Acked     uint64 `json:"acked_by_server"`
	Delivered uint64 `json:"delivered"`
	Lost      uint64 `json:"lost"`
	LostSlow  uint64 `json:"lost_slow"` // of Lost, those to slow readers (push_slow): apart from the normal readers' loss
	Failed    uint64 `json:"failed"`    // the client gave up: not acknowledged by the deadline
	Late      uint64 `json:"late"`
	// Duplicates are messages handed to the app more than once (one identity
	// received under two seqs: stored twice). Before summary files had
	// Redelivered, this field counted wire duplicates instead.
	Duplicates uint64 `json:"duplicates"`
	OutOfOrder uint64 `json:"out_of_order"`
	Evicted    uint64 `json:"evicted"`
	Skipped    uint64 `json:"skipped"`
	Overflow   uint64 `json:"overflow"`
	// Redelivered are pushes the receive rule dropped as already held (a seq it
	// had: replays, resends after a reconnect); harmless by design.
	Redelivered uint64 `json:"redelivered"`
	// Stale are pushes of a store incarnation older than the one the receive
	// rule retired, which it cannot deduplicate.
	Stale uint64 `json:"stale"`
	// Phantom are messages received that no agent sent; Misdelivered are messages
	// that reached a user other than their recipient.
	Phantom      uint64 `json:"phantom"`
	Misdelivered uint64 `json:"misdelivered"`
	// Retried are SENDs written again with the same client message id.
	Retried uint64 `json:"retried"`
}

// LostNormal is how many messages normal readers lost: Lost without LostSlow.
func (m Messages) LostNormal() uint64 { return m.Lost - m.LostSlow }

// MillisStats summarises a latency series in milliseconds.
type MillisStats struct {
	Count int64   `json:"count"`
	P50   float64 `json:"p50"`
	P90   float64 `json:"p90"`
	P99   float64 `json:"p99"`
	P999  float64 `json:"p999"`
	Max   float64 `json:"max"`
}

// Generator is the load generator's own health.
type Generator struct {
	LagP999US   int64 `json:"lag_p999_us"`
	LagMaxUS    int64 `json:"lag_max_us"`
	LagSamples  int64 `json:"lag_samples"`
	HiccupMaxUS int64 `json:"hiccup_max_us"`
	// Clamped counts values above the histograms' range (1 h), recorded at the top
	// of the range rather than dropped.
	Clamped uint64 `json:"clamped_values"`
}

// Process is one process name's resources over the run (restarts folded in).
type Process struct {
	Name         string  `json:"name"`
	Role         string  `json:"role"`
	PeakRSSBytes int64   `json:"peak_rss_bytes"`
	CPUSecs      float64 `json:"cpu_s"`
	Incarnations int     `json:"incarnations"`
	ExitCause    string  `json:"exit_cause,omitempty"` // the last incarnation's
}

// PhaseSummary is one phase's figures.
type PhaseSummary struct {
	Name          string             `json:"name"`
	StartS        float64            `json:"start_s"` // since the traffic start
	DurationS     float64            `json:"duration_s"`
	PushLatencyUS Latency            `json:"push_latency_us"`
	LatencyUS     map[string]Latency `json:"latency_us"`
	// Messages are counted by when they were counted (see Caveats); nil when the
	// agents' progress reports are missing.
	Messages        *Messages `json:"messages,omitempty"`
	PeakEstablished int64     `json:"peak_established"`
	DeliveredPerSec float64   `json:"delivered_per_s"`
	SentPerSec      float64   `json:"sent_per_s"`
	// CPU is each role's CPU over the phase; nil without resource samples.
	CPU *PhaseCPU `json:"cpu,omitempty"`
	// TraceHopsUS is each trace hop's latency in the phase (uplink, store,
	// route, gateway, downlink); absent for runs without traced messages.
	TraceHopsUS []HopLatency `json:"trace_hops_us,omitempty"`
}

// GatewayFigures are the gateways' own counters and memory over the run. A
// pointer is nil when nothing reported it.
type GatewayFigures struct {
	RejectedBusy    *float64 `json:"rejected_busy"`
	KicksSlow       *float64 `json:"kicks_slow"`
	PeakRSSBytes    *float64 `json:"peak_rss_bytes"`
	RSSPerConnBytes *float64 `json:"rss_per_conn_bytes"`
	PeakConnections *float64 `json:"peak_connections"` // Σ each gateway's peak
}

// Efficiency relates the system's CPU to the work done. The system is every
// process but the agents (the load generator).
type Efficiency struct {
	SystemCPUSecs float64  `json:"system_cpu_s"`
	CPUUSPerMsg   *float64 `json:"cpu_us_per_msg"` // system CPU ÷ delivered messages; nil if none delivered
}

// RunMeta is where and how the run ran.
type RunMeta struct {
	ScenarioHash string    `json:"scenario_sha256"`
	Kernel       string    `json:"kernel"`
	CPUs         int       `json:"cpus"`
	GoVersion    string    `json:"go_version"`
	NofileHard   uint64    `json:"nofile_hard"`
	Agents       int       `json:"agents"`
	Clients      int64     `json:"clients"`
	Started      time.Time `json:"started"`
	TrafficStart time.Time `json:"traffic_start"`
	TrafficEnd   time.Time `json:"traffic_end"`
	Ended        time.Time `json:"ended"`
	Interrupted  bool      `json:"interrupted"`
	// PreflightFailed lists the preflight checks that did not pass (fatal or not).
	PreflightFailed []string `json:"preflight_failed,omitempty"`
	// Validity are the scenario's bounds the run was held to.
	MaxLagUS    int64 `json:"max_lag_us"`
	MaxHiccupUS int64 `json:"max_hiccup_us"`
	MinSamples  int64 `json:"min_samples"`
}

// millis converts a microsecond summary to milliseconds.
func millis(l Latency) MillisStats {
	ms := func(us int64) float64 { return float64(us) / 1000 }
	return MillisStats{Count: l.Count, P50: ms(l.P50), P90: ms(l.P90), P99: ms(l.P99), P999: ms(l.P999), Max: ms(l.Max)}
}

// ReadSummary reads a summary.json.
func ReadSummary(path string) (*Summary, error) {
	var s Summary
	if err := readJSON(path, &s); err != nil {
		return nil, err
	}
	return &s, nil
}
