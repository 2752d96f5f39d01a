// Package scenario reads scenario files: a small data centre (topology, component
// settings), a population of clients and their traffic, phases with timed faults,
// and the gates a run must pass. Reading is strict: an unknown key, a value of the
// wrong kind, an impossible combination is an error with file:line and what was
// expected. scenarios/README.md documents every key.
package scenario

import (
	"fmt"
	"os"
	"time"

	"github.com/floodgate/floodgate/internal/units"
)

// Scenario is one scenario file.
type Scenario struct {
	At          Pos
	Name        string     `yaml:"name,required" want:"a name: letters, digits and dashes"`
	Description string     `yaml:"description"`
	Seed        int64      `yaml:"seed"`
	Mode        string     `yaml:"mode" want:"auto, netns or loopback"`
	Topology    Topology   `yaml:"topology,required"`
	Components  Components `yaml:"components"`
	Clients     Clients    `yaml:"clients,required"`
	Traffic     Traffic    `yaml:"traffic"`
	Behaviours  Behaviours `yaml:"behaviours"`
	Phases      []Phase    `yaml:"phases,required"`
	Gates       []Gate     `yaml:"gates" want:"a gate like \"push p99 < 100ms\""`
	Validity    Validity   `yaml:"validity"`
	Autoscale   *Autoscale `yaml:"autoscale"`
	// Knee asks the report for the run's knee: the last phase (step) such that
	// every step up to it is valid on its own and holds this condition, a gate
	// judged over each step ("push p99 < 100ms"). Such a run's validity is that
	// of the steps up to the knee (the first step when there is none); the steps
	// after it are reported with their own validity, since a stepped run is
	// meant to go past what the machine sustains. Unset: no knee.
	Knee *Gate `yaml:"knee" want:"a gate judged over each step, like \"push p99 < 100ms\""`

	File string // where it was read from
}

// Topology is the data centre: a core host (state, msg, router, ipconf, control),
// one host per gateway, one per load agent.
type Topology struct {
	At       Pos
	Gateways int     `yaml:"gateways,required"`
	Agents   int     `yaml:"agents,required"`
	Backend  Backend `yaml:"backend"`
	// Redis is how Redis is deployed for the backends that use it (redis.go).
	Redis RedisTopology `yaml:"redis"`
}

// Backend chooses the state and msg storage. msg's redis-replicated acknowledges a
// SEND only once a replica holds the message too.
type Backend struct {
	At    Pos
	State string `yaml:"state" want:"memory or redis"`
	Msg   string `yaml:"msg" want:"memory, redis or redis-replicated"`
}

// Components holds per-component settings; zero values keep each one's defaults.
type Components struct {
	Gateway GatewaySettings `yaml:"gateway"`
	Msg     MsgSettings     `yaml:"msg"`
	Ipconf  IpconfSettings  `yaml:"ipconf"`
	Control ControlSettings `yaml:"control"`
}

// GatewaySettings configures every gateway.
type GatewaySettings struct {
	At             Pos
	MaxConns       units.Count    `yaml:"max_conns"`
	Epollers       int            `yaml:"epollers"`
	Workers        int            `yaml:"workers"`
	AcceptRate     units.Rate     `yaml:"accept_rate"`
	IdleTimeout    units.Duration `yaml:"idle_timeout"`
	Heartbeat      units.Duration `yaml:"heartbeat"`
	WriteHighWater units.Size     `yaml:"write_high_water"`
	WriteHardCap   units.Size     `yaml:"write_hard_cap"`
	Sndbuf         units.Size     `yaml:"sndbuf"`
	LeaseTTL       units.Duration `yaml:"lease_ttl"`
}

// MsgSettings configures the msg service.
type MsgSettings struct {
	Inbox int `yaml:"inbox"`
}

// IpconfSettings configures ipconf.
type IpconfSettings struct {
	TopK   int            `yaml:"top_k"`
	Freeze units.Duration `yaml:"freeze"`
}

// ControlSettings configures control.
type ControlSettings struct {
	SoftLimit units.Fraction `yaml:"soft_limit"`
}

// Clients is the simulated user population.
type Clients struct {
	At          Pos
	Count       units.Count    `yaml:"count,required"`
	ConnectRate units.Rate     `yaml:"connect_rate"`
	Heartbeat   units.Duration `yaml:"heartbeat"`
	// PongTimeout: a client that has no frame within this of a PING takes its
	// gateway for dead and reconnects (default 10s).
	PongTimeout units.Duration `yaml:"pong_timeout"`
	// Deadline: a message not delivered by then counts as lost (default 10s).
	Deadline  units.Duration `yaml:"deadline"`
	Reconnect Reconnect      `yaml:"reconnect"`
	// WebSocketShare is the share of clients that connect to their gateway's
	// WebSocket port instead of its TCP port (PROTOCOL.md §2.1); which ones is
	// fixed by the client's index.
	WebSocketShare units.Fraction `yaml:"websocket_share"`
}

// Reconnect is the backoff hint ipconf hands clients.
type Reconnect struct {
	Base units.Duration `yaml:"base"`
	Max  units.Duration `yaml:"max"`
}

// Traffic is the message load.
type Traffic struct {
	At        Pos
	Rate      units.Rate `yaml:"rate"`
	Pattern   string     `yaml:"pattern" want:"pairs, zipf or groups"`
	ZipfS     float64    `yaml:"zipf_s"`
	GroupSize int        `yaml:"group_size"`
	Payload   units.Size `yaml:"payload"`
	// Trace is the share of messages sent traced (SEND_TRACED), whose hops the
	// agents record; unset: the load generator's default (1%).
	Trace *units.Fraction `yaml:"trace"`
}

// Behaviours are what clients do besides sending.
type Behaviours struct {
	At   Pos
	Slow Slow           `yaml:"slow"`
	Idle units.Fraction `yaml:"idle"`
	// Churn is disconnects per second across all clients; they reconnect.
	Churn units.Rate `yaml:"churn"`
	// Relogin is how many times a second (across all clients) an active client
	// logs in again on another gateway without closing its connection; the old
	// connection must be kicked REPLACED.
	Relogin units.Rate `yaml:"relogin"`
	// Hostile are abusive connections beside the clients (unset: none).
	Hostile *Hostile `yaml:"hostile"`
}

// Slow readers.
type Slow struct {
	Fraction units.Fraction `yaml:"fraction"`
	// Rate is bytes per second a slow reader reads; 0 stops reading altogether.
	Rate units.Size `yaml:"rate"`
}

// Phase is a stretch of the run.
type Phase struct {
	At       Pos
	Name     string         `yaml:"name,required"`
	Duration units.Duration `yaml:"duration,required"`
	// Clients connected from this phase on (a capacity run steps it up; unset: all).
	Clients *units.Count `yaml:"clients"`
	// Traffic for this phase only (unset: the scenario's traffic and behaviours).
	Rate         *units.Rate     `yaml:"rate"`
	Churn        *units.Rate     `yaml:"churn"`
	Relogin      *units.Rate     `yaml:"relogin"`
	SlowFraction *units.Fraction `yaml:"slow_fraction"`
	Faults       []Fault         `yaml:"faults"`
	Gates        []Gate          `yaml:"gates" want:"a gate like \"push p99 < 100ms\""`
}

// Fault is one timed action on the running system: exactly one of its action keys.
type Fault struct {
	At     Pos
	Offset units.Duration `yaml:"at,required"` // from the start of its phase
	// Kill sends SIGKILL to a process: gw-N, state, msg, router, ipconf, control,
	// or one of Redis's (topology.redis): redis, redis-N, sentinel-N, or
	// redis-primary — the server that is the primary when the fault strikes.
	Kill string `yaml:"kill" want:"a process name: gw-N, state, msg, router, ipconf, control, redis-N or redis-primary"`
	// Pause sends SIGSTOP, then SIGCONT after For.
	Pause string `yaml:"pause" want:"a process name"`
	// For is how long a pause or a network fault lasts (a network fault without
	// it lasts until the end of the run).
	For     units.Duration `yaml:"for"`
	Restart string         `yaml:"restart" want:"a process name"`
	// Drain moves a gateway's clients elsewhere through control.
	Drain    string         `yaml:"drain" want:"a gateway name, gw-N"`
	Batch    int            `yaml:"batch"`
	Interval units.Duration `yaml:"interval"`
	// ScaleOut starts this many more gateways.
	ScaleOut int `yaml:"scale_out"`
	// ReconnectStorm restarts every gateway at once.
	ReconnectStorm bool `yaml:"reconnect_storm"`
	// ConnectFlood connects this many extra clients beyond the plan, at FloodRate.
	ConnectFlood units.Count `yaml:"connect_flood"`
	FloodRate    units.Rate  `yaml:"flood_rate"`

	// Network faults (netns mode only; see netfaults.go). Partition cuts the
	// traffic between two sides, each a host or a group: [gw-2, core].
	Partition []string `yaml:"partition" want:"a side: core, gw-N, cl-N, gateways or agents"`
	// OneWay makes a partition drop only the first side's packets to the second.
	OneWay bool `yaml:"one_way"`
	// Loss drops a share of the packets on a host's link, each way.
	Loss string `yaml:"loss" want:"a host: core, gw-N or cl-N"`
	// Bandwidth limits a host's link, each way.
	Bandwidth string `yaml:"bandwidth" want:"a host: core, gw-N or cl-N"`
	// Blackhole drops every packet in and out of a host, silently.
	Blackhole string `yaml:"blackhole" want:"a host: core, gw-N or cl-N"`
	// Rate is a loss's share ("2%") or a bandwidth's bytes per second ("1MB/s").
	Rate string `yaml:"rate" want:"a loss share like 2% or a bandwidth like 1MB/s"`
	// LossRate and BytesPerSec are Rate read for a loss or a bandwidth (set by
	// the checks).
	LossRate    float64
	BytesPerSec int64
}

// Action names the fault's action.
func (f *Fault) Action() string {
	switch {
	case f.Kill != "":
		return "kill"
	case f.Pause != "":
		return "pause"
	case f.Restart != "":
		return "restart"
	case f.Drain != "":
		return "drain"
	case f.ScaleOut != 0: // a negative one too, for the checks to refuse
		return "scale_out"
	case f.ReconnectStorm:
		return "reconnect_storm"
	case f.ConnectFlood > 0:
		return "connect_flood"
	case f.Partition != nil:
		return "partition"
	case f.Loss != "":
		return "loss"
	case f.Bandwidth != "":
		return "bandwidth"
	case f.Blackhole != "":
		return "blackhole"
	}
	return ""
}

// Target is what the fault acts on: the process of a kill, pause, restart or
// drain; the host of a loss, bandwidth or blackhole; a partition's sides, written
// "a<->b" (both ways) or "a->b" (one way: a's packets to b dropped).
func (f *Fault) Target() string {
	if f.Partition != nil {
		return f.partitionTarget()
	}
	return f.Kill + f.Pause + f.Restart + f.Drain + f.Loss + f.Bandwidth + f.Blackhole
}

// Validity bounds what makes a run's measurements trustworthy: beyond them the
// verdict is "invalid", never a pass.
type Validity struct {
	// MaxLag is the largest p99.9 generator lag (actual − intended send time).
	MaxLag units.Duration `yaml:"max_lag"`
	// MaxHiccup is the largest stall of an agent's own scheduler.
	MaxHiccup units.Duration `yaml:"max_hiccup"`
	// MinSamples is the fewest push latency samples a run may have.
	MinSamples units.Count `yaml:"min_samples"`
}

// Autoscale lets the runner act on control's scale-out recommendations.
type Autoscale struct {
	At Pos
	// Max is the most gateways the runner will run.
	Max   int            `yaml:"max,required"`
	Every units.Duration `yaml:"every"` // how often it asks control; default 5s
}

// Load reads and checks a scenario file.
func Load(path string) (*Scenario, error) {
	src, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return Parse(path, src)
}

// Parse reads and checks a scenario from src, naming it file in errors.
func Parse(file string, src []byte) (*Scenario, error) {
	s := &Scenario{}
	if err := decodeFile(file, src, s); err != nil {
		return nil, err
	}
	s.File = file
	s.defaults()
	if errs := s.check(file); len(errs) > 0 {
		return nil, errs
	}
	return s, nil
}

func (s *Scenario) defaults() {
	if s.Mode == "" {
		s.Mode = "auto"
	}
	if s.Topology.Backend.State == "" {
		s.Topology.Backend.State = "memory"
	}
	if s.Topology.Backend.Msg == "" {
		s.Topology.Backend.Msg = "memory"
	}
	s.Topology.redisDefaults()
	if s.Traffic.Pattern == "" {
		s.Traffic.Pattern = "pairs"
	}
	if s.Traffic.Payload == 0 {
		s.Traffic.Payload = 64
	}
	if s.Clients.Deadline == 0 {
		s.Clients.Deadline = units.Duration(10 * time.Second)
	}
	if s.Validity.MaxLag == 0 {
		s.Validity.MaxLag = units.Duration(50 * time.Millisecond)
	}
	if s.Validity.MaxHiccup == 0 {
		s.Validity.MaxHiccup = units.Duration(200 * time.Millisecond)
	}
	if s.Validity.MinSamples == 0 {
		s.Validity.MinSamples = 1000
	}
	if s.Autoscale != nil && s.Autoscale.Every == 0 {
		s.Autoscale.Every = units.Duration(5 * time.Second)
	}
}

// Duration is the total of the phases.
func (s *Scenario) Duration() time.Duration {
	var d time.Duration
	for _, p := range s.Phases {
		d += p.Duration.D()
	}
	return d
}

// InitialClients is how many clients connect before the traffic starts.
func (s *Scenario) InitialClients() int64 {
	if len(s.Phases) > 0 && s.Phases[0].Clients != nil {
		return int64(*s.Phases[0].Clients)
	}
	return int64(s.Clients.Count)
}

// Processes names every process a run starts, for fault targets.
func (s *Scenario) Processes() []string {
	ps := []string{"state", "msg", "router", "ipconf", "control"}
	for i := 1; i <= s.Topology.Gateways; i++ {
		ps = append(ps, fmt.Sprintf("gw-%d", i))
	}
	return append(ps, s.Topology.redisProcesses()...)
}
