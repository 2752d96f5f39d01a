package main

import (
	"bytes"
	"net"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// helpFlags runs `floodgate <role> -h` and returns each flag's usage line and
// default as the help shows them ("" when it shows none).
func helpFlags(t *testing.T, role string) (usage, def map[string]string) {
	t.Helper()
	var out, errb bytes.Buffer
	if code := dispatch([]string{role, "-h"}, &out, &errb); code != 0 {
		t.Fatalf("%s -h: exit %d", role, code)
	}
	usage, def = map[string]string{}, map[string]string{}
	re := regexp.MustCompile(`(?m)^  -([a-z0-9-]+)(?: [a-z]+)?\n\s+(.*)$`)
	for _, m := range re.FindAllStringSubmatch(errb.String(), -1) {
		name, text := m[1], m[2]
		usage[name] = text
		if d := regexp.MustCompile(`\(default (.*)\)$`).FindStringSubmatch(text); d != nil {
			v := d[1]
			if uq, err := strconv.Unquote(v); err == nil {
				v = uq
			}
			def[name] = v
		}
	}
	if len(usage) == 0 {
		t.Fatalf("%s -h lists no flags:\n%s", role, errb.String())
	}
	return usage, def
}

// Every role's listen defaults are distinct from every other's (so the whole
// stack runs on one machine with defaults), and every flag that dials a role
// defaults to that role's listen address — or, where empty switches a mode off
// (a lone gateway, msg without a router), its help names that address. Before,
// state and ipconf both took 127.0.0.1:7100 and router's -state was control's port.
func TestDefaultAddressesDoNotCollideAndDialDefaultsMatch(t *testing.T) {
	listens := map[string][]string{ // role → its listening flags
		"gateway": {"listen", "admin", "link"},
		"ipconf":  {"listen", "admin"},
		"state":   {"listen", "admin"},
		"router":  {"listen", "admin"},
		"msg":     {"listen", "admin"},
		"control": {"listen", "admin"},
	}
	defs := map[string]map[string]string{}
	usages := map[string]map[string]string{}
	byAddr := map[string]string{}
	for role, flags := range listens {
		usages[role], defs[role] = helpFlags(t, role)
		for _, f := range flags {
			addr := defs[role][f]
			if _, port, err := net.SplitHostPort(addr); err != nil || port == "0" {
				t.Errorf("%s -%s defaults to %q: want a fixed loopback ip:port", role, f, addr)
				continue
			}
			if other, dup := byAddr[addr]; dup {
				t.Errorf("%s -%s and %s both default to %s", role, f, other, addr)
			}
			byAddr[addr] = role + " -" + f
		}
	}
	for _, d := range []struct {
		role, flag, dials string
		off               bool // empty by default: the mode it joins is opt-in
	}{
		{"router", "state", "state", false},
		{"ipconf", "state", "state", false},
		{"control", "state", "state", false},
		{"gateway", "state", "state", true},
		{"gateway", "msg", "msg", true},
		{"msg", "router", "router", true},
	} {
		want := defs[d.dials]["listen"]
		got, shown := defs[d.role][d.flag]
		switch {
		case !d.off && got != want:
			t.Errorf("%s -%s defaults to %q, %s listens on %q", d.role, d.flag, got, d.dials, want)
		case d.off && shown:
			t.Errorf("%s -%s defaults to %q: empty switches its mode off", d.role, d.flag, got)
		case d.off && !strings.Contains(usages[d.role][d.flag], want):
			t.Errorf("%s -%s help %q does not name %s's default address %s", d.role, d.flag, usages[d.role][d.flag], d.dials, want)
		}
	}
}

// `floodgate <role> -h` shows the key flags the role takes (with their
// variables), and only those.
func TestHelpShowsEachRolesKeyFlags(t *testing.T) {
	all := []keyKind{tokenKey, clusterKey, adminToken}
	for role, held := range map[string][]keyKind{
		"gateway": {tokenKey, clusterKey},
		"state":   {clusterKey},
		"msg":     {clusterKey},
		"router":  {clusterKey},
		"ipconf":  {clusterKey},
		"control": {clusterKey, adminToken},
		"token":   {tokenKey},
		"client":  {tokenKey},
		"loadgen": {tokenKey},
	} {
		usage, _ := helpFlags(t, role)
		for _, k := range all {
			text, has := usage[k.flag()]
			want := false
			for _, h := range held {
				want = want || h == k
			}
			switch {
			case has != want:
				t.Errorf("%s -h: -%s shown %v, want %v", role, k.flag(), has, want)
			case has && !strings.Contains(text, "$"+k.env()):
				t.Errorf("%s -h: -%s does not name $%s: %q", role, k.flag(), k.env(), text)
			}
		}
		if _, has := usage["secret-file"]; has {
			t.Errorf("%s -h still shows -secret-file", role)
		}
	}
}
