// Package reactorprom exports a reactor's counters to Prometheus. It reads
// reactor.Stats on each scrape, so the reactor's hot path only ever touches its own
// atomic counters.
package reactorprom

import (
	"github.com/floodgate/floodgate/gateway/reactor"
	"github.com/prometheus/client_golang/prometheus"
)

// Collector is a prometheus.Collector over a reactor's counters.
type Collector struct {
	stats func() reactor.Stats
	descs map[string]*prometheus.Desc
}

// metric names, help and labels
var specs = []struct {
	name, help string
	labels     []string
}{
	{"floodgate_reactor_connections", "Connections held now, closing ones included.", nil},
	{"floodgate_reactor_max_connections", "The connection admission limit in force.", nil},
	{"floodgate_reactor_accepted_total", "Connections admitted by the accept loops.", nil},
	{"floodgate_reactor_dialed_total", "Outbound connections started.", nil},
	{"floodgate_reactor_rejected_total", "Connections refused at accept, by reason.", []string{"reason"}},
	{"floodgate_reactor_accept_errors_total", "Accept failures that forced a back-off (EMFILE, ENFILE, ...).", nil},
	{"floodgate_reactor_accept_throttled_total", "Accepts delayed by the accept-rate limit.", nil},
	{"floodgate_reactor_closed_total", "Connections torn down, by reason.", []string{"reason"}},
	{"floodgate_reactor_bytes_in_total", "Bytes read from connections.", nil},
	{"floodgate_reactor_bytes_out_total", "Bytes written to connections.", nil},
	{"floodgate_reactor_frames_in_total", "Complete frames read.", nil},
	{"floodgate_reactor_frames_refused_total", "Complete frames refused by their connection's rate limits (not handed to the handler).", nil},
	{"floodgate_reactor_outbound_queued_bytes", "Output queued for sockets that were not writable.", nil},
	{"floodgate_reactor_deferred_queued_bytes", "Deferred frames waiting for a worker, in bytes.", nil},
	{"floodgate_reactor_worker_queue_depth", "Connections waiting for a worker.", nil},
	{"floodgate_reactor_epoll_waits_total", "epoll_wait calls that returned.", nil},
	{"floodgate_reactor_epoll_events_total", "Events returned by epoll_wait.", nil},
	{"floodgate_reactor_epoll_batch", "Events returned per epoll_wait.", nil},
	{"floodgate_reactor_stale_events_total", "Events dropped for a slot whose generation moved on.", nil},
	{"floodgate_reactor_read_requeues_total", "Reads cut by the per-event byte cap and requeued.", nil},
	{"floodgate_reactor_read_pauses_total", "Times a connection stopped reading for backpressure.", nil},
	{"floodgate_reactor_write_queued_total", "Writes the socket did not take whole, so output was queued for EPOLLOUT.", nil},
	{"floodgate_reactor_write_arms_total", "epoll_ctl calls arming or disarming EPOLLOUT.", nil},
}

// New returns a collector for r; labels are added to every metric (for example the
// gateway id).
func New(r *reactor.Reactor, labels prometheus.Labels) *Collector { return NewFunc(r.Stats, labels) }

// NewFunc returns a collector over the counters stats returns on each scrape: the
// sum of several reactors that serve as one (a gateway's TCP and WebSocket ports).
func NewFunc(stats func() reactor.Stats, labels prometheus.Labels) *Collector {
	c := &Collector{stats: stats, descs: map[string]*prometheus.Desc{}}
	for _, s := range specs {
		c.descs[s.name] = prometheus.NewDesc(s.name, s.help, s.labels, labels)
	}
	return c
}

// Describe implements prometheus.Collector.
func (c *Collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range c.descs {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	s := c.stats()
	gauge := func(name string, v float64, lv ...string) {
		ch <- prometheus.MustNewConstMetric(c.descs[name], prometheus.GaugeValue, v, lv...)
	}
	counter := func(name string, v uint64, lv ...string) {
		ch <- prometheus.MustNewConstMetric(c.descs[name], prometheus.CounterValue, float64(v), lv...)
	}
	gauge("floodgate_reactor_connections", float64(s.Conns))
	gauge("floodgate_reactor_max_connections", float64(s.MaxConns))
	counter("floodgate_reactor_accepted_total", s.Accepted)
	counter("floodgate_reactor_dialed_total", s.Dialed)
	counter("floodgate_reactor_rejected_total", s.RejectedBusy, "busy")
	counter("floodgate_reactor_rejected_total", s.RejectedAddr, "addr_limit")
	counter("floodgate_reactor_accept_errors_total", s.AcceptErrors)
	counter("floodgate_reactor_accept_throttled_total", s.Throttled)
	for _, r := range reactor.Reasons() {
		counter("floodgate_reactor_closed_total", s.ClosedBy(r), r.String())
	}
	counter("floodgate_reactor_bytes_in_total", s.BytesIn)
	counter("floodgate_reactor_bytes_out_total", s.BytesOut)
	counter("floodgate_reactor_frames_in_total", s.FramesIn)
	counter("floodgate_reactor_frames_refused_total", s.FramesRefused)
	gauge("floodgate_reactor_outbound_queued_bytes", float64(s.OutboundQueued))
	gauge("floodgate_reactor_deferred_queued_bytes", float64(s.DeferredQueued))
	gauge("floodgate_reactor_worker_queue_depth", float64(s.WorkerQueue))
	counter("floodgate_reactor_epoll_waits_total", s.EpollWaits)
	counter("floodgate_reactor_epoll_events_total", s.EpollEvents)
	counter("floodgate_reactor_stale_events_total", s.StaleEvents)
	counter("floodgate_reactor_read_requeues_total", s.ReadRequeues)
	counter("floodgate_reactor_read_pauses_total", s.ReadPauses)
	counter("floodgate_reactor_write_queued_total", s.WriteQueued)
	counter("floodgate_reactor_write_arms_total", s.WriteArms)

	// Batch sizes: bucket i holds batches of [2^(i-1), 2^i) events; as a cumulative
	// histogram, "le" is 2^i - 1.
	buckets := map[float64]uint64{}
	var cum uint64
	for i, n := range s.EpollBatch {
		cum += n
		if i < len(s.EpollBatch)-1 {
			buckets[float64(uint64(1)<<i)-1] = cum
		}
	}
	ch <- prometheus.MustNewConstHistogram(c.descs["floodgate_reactor_epoll_batch"], cum, float64(s.EpollEvents), buckets)
}
