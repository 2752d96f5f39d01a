package client

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"time"
)

// GatewayList is ipconf's answer to GET /v1/gateways: where to connect, best first,
// and how to behave.
type GatewayList struct {
	Gateways []struct {
		ID     string  `json:"id"`
		Addr   string  `json:"addr"`
		Weight float64 `json:"weight"`
	} `json:"gateways"`
	HeartbeatMS int `json:"heartbeat_ms"`
	Backoff     struct {
		BaseMS int     `json:"base_ms"`
		MaxMS  int     `json:"max_ms"`
		Jitter float64 `json:"jitter"`
	} `json:"backoff"`
	Frozen bool `json:"frozen"`
}

// Discover asks ipconf (base URL, e.g. http://127.0.0.1:7100) for uid's gateway list.
func Discover(ctx context.Context, hc *http.Client, base string, uid uint64) (GatewayList, error) {
	u, err := url.Parse(base)
	if err != nil {
		return GatewayList{}, fmt.Errorf("ipconf url: %w", err)
	}
	u = u.JoinPath("/v1/gateways")
	u.RawQuery = url.Values{"uid": {strconv.FormatUint(uid, 10)}}.Encode()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return GatewayList{}, err
	}
	if hc == nil {
		hc = &http.Client{Timeout: 5 * time.Second}
	}
	resp, err := hc.Do(req)
	if err != nil {
		return GatewayList{}, fmt.Errorf("ipconf: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return GatewayList{}, fmt.Errorf("ipconf: %s", resp.Status)
	}
	var gl GatewayList
	if err := json.NewDecoder(resp.Body).Decode(&gl); err != nil {
		return GatewayList{}, fmt.Errorf("ipconf answer: %w", err)
	}
	if len(gl.Gateways) == 0 {
		return gl, fmt.Errorf("ipconf: no gateway available")
	}
	return gl, nil
}
