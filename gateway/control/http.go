package control

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/floodgate/floodgate/internal/units"
)

// Duration is a time.Duration written in JSON as a Go duration string ("1s"):
// units.Duration, the one such type.
type Duration = units.Duration

// DrainBody is the body of POST /v1/drain. Fields left out take Config.DrainDefaults.
type DrainBody struct {
	Gateway    string    `json:"gateway"`
	Batch      *int      `json:"batch,omitempty"`       // clients kicked per interval
	Interval   *Duration `json:"interval,omitempty"`    // between batches
	RetryAfter *Duration `json:"retry_after,omitempty"` // reconnect hint given to kicked clients
}

// UndrainBody is the body of POST /v1/undrain.
type UndrainBody struct {
	Gateway string `json:"gateway"`
}

// UndrainResult is the answer to an undrain.
type UndrainResult struct {
	Gateway  string `json:"gateway"`
	Draining bool   `json:"draining"` // always false
}

// AlertsResponse is the body of GET /v1/alerts.
type AlertsResponse struct {
	Events []Event `json:"events"` // seq > since, oldest first
	// LastSeq is the newest event's seq: pass it as since to read only newer ones.
	LastSeq uint64 `json:"last_seq"`
	// Truncated is true when events after since were already dropped from the
	// bounded ring (the reader fell too far behind).
	Truncated bool `json:"truncated"`
}

// ErrorResponse is the body of every error answer.
type ErrorResponse struct {
	Error string `json:"error"`
}

// maxBody bounds request bodies: a drain or undrain body is a few dozen bytes.
const maxBody = 4 << 10

// Handler serves the control API:
//
//	GET  /v1/alerts?since=SEQ  AlertsResponse (since defaults to 0: every kept event)
//	GET  /v1/recommendation    Recommendation
//	POST /v1/drain             DrainBody → DrainResult
//	POST /v1/undrain           UndrainBody → UndrainResult
//
// The POSTs change the fleet, so they need "Authorization: Bearer <admin token>"
// (401 without one, 403 with a wrong one) and "Content-Type: application/json"
// (415 otherwise: a browser form or a text/plain fetch from a web page cannot
// send one without a CORS preflight this server never answers), and their bodies
// are at most 4 KiB (413). The GETs only read.
//
// Errors answer an ErrorResponse: 400 for a malformed request or one past the
// drain bounds, 404 for an unknown gateway, 409 for one not live, 502 when the
// state service or the gateway fails (a failed drain command leaves the draining
// flag set), 503 once closed.
func (s *Service) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/alerts", s.serveAlerts)
	mux.HandleFunc("GET /v1/recommendation", s.serveRecommendation)
	mux.HandleFunc("POST /v1/drain", s.mutating("drain", s.serveDrain))
	mux.HandleFunc("POST /v1/undrain", s.mutating("undrain", s.serveUndrain))
	return mux
}

// mutating guards an endpoint that changes the fleet: the admin token first (an
// unauthenticated caller learns nothing else), then the content type, then a
// bounded body.
func (s *Service) mutating(op string, h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if status, msg := s.authorize(r); status != 0 {
			if status == http.StatusUnauthorized {
				w.Header().Set("WWW-Authenticate", `Bearer realm="floodgate-control"`)
			}
			s.metrics.drains.WithLabelValues(op, resultDenied).Inc()
			writeJSON(w, status, ErrorResponse{Error: msg})
			return
		}
		if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || mt != "application/json" {
			s.metrics.drains.WithLabelValues(op, resultDenied).Inc()
			writeJSON(w, http.StatusUnsupportedMediaType, ErrorResponse{Error: "Content-Type must be application/json"})
			return
		}
		r.Body = http.MaxBytesReader(w, r.Body, maxBody)
		h(w, r)
	}
}

// authorize checks r's bearer token against the admin token in constant time
// (both are hashed first, so neither the content nor the length leaks). It
// returns 0 when r may proceed, else the status and message to answer.
func (s *Service) authorize(r *http.Request) (status int, msg string) {
	scheme, tok, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") || tok == "" {
		return http.StatusUnauthorized, "this endpoint needs Authorization: Bearer <admin token>"
	}
	got, want := sha256.Sum256([]byte(tok)), sha256.Sum256(s.cfg.AdminToken)
	if subtle.ConstantTimeCompare(got[:], want[:]) != 1 {
		return http.StatusForbidden, "wrong admin token"
	}
	return 0, ""
}

func (s *Service) serveAlerts(w http.ResponseWriter, r *http.Request) {
	var since uint64
	if v := r.URL.Query().Get("since"); v != "" {
		var err error
		if since, err = strconv.ParseUint(v, 10, 64); err != nil {
			writeJSON(w, http.StatusBadRequest, ErrorResponse{Error: fmt.Sprintf("since %q: want an event seq (an integer >= 0)", v)})
			return
		}
	}
	events, last, truncated := s.Alerts(since)
	if events == nil {
		events = []Event{}
	}
	writeJSON(w, http.StatusOK, AlertsResponse{Events: events, LastSeq: last, Truncated: truncated})
}

func (s *Service) serveRecommendation(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, s.Recommendation())
}

func (s *Service) serveDrain(w http.ResponseWriter, r *http.Request) {
	var b DrainBody
	if !decode(w, r, &b) {
		s.metrics.drains.WithLabelValues("drain", resultInvalid).Inc()
		return
	}
	req := s.cfg.DrainDefaults
	if b.Batch != nil {
		req.Batch = *b.Batch
	}
	if b.Interval != nil {
		req.Interval = time.Duration(*b.Interval)
	}
	if b.RetryAfter != nil {
		req.RetryAfter = time.Duration(*b.RetryAfter)
	}
	res, err := s.Drain(r.Context(), b.Gateway, req)
	if err != nil {
		s.fail(w, "drain", err)
		return
	}
	s.metrics.drains.WithLabelValues("drain", resultOK).Inc()
	writeJSON(w, http.StatusOK, res)
}

func (s *Service) serveUndrain(w http.ResponseWriter, r *http.Request) {
	var b UndrainBody
	if !decode(w, r, &b) {
		s.metrics.drains.WithLabelValues("undrain", resultInvalid).Inc()
		return
	}
	if err := s.Undrain(r.Context(), b.Gateway); err != nil {
		s.fail(w, "undrain", err)
		return
	}
	s.metrics.drains.WithLabelValues("undrain", resultOK).Inc()
	writeJSON(w, http.StatusOK, UndrainResult{Gateway: b.Gateway})
}

// decode reads a JSON body with a gateway field into v, answering 400 itself if
// it is malformed, has unknown fields, or names no gateway.
func decode(w http.ResponseWriter, r *http.Request, v interface{ gateway() string }) bool {
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxBody))
	dec.DisallowUnknownFields()
	err := dec.Decode(v)
	if err == nil && dec.More() {
		err = errors.New("trailing data after the JSON object")
	}
	if err == nil && v.gateway() == "" {
		err = errors.New(`missing "gateway"`)
	}
	if _, tooBig := errors.AsType[*http.MaxBytesError](err); tooBig {
		writeJSON(w, http.StatusRequestEntityTooLarge, ErrorResponse{Error: fmt.Sprintf("request body over %d bytes", maxBody)})
		return false
	}
	if err != nil {
		writeJSON(w, http.StatusBadRequest, ErrorResponse{Error: "request body: " + err.Error()})
		return false
	}
	return true
}

func (b *DrainBody) gateway() string   { return b.Gateway }
func (b *UndrainBody) gateway() string { return b.Gateway }

// fail answers err with the status its kind maps to.
func (s *Service) fail(w http.ResponseWriter, op string, err error) {
	status, result := http.StatusInternalServerError, resultError
	for _, m := range []struct {
		err    error
		status int
		result string
	}{
		{ErrInvalid, http.StatusBadRequest, resultInvalid},
		{ErrUnknownGateway, http.StatusNotFound, resultUnknown},
		{ErrNotLive, http.StatusConflict, resultNotLive},
		{ErrState, http.StatusBadGateway, resultStateError},
		{ErrUnreachable, http.StatusBadGateway, resultUnreachable},
		{ErrClosed, http.StatusServiceUnavailable, resultClosed},
	} {
		if errors.Is(err, m.err) {
			status, result = m.status, m.result
			break
		}
	}
	s.metrics.drains.WithLabelValues(op, result).Inc()
	if status >= 500 {
		s.log.Warn(op+" failed", "err", err)
	}
	writeJSON(w, status, ErrorResponse{Error: err.Error()})
}

func writeJSON(w http.ResponseWriter, status int, body any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(body) //nolint:errcheck // the client went away
}
