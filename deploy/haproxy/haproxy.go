// Package haproxy renders the HAProxy configuration that terminates TLS in front
// of Floodgate's gateways (haproxy.cfg.tmpl).
//
// Why in front and not in the gateway: Go's crypto/tls works on a net.Conn, a
// goroutine and its stack per connection, which is what the reactor exists to avoid
// (its idle connection costs a few KiB; a goroutine with a TLS connection's buffers
// costs tens). HAProxy terminates TLS in an event loop of its own and relays the
// client protocol unchanged. What it costs: every client holds a socket on each
// side of HAProxy, and the gateway sees HAProxy's address, not the client's, so a
// gateway behind it should not cap connections per address (-max-conns-per-ip).
package haproxy

import (
	_ "embed"
	"errors"
	"fmt"
	"io"
	"text/template"
)

//go:embed haproxy.cfg.tmpl
var source string

// Config fills the template.
type Config struct {
	Bind     string   // address clients connect to with TLS (host:port)
	Cert     string   // PEM file: certificate chain, then the private key
	Gateways []string // the gateways' client addresses
	// WSBind, if set, is where browsers connect with wss://, relayed to
	// WSGateways, the gateways' WebSocket addresses.
	WSBind     string
	WSGateways []string
	MaxConn    int // HAProxy's maxconn (default 20000)
}

// Render writes the HAProxy configuration for cfg.
func Render(w io.Writer, cfg Config) error {
	if cfg.Bind == "" || cfg.Cert == "" || len(cfg.Gateways) == 0 {
		return errors.New("haproxy: a bind address, a certificate and at least one gateway are needed")
	}
	if cfg.WSBind != "" && len(cfg.WSGateways) == 0 {
		return errors.New("haproxy: a wss bind address needs the gateways' WebSocket addresses")
	}
	if cfg.MaxConn <= 0 {
		cfg.MaxConn = 20000
	}
	t, err := template.New("haproxy.cfg").Funcs(template.FuncMap{"inc": func(i int) int { return i + 1 }}).Parse(source)
	if err != nil {
		return fmt.Errorf("haproxy: %w", err)
	}
	if err := t.Execute(w, cfg); err != nil {
		return fmt.Errorf("haproxy: %w", err)
	}
	return nil
}
