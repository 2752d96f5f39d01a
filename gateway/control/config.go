package control

import (
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/floodgate/floodgate/gateway/gwlink"
	"github.com/floodgate/floodgate/internal/keys"
	"github.com/prometheus/client_golang/prometheus"
)

// Config configures a Service. Zero fields take the defaults documented on them.
type Config struct {
	// SoftFraction: over_soft_limit is raised when a gateway holds more than
	// SoftFraction × max_conns connections (default 0.9).
	SoftFraction float64
	// OutboundQueuedMax (bytes) and WorkerQueueMax (connections): congestion is
	// raised when a gateway's outbound_queued or worker_queue exceeds them
	// (defaults 64 MiB and 1000).
	OutboundQueuedMax int64
	WorkerQueueMax    int
	// ClearRatio: a raised over_soft_limit or congestion resolves only once every
	// figure behind it is at or below ClearRatio × its threshold (default 0.9), so
	// a gateway hovering at the threshold does not flap.
	ClearRatio float64

	// ReleaseMargin: a gateway whose lease ends with its expiry moved back by more
	// than this since it was last seen live counts as released, not down (default
	// 1s; see observe in alerts.go). It absorbs the jitter and clock skew in the
	// expiries the state client reports, and must stay below the lease TTL minus
	// the renewal interval: the least a release moves the expiry back.
	ReleaseMargin time.Duration

	// HighWater and LowWater bound the fleet utilisation (connections over
	// capacity) outside which scaling is recommended (defaults 0.75 and 0.3).
	HighWater, LowWater float64
	// MinGateways is the smallest fleet ever recommended (default 2).
	MinGateways int
	// Sustain is how long utilisation must stay beyond a watermark before a scale
	// action is recommended (default 30s).
	Sustain time.Duration

	// RingSize is how many alert events are kept for GET /v1/alerts (default 1024).
	RingSize int

	// LinkSecret is the cluster key for link connections to gateways (required,
	// at least keys.MinLen bytes).
	LinkSecret []byte
	// AdminToken is the bearer token POST /v1/drain and /v1/undrain require
	// (required, at least keys.MinLen bytes, not the cluster key).
	AdminToken []byte
	// LinkName is this process's name on those links (default "control").
	LinkName string
	// DrainTimeout bounds connecting to a gateway and its answer to a drain
	// (default 5s).
	DrainTimeout time.Duration
	// DrainDefaults fill the fields a drain request leaves out (default: batches of
	// 500 every second, each client told to come back within the batch's second).
	DrainDefaults gwlink.DrainRequest
	// DrainBatchMax is the largest batch a drain request may ask for (default
	// 10000); DrainIntervalMin the shortest interval (default 10ms) and
	// DrainRetryAfterMax the longest retry_after (default 10m). A request past
	// one is refused with 400: one request cannot kick a whole gateway at once
	// or send its clients away for hours.
	DrainBatchMax      int
	DrainIntervalMin   time.Duration
	DrainRetryAfterMax time.Duration

	// PollInterval is how often Run reads the gateway table (default 500ms).
	PollInterval time.Duration
	// Now is the clock (default time.Now).
	Now func() time.Time
	// Registerer receives the metrics (default: a private registry).
	Registerer prometheus.Registerer
	// Logger defaults to slog.Default(). Alert events are logged on it.
	Logger *slog.Logger
}

func (c Config) withDefaults() (Config, error) {
	deff := func(p *float64, v float64) {
		if *p == 0 {
			*p = v
		}
	}
	defd := func(p *time.Duration, v time.Duration) {
		if *p == 0 {
			*p = v
		}
	}
	deff(&c.SoftFraction, 0.9)
	deff(&c.ClearRatio, 0.9)
	deff(&c.HighWater, 0.75)
	deff(&c.LowWater, 0.3)
	if c.OutboundQueuedMax == 0 {
		c.OutboundQueuedMax = 64 << 20
	}
	if c.WorkerQueueMax == 0 {
		c.WorkerQueueMax = 1000
	}
	if c.MinGateways == 0 {
		c.MinGateways = 2
	}
	if c.RingSize == 0 {
		c.RingSize = 1024
	}
	if c.LinkName == "" {
		c.LinkName = "control"
	}
	defd(&c.Sustain, 30*time.Second)
	defd(&c.ReleaseMargin, time.Second)
	defd(&c.DrainTimeout, 5*time.Second)
	defd(&c.PollInterval, 500*time.Millisecond)
	if c.DrainDefaults.Batch == 0 {
		c.DrainDefaults.Batch = 500
	}
	defd(&c.DrainDefaults.Interval, time.Second)
	if c.DrainBatchMax == 0 {
		c.DrainBatchMax = 10000
	}
	defd(&c.DrainIntervalMin, 10*time.Millisecond)
	defd(&c.DrainRetryAfterMax, 10*time.Minute)
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Registerer == nil {
		c.Registerer = prometheus.NewRegistry()
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}

	var errs []error
	if err := keys.Validate(keys.Named{Name: "cluster key", Key: c.LinkSecret},
		keys.Named{Name: "admin token", Key: c.AdminToken}); err != nil {
		errs = append(errs, err)
	}
	if c.SoftFraction <= 0 || c.SoftFraction > 1 || c.ClearRatio <= 0 || c.ClearRatio > 1 {
		errs = append(errs, fmt.Errorf("soft fraction %v, clear ratio %v: want 0 < x <= 1", c.SoftFraction, c.ClearRatio))
	}
	if c.OutboundQueuedMax < 0 || c.WorkerQueueMax < 0 {
		errs = append(errs, fmt.Errorf("congestion thresholds %d B, %d: want > 0", c.OutboundQueuedMax, c.WorkerQueueMax))
	}
	if !(0 < c.LowWater && c.LowWater < c.HighWater && c.HighWater <= 1) {
		errs = append(errs, fmt.Errorf("watermarks low %v, high %v: want 0 < low < high <= 1", c.LowWater, c.HighWater))
	}
	if c.MinGateways < 1 {
		errs = append(errs, fmt.Errorf("min gateways %d: want >= 1", c.MinGateways))
	}
	if c.RingSize < 1 {
		errs = append(errs, fmt.Errorf("ring size %d: want >= 1", c.RingSize))
	}
	if c.Sustain < 0 || c.DrainTimeout < 0 || c.PollInterval < 0 || c.ReleaseMargin < 0 {
		errs = append(errs, fmt.Errorf("sustain %v, drain timeout %v, poll interval %v, release margin %v: want > 0",
			c.Sustain, c.DrainTimeout, c.PollInterval, c.ReleaseMargin))
	}
	if c.DrainBatchMax < 1 || c.DrainIntervalMin < 0 || c.DrainRetryAfterMax < 0 {
		errs = append(errs, fmt.Errorf("drain bounds: batch max %d, interval min %v, retry-after max %v: want batch max >= 1, durations >= 0",
			c.DrainBatchMax, c.DrainIntervalMin, c.DrainRetryAfterMax))
	} else if err := c.checkDrain(c.DrainDefaults); err != nil {
		errs = append(errs, fmt.Errorf("drain defaults: %w", err))
	}
	if err := errors.Join(errs...); err != nil {
		return c, fmt.Errorf("control config: %w", err)
	}
	return c, nil
}

// checkDrain validates a drain request against gwlink's rules and the bounds
// above.
func (c Config) checkDrain(d gwlink.DrainRequest) error {
	if err := d.Validate(); err != nil {
		return err
	}
	if d.Batch > c.DrainBatchMax || d.Interval < c.DrainIntervalMin || d.RetryAfter > c.DrainRetryAfterMax {
		return fmt.Errorf("drain: batch %d, interval %v, retry-after %v: want batch <= %d, interval >= %v, retry-after <= %v",
			d.Batch, d.Interval, d.RetryAfter, c.DrainBatchMax, c.DrainIntervalMin, c.DrainRetryAfterMax)
	}
	return nil
}
