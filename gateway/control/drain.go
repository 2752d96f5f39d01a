package control

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/floodgate/floodgate/gateway/gwlink"
	"github.com/floodgate/floodgate/gateway/link"
	"github.com/floodgate/floodgate/gateway/state"
)

// Errors of Drain and Undrain; the HTTP API maps each to a status.
var (
	// ErrInvalid: the drain request's values are out of range (400).
	ErrInvalid = errors.New("control: invalid request")
	// ErrUnknownGateway: no such gateway (404).
	ErrUnknownGateway = errors.New("control: unknown gateway")
	// ErrNotLive: the gateway's lease is not live, or it has no link address (409).
	ErrNotLive = errors.New("control: gateway is not live")
	// ErrState: the state service failed to set the draining flag (502).
	ErrState = errors.New("control: state service")
	// ErrUnreachable: the gateway did not take the drain command (502). Its
	// draining flag stays set: it is no longer advertised, and the drain can be
	// retried (or undone with Undrain).
	ErrUnreachable = errors.New("control: gateway unreachable")
	// ErrClosed: the Service is closed (503).
	ErrClosed = errors.New("control: closed")
)

// DrainResult is the answer to a drain: the gateway's DrainStatus, with its id.
type DrainResult struct {
	Gateway  string `json:"gateway"`
	Draining bool   `json:"draining"` // the flag in the state service
	gwlink.DrainStatus
}

// Drain withdraws gateway id from ipconf (SetDraining) and then tells it, over
// its link, to move its clients off as req paces. It answers the gateway's
// DrainStatus.
func (s *Service) Drain(ctx context.Context, id string, req gwlink.DrainRequest) (DrainResult, error) {
	if err := s.cfg.checkDrain(req); err != nil {
		return DrainResult{}, fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	g, err := s.liveGateway(id)
	if err != nil {
		return DrainResult{}, err
	}
	if err := s.setDraining(ctx, id, true); err != nil {
		return DrainResult{}, err
	}
	s.mu.Lock()
	if t := s.gws[id]; t != nil && t.g.Epoch == g.Epoch {
		t.drainSet = true
	}
	s.mu.Unlock()

	res := DrainResult{Gateway: id, Draining: true}
	c, addr, err := s.link(id)
	if err != nil {
		return res, err
	}
	ctx, cancel := context.WithTimeout(ctx, s.cfg.DrainTimeout)
	defer cancel()
	if err := c.WaitConnected(ctx); err != nil {
		s.dropLink(id, c) // do not keep redialling a gateway nobody is draining now
		return res, fmt.Errorf("%w: %s at %s: connecting: %w (it stays marked draining)", ErrUnreachable, id, addr, err)
	}
	body, err := c.Call(ctx, gwlink.MethodDrain, gwlink.Marshal(req))
	if err != nil {
		return res, fmt.Errorf("%w: %s at %s: drain: %w (it stays marked draining)", ErrUnreachable, id, addr, err)
	}
	if err := json.Unmarshal(body, &res.DrainStatus); err != nil {
		return res, fmt.Errorf("%w: %s: decoding its drain status: %w", ErrUnreachable, id, err)
	}
	s.log.Info("gateway draining", "gateway", id, "sessions", res.Sessions, "started", res.Started,
		"batch", req.Batch, "interval", req.Interval, "retry_after", req.RetryAfter)
	return res, nil
}

// Undrain tells gateway id to accept logins again (gwlink.MethodUndrain, when it
// is live and reachable) and clears its draining flag, so ipconf advertises it
// again. Its lease need not be live: the state service decides whether the gateway
// exists, so this works before control has read a table.
func (s *Service) Undrain(ctx context.Context, id string) error {
	if _, err := s.liveGateway(id); err == nil {
		if c, _, err := s.link(id); err == nil {
			cctx, cancel := context.WithTimeout(ctx, s.cfg.DrainTimeout)
			if c.WaitConnected(cctx) == nil {
				if _, err := c.Call(cctx, gwlink.MethodUndrain, nil); err != nil {
					s.log.Warn("undrain: the gateway did not take it; it keeps refusing logins", "gateway", id, "err", err)
				}
			}
			cancel()
		}
	}
	if err := s.setDraining(ctx, id, false); err != nil {
		return err
	}
	s.mu.Lock()
	if t := s.gws[id]; t != nil {
		t.drainSet = false
	}
	s.mu.Unlock()
	s.log.Info("gateway undrained", "gateway", id)
	return nil
}

// liveGateway returns the latest table's entry for id if its lease is live.
func (s *Service) liveGateway(id string) (state.Gateway, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	t := s.gws[id]
	switch {
	case t == nil:
		return state.Gateway{}, fmt.Errorf("%w: %q", ErrUnknownGateway, id)
	case !t.live:
		return state.Gateway{}, fmt.Errorf("%w: %q", ErrNotLive, id)
	case t.g.LinkAddr == "":
		return state.Gateway{}, fmt.Errorf("%w: %q has no link address", ErrNotLive, id)
	}
	return t.g, nil
}

func (s *Service) setDraining(ctx context.Context, id string, on bool) error {
	err := s.store.SetDraining(ctx, id, on)
	switch {
	case errors.Is(err, state.ErrUnknownGateway):
		return fmt.Errorf("%w: %q: %w", ErrUnknownGateway, id, err)
	case err != nil:
		return fmt.Errorf("%w: setting %q draining=%v: %w", ErrState, id, on, err)
	}
	return nil
}

// link returns the link client to gateway id's current LinkAddr, dialling it on
// first use.
//
// Invariant (under s.mu): a client in s.links is for its gateway's LinkAddr in the
// latest table, because Update drops and closes clients whose gateway went away
// or moved.
func (s *Service) link(id string) (*link.Client, string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, "", ErrClosed
	}
	t := s.gws[id]
	if t == nil || !t.live || t.g.LinkAddr == "" {
		return nil, "", fmt.Errorf("%w: %q went away", ErrNotLive, id)
	}
	if l := s.links[id]; l != nil {
		return l.c, l.addr, nil
	}
	addr := t.g.LinkAddr
	c := link.Dial(link.ClientConfig{Addr: addr, Secret: s.cfg.LinkSecret, Name: s.cfg.LinkName,
		Logger: s.log.With("gateway", id)})
	s.links[id] = &gatewayLink{addr: addr, c: c}
	return c, addr, nil
}

// dropLink closes c and forgets it, if it is still gateway id's client.
func (s *Service) dropLink(id string, c *link.Client) {
	s.mu.Lock()
	if l := s.links[id]; l != nil && l.c == c {
		delete(s.links, id)
	}
	s.mu.Unlock()
	c.Close()
}
