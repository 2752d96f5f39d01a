package ipconf

import (
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Backoff is the reconnect schedule hinted to clients (PROTOCOL.md §10):
// attempt n waits ceiling × (1 − Jitter × u) with ceiling = min(Max, Base × 2^n)
// and u uniform in [0, 1), so each delay is randomised by up to the fraction
// Jitter of itself and clients do not come back in lockstep. Jitter 1 is full
// jitter.
type Backoff struct {
	Base, Max time.Duration
	Jitter    float64
}

// The backoff hinted by default: full jitter from 500 ms, capped at 30 s, the
// schedule PROTOCOL.md §10 prescribes for clients that have no hint.
const (
	DefaultBackoffBase   = 500 * time.Millisecond
	DefaultBackoffMax    = 30 * time.Second
	DefaultBackoffJitter = 1.0
)

// Config configures a Service. Zero fields take the defaults documented on them.
type Config struct {
	// TopK is how many of the best-scored gateways head every answer, shuffled per
	// request by weighted random choice (default 3; 1 turns shuffling off). The
	// rest follow by score.
	TopK int
	// FreezeFor is how long gateways that vanished in a mass loss (more than half
	// of the live fleet in one update) keep being advertised (default 30s).
	FreezeFor time.Duration
	// Window is the time constant of the per-gateway load smoothing (default 5s).
	Window time.Duration
	// AcceptRateFull is the accept rate (admissions per second) at which a
	// gateway's storm penalty is full (default 1000).
	AcceptRateFull float64
	// CPUFull is the CPU use (cores) at which a gateway's CPU penalty is full
	// (default 4).
	CPUFull float64
	// AcceptPenalty and CPUPenalty are the largest fractions of a gateway's score
	// that a full storm and a full CPU take away (defaults 0.5 and 0.25), so
	// remaining capacity stays the dominant term.
	AcceptPenalty, CPUPenalty float64
	// Heartbeat is the client heartbeat interval hinted to clients (default 30s).
	Heartbeat time.Duration
	// Backoff is hinted to clients (defaults DefaultBackoffBase, DefaultBackoffMax
	// and DefaultBackoffJitter: base 500ms, max 30s, full jitter).
	Backoff Backoff
	// PollInterval is how often Run reads the gateway table (default 500ms).
	PollInterval time.Duration
	// StaleAfter: Health fails once no table has been applied for this long
	// (default 5s).
	StaleAfter time.Duration
	// Now is the clock (default time.Now).
	Now func() time.Time
	// Rand orders the top K (default: randomly seeded). The Service serialises
	// its use, so a seeded *rand.Rand makes the order reproducible in tests.
	Rand *rand.Rand
	// Registerer receives the metrics (default: a private registry).
	Registerer prometheus.Registerer
	// Logger defaults to slog.Default().
	Logger *slog.Logger
}

// withDefaults returns c with its zero fields defaulted, or an error for values
// that cannot work.
func (c Config) withDefaults() (Config, error) {
	def := func(d *time.Duration, v time.Duration) {
		if *d == 0 {
			*d = v
		}
	}
	if c.TopK == 0 {
		c.TopK = 3
	}
	def(&c.FreezeFor, 30*time.Second)
	def(&c.Window, 5*time.Second)
	def(&c.Heartbeat, 30*time.Second)
	def(&c.Backoff.Base, DefaultBackoffBase)
	def(&c.Backoff.Max, DefaultBackoffMax)
	def(&c.PollInterval, 500*time.Millisecond)
	def(&c.StaleAfter, 5*time.Second)
	if c.Backoff.Jitter == 0 {
		c.Backoff.Jitter = DefaultBackoffJitter
	}
	if c.AcceptRateFull == 0 {
		c.AcceptRateFull = 1000
	}
	if c.CPUFull == 0 {
		c.CPUFull = 4
	}
	if c.AcceptPenalty == 0 {
		c.AcceptPenalty = 0.5
	}
	if c.CPUPenalty == 0 {
		c.CPUPenalty = 0.25
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Rand == nil {
		c.Rand = rand.New(rand.NewPCG(rand.Uint64(), rand.Uint64()))
	}
	if c.Registerer == nil {
		c.Registerer = prometheus.NewRegistry()
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	var errs []error
	if c.TopK < 0 {
		errs = append(errs, fmt.Errorf("top K %d: want >= 0", c.TopK))
	}
	for _, d := range []struct {
		name string
		v    time.Duration
	}{{"freeze period", c.FreezeFor}, {"smoothing window", c.Window}, {"heartbeat", c.Heartbeat},
		{"backoff base", c.Backoff.Base}, {"poll interval", c.PollInterval}, {"stale-after", c.StaleAfter}} {
		if d.v < 0 {
			errs = append(errs, fmt.Errorf("%s %v: want > 0", d.name, d.v))
		}
	}
	if c.Backoff.Max < c.Backoff.Base {
		errs = append(errs, fmt.Errorf("backoff max %v below base %v", c.Backoff.Max, c.Backoff.Base))
	}
	if c.Backoff.Jitter < 0 || c.Backoff.Jitter > 1 {
		errs = append(errs, fmt.Errorf("backoff jitter %v: want 0..1", c.Backoff.Jitter))
	}
	if c.AcceptRateFull < 0 || c.CPUFull < 0 {
		errs = append(errs, fmt.Errorf("accept-rate-full %v, cpu-full %v: want > 0", c.AcceptRateFull, c.CPUFull))
	}
	if c.AcceptPenalty < 0 || c.AcceptPenalty > 1 || c.CPUPenalty < 0 || c.CPUPenalty > 1 {
		errs = append(errs, fmt.Errorf("penalties %v, %v: want 0..1", c.AcceptPenalty, c.CPUPenalty))
	}
	if err := errors.Join(errs...); err != nil {
		return c, fmt.Errorf("ipconf config: %w", err)
	}
	return c, nil
}
