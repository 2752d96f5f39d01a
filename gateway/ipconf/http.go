package ipconf

import (
	"encoding/json"
	"net/http"
	"strconv"
	"time"
)

// Response is the body of GET /v1/gateways.
type Response struct {
	Gateways    []Gateway   `json:"gateways"`     // in the order to try them
	HeartbeatMS int64       `json:"heartbeat_ms"` // client heartbeat interval
	Backoff     BackoffHint `json:"backoff"`      // reconnect schedule
	// Frozen is true while gateways that vanished in a mass loss are still
	// advertised (see the package comment).
	Frozen bool `json:"frozen"`
	// GeneratedAt is when the gateway table behind the list was applied (RFC 3339).
	GeneratedAt string `json:"generated_at"`
}

// Gateway is one advertised gateway.
type Gateway struct {
	ID     string  `json:"id"`
	Addr   string  `json:"addr"`         // client-facing ip:port
	WS     string  `json:"ws,omitempty"` // client-facing ip:port of its WebSocket port; absent when it has none
	Weight float64 `json:"weight"`       // share of new connections it should take; the weights sum to 1
}

// BackoffHint is Backoff in milliseconds.
type BackoffHint struct {
	BaseMS int64   `json:"base_ms"`
	MaxMS  int64   `json:"max_ms"`
	Jitter float64 `json:"jitter"`
}

// ErrorResponse is the body of every error answer.
type ErrorResponse struct {
	Error string `json:"error"`
}

// Handler serves GET /v1/gateways?uid=N. The answer is 200 with a Response; 503
// with a Response (no gateways, backoff hints intact) and a Retry-After header
// when nothing can be advertised; 400 with an ErrorResponse when uid is missing
// or not a positive integer.
func (s *Service) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/gateways", s.serveGateways)
	return mux
}

func (s *Service) serveGateways(w http.ResponseWriter, r *http.Request) {
	if uid, err := strconv.ParseUint(r.URL.Query().Get("uid"), 10, 64); err != nil || uid == 0 {
		s.reply(w, http.StatusBadRequest, ErrorResponse{Error: "uid: want a positive integer, as ?uid=N"})
		return
	}
	resp := Response{
		Gateways:    []Gateway{},
		HeartbeatMS: s.cfg.Heartbeat.Milliseconds(),
		Backoff: BackoffHint{BaseMS: s.cfg.Backoff.Base.Milliseconds(), MaxMS: s.cfg.Backoff.Max.Milliseconds(),
			Jitter: s.cfg.Backoff.Jitter},
	}
	v := s.current.Load()
	if v != nil {
		resp.Frozen = v.frozen
		resp.GeneratedAt = v.generated.UTC().Format(time.RFC3339)
		s.rngMu.Lock()
		ordered := v.arrange(make([]entry, 0, len(v.entries)), s.cfg.TopK, s.cfg.Rand)
		s.rngMu.Unlock()
		for _, e := range ordered {
			resp.Gateways = append(resp.Gateways, Gateway{ID: e.ID, Addr: e.Addr, WS: e.WS, Weight: e.Weight})
		}
	}
	if len(resp.Gateways) == 0 {
		w.Header().Set("Retry-After", strconv.FormatInt(int64(max(s.cfg.Backoff.Base.Seconds(), 1)), 10))
		s.reply(w, http.StatusServiceUnavailable, resp)
		return
	}
	s.reply(w, http.StatusOK, resp)
}

func (s *Service) reply(w http.ResponseWriter, status int, body any) {
	s.metrics.request(status)
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	if err := json.NewEncoder(w).Encode(body); err != nil {
		s.log.Debug("writing a response failed", "err", err)
	}
}
