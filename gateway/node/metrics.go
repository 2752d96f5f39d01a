package node

import (
	"github.com/floodgate/floodgate/gateway/proto"
	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the node's own counters; the reactor's are exported by reactorprom.
// Label values are resolved once here, so the hot path only increments.
type metrics struct {
	framesIn  [proto.TypeMax + 1]prometheus.Counter
	framesOut [proto.TypeMax + 1]prometheus.Counter
	kicks     map[proto.Reason]prometheus.Counter
	logins    map[string]prometheus.Counter
	sends     map[string]prometheus.Counter
	pushes    map[string]prometheus.Counter
	replayed  prometheus.Counter
	// rateLimited counts frames refused by a rate limit, by type; limitCloses the
	// connections ended by a client-port limit, by the code of their KICK.
	rateLimited [proto.TypeMax + 1]prometheus.Counter
	limitCloses map[proto.Code]prometheus.Counter
}

// limitCodes are the KICK codes of the client-port limits, with their metric labels.
var limitCodes = map[proto.Code]string{
	proto.CodeLoginTimeout:       "login_timeout",
	proto.CodeRateExceeded:       "rate_exceeded",
	proto.CodeTooManyConnections: "too_many_connections",
	proto.CodeFrameTooLarge:      "frame_too_large",
}

var (
	loginResults = []string{"ok", "replaced", "bad_token", "expired", "uid_mismatch", "malformed", "unavailable", "shed", "penalized"}
	sendResults  = []string{"ok", "bad_recipient", "too_large", "rate_limited", "recipient_full", "unavailable", "unknown"}
	pushResults  = []string{"delivered", "pending", "offline", "dropped"}
)

func newMetrics(reg prometheus.Registerer, constLabels prometheus.Labels, sessions func() float64) *metrics {
	in := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "floodgate_gateway_frames_in_total",
		Help: "Client frames received, by type.", ConstLabels: constLabels}, []string{"type"})
	out := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "floodgate_gateway_frames_out_total",
		Help: "Frames sent to clients, by type.", ConstLabels: constLabels}, []string{"type"})
	kicks := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "floodgate_gateway_kicks_total",
		Help: "KICK frames sent before closing, by reason.", ConstLabels: constLabels}, []string{"reason"})
	logins := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "floodgate_gateway_logins_total",
		Help: "LOGIN attempts, by result.", ConstLabels: constLabels}, []string{"result"})
	sends := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "floodgate_gateway_sends_total",
		Help: "SEND requests, by result.", ConstLabels: constLabels}, []string{"result"})
	pushes := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "floodgate_gateway_pushes_total",
		Help: "Messages offered to this gateway for push, by result.", ConstLabels: constLabels}, []string{"result"})
	replayed := prometheus.NewCounter(prometheus.CounterOpts{Name: "floodgate_gateway_sync_replayed_total",
		Help: "Messages replayed by SYNC.", ConstLabels: constLabels})
	limited := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "floodgate_gateway_rate_limited_total",
		Help:        "Client frames refused by a rate limit (SEND answered RATE_LIMITED, others dropped), by type.",
		ConstLabels: constLabels}, []string{"type"})
	limitCloses := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "floodgate_gateway_limit_closes_total",
		Help:        "Connections ended by a client-port limit (login deadline, rate, per-address cap, pre-login frame size), by limit.",
		ConstLabels: constLabels}, []string{"limit"})
	sess := prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "floodgate_gateway_sessions",
		Help: "Logged-in sessions now.", ConstLabels: constLabels}, sessions)
	reg.MustRegister(in, out, kicks, logins, sends, pushes, replayed, sess, limited, limitCloses)

	m := &metrics{
		kicks:       map[proto.Reason]prometheus.Counter{},
		logins:      map[string]prometheus.Counter{},
		sends:       map[string]prometheus.Counter{},
		pushes:      map[string]prometheus.Counter{},
		replayed:    replayed,
		limitCloses: map[proto.Code]prometheus.Counter{},
	}
	for code, name := range limitCodes {
		m.limitCloses[code] = limitCloses.WithLabelValues(name)
	}
	for t := proto.TypeLogin; t <= proto.TypeMax; t++ {
		if t.ClientToServer() {
			m.framesIn[t] = in.WithLabelValues(t.String())
			m.rateLimited[t] = limited.WithLabelValues(t.String())
		} else {
			m.framesOut[t] = out.WithLabelValues(t.String())
		}
	}
	for r := proto.ReasonSlow; r <= proto.ReasonPolicy; r++ {
		m.kicks[r] = kicks.WithLabelValues(r.String())
	}
	for _, v := range loginResults {
		m.logins[v] = logins.WithLabelValues(v)
	}
	for _, v := range sendResults {
		m.sends[v] = sends.WithLabelValues(v)
	}
	for _, v := range pushResults {
		m.pushes[v] = pushes.WithLabelValues(v)
	}
	return m
}
