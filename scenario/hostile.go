package scenario

import (
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/floodgate/floodgate/internal/units"
)

// Hostile is behaviours.hostile: connections that abuse the client port beside
// the clients, each class as a share of Conns or a count of its own, each with
// the time within which the server must close every one of its connections.
type Hostile struct {
	At Pos
	// Conns is the hostile connections across the fleet that the classes' shares
	// divide (each slot reconnects after the server closes it).
	Conns            units.Count   `yaml:"conns"`
	Slowloris        *HostileClass `yaml:"slowloris"`
	Prelogin         *HostileClass `yaml:"prelogin"`
	Garbage          *HostileClass `yaml:"garbage"`
	Oversized        *HostileClass `yaml:"oversized"`
	SendFlood        *HostileClass `yaml:"send_flood"`
	SyncLoop         *HostileClass `yaml:"sync_loop"`
	MadeUpRecipients *HostileClass `yaml:"made_up_recipients"`
}

// HostileClass is one class's size and close bound: exactly one of Share (of
// hostile.conns) and Conns.
type HostileClass struct {
	At    Pos
	Share units.Fraction `yaml:"share"`
	Conns units.Count    `yaml:"conns"`
	// Bound is how long after its connect the server must have closed each of
	// the class's connections; 0: the class's default (HostileBound).
	Bound units.Duration `yaml:"bound"`
}

// LoginDeadline is the gateway's default login deadline (from accept), which the
// bounds of the classes that never log in are derived from.
const LoginDeadline = 10 * time.Second

// HostileBound is a class's default close bound, derived from the gateway's
// defaults: a connection that never logs in (prelogin, slowloris) is closed at
// the login deadline, 10 s, plus 2 s of slack; one that breaks the framing
// (garbage, a pre-login frame over the 1 KiB limit) at once, within 1 s; one
// that logs in and floods is answered RATE_LIMITED as soon as its token buckets
// run dry and kicked RATE_EXCEEDED when it keeps on, within 5 s of its connect.
func HostileBound(class string) time.Duration {
	switch class {
	case "slowloris", "prelogin":
		return LoginDeadline + 2*time.Second
	case "garbage", "oversized":
		return time.Second
	}
	return 5 * time.Second
}

// HostileSpec is one class resolved: its name, connections across the fleet and
// close bound.
type HostileSpec struct {
	Class string
	Conns int64
	Bound time.Duration
}

// named lists the classes with their keys, in a fixed order.
func (h *Hostile) named() []struct {
	name string
	c    *HostileClass
} {
	return []struct {
		name string
		c    *HostileClass
	}{{"slowloris", h.Slowloris}, {"prelogin", h.Prelogin}, {"garbage", h.Garbage}, {"oversized", h.Oversized},
		{"send_flood", h.SendFlood}, {"sync_loop", h.SyncLoop}, {"made_up_recipients", h.MadeUpRecipients}}
}

// Specs resolves the classes given: connections (a share of Conns, rounded, or
// the class's own count) and bound (the class's default when unset).
func (h *Hostile) Specs() []HostileSpec {
	if h == nil {
		return nil
	}
	var out []HostileSpec
	for _, n := range h.named() {
		if n.c == nil {
			continue
		}
		conns := int64(n.c.Conns)
		if n.c.Share > 0 {
			conns = int64(math.Round(float64(n.c.Share) * float64(h.Conns)))
		}
		bound := n.c.Bound.D()
		if bound == 0 {
			bound = HostileBound(n.name)
		}
		out = append(out, HostileSpec{Class: n.name, Conns: conns, Bound: bound})
	}
	return out
}

// Total is every class's connections across the fleet.
func (h *Hostile) Total() int64 {
	var n int64
	for _, s := range h.Specs() {
		n += s.Conns
	}
	return n
}

// check finds the impossible hostile settings.
func (h *Hostile) check(bad badFunc) {
	var shares float64
	given := 0
	for _, n := range h.named() {
		if n.c == nil {
			continue
		}
		given++
		path := "behaviours.hostile." + n.name
		switch {
		case n.c.Share > 0 && n.c.Conns > 0:
			bad(n.c.At, path, "give share or conns, not both")
		case n.c.Share == 0 && n.c.Conns == 0:
			bad(n.c.At, path, "needs a share (of hostile.conns) or its own conns")
		case n.c.Share > 0 && h.Conns == 0:
			bad(n.c.At, path+".share", "a share needs behaviours.hostile.conns, the connections it divides")
		}
		if n.c.Conns < 0 {
			bad(n.c.At, path+".conns", "must be positive")
		}
		if n.c.Bound < 0 {
			bad(n.c.At, path+".bound", "must be positive")
		}
		shares += float64(n.c.Share)
	}
	if shares > 1+1e-9 {
		bad(h.At, "behaviours.hostile", "the classes' shares add up to %.4g%%, more than 100%%", shares*100)
	}
	if given == 0 {
		bad(h.At, "behaviours.hostile", "no class given; expected some of: %s", strings.Join(hostileClassKeys(), ", "))
	}
}

// hostileClassKeys are the class keys of behaviours.hostile.
func hostileClassKeys() []string {
	var ks []string
	for _, n := range (&Hostile{}).named() {
		ks = append(ks, n.name)
	}
	return ks
}

// isHostileMetric reports whether a gate metric is one of the hostile figures,
// which are measured over the whole run only.
func isHostileMetric(m string) bool { return strings.HasPrefix(m, "hostile_") }

// hostileGateError says why a hostile gate cannot be where it is, or "" (a
// worst-window hostile gate is refused as it is read).
func hostileGateError(g Gate, inPhase bool) string {
	switch {
	case !isHostileMetric(g.Metric):
		return ""
	case inPhase:
		return fmt.Sprintf("gate %q: hostile figures are over the whole run: put it under gates:", g.Text)
	}
	return ""
}
