package link

import (
	"errors"
	"fmt"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// CallObserver returns a ClientConfig.Observe hook that records call latency in the
// histogram floodgate_link_call_seconds{peer, method}, registered on reg or reused
// if another client registered it already: every link client of a process shares
// one definition. methods lists the client's methods with their label names. Calls
// that got an answer count, remote errors included; calls that failed locally or on
// a broken connection do not (they measure nothing about the peer).
func CallObserver(reg prometheus.Registerer, peer string, methods map[uint16]string) (func(uint16, time.Duration, error), error) {
	h := prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "floodgate_link_call_seconds",
		Help:    "Latency of calls on internal links, by peer service and method.",
		Buckets: prometheus.ExponentialBuckets(25e-6, 2, 16), // 25µs … 0.8s
	}, []string{"peer", "method"})
	if err := reg.Register(h); err != nil {
		var are prometheus.AlreadyRegisteredError
		existing, ok := h, false
		if errors.As(err, &are) {
			existing, ok = are.ExistingCollector.(*prometheus.HistogramVec)
		}
		if !ok {
			return nil, fmt.Errorf("link: registering floodgate_link_call_seconds: %w", err)
		}
		h = existing
	}
	obs := make(map[uint16]prometheus.Observer, len(methods))
	for m, name := range methods {
		obs[m] = h.WithLabelValues(peer, name)
	}
	return func(m uint16, d time.Duration, err error) {
		var re *RemoteError
		if o := obs[m]; o != nil && (err == nil || errors.As(err, &re)) {
			o.Observe(d.Seconds())
		}
	}, nil
}
