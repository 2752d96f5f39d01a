package reports

import (
	"maps"
	"regexp"
	"strings"
	"testing"
)

// A sample key splits into its name and labels, with escaped quotes,
// backslashes and newlines in values unescaped and spaces after commas allowed.
func TestParseKey(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		key    string
		name   string
		labels map[string]string
	}{
		{"floodgate_up", "floodgate_up", nil},
		{`m{a="x"}`, "m", map[string]string{"a": "x"}},
		{`m{a="x",b="y"}`, "m", map[string]string{"a": "x", "b": "y"}},
		{`m{a="x", b="y"}`, "m", map[string]string{"a": "x", "b": "y"}},
		{`m{a=""}`, "m", map[string]string{"a": ""}},
		{`m{why="say \"hi\""}`, "m", map[string]string{"why": `say "hi"`}},
		{`m{path="c:\\temp",line="a\nb"}`, "m", map[string]string{"path": `c:\temp`, "line": "a\nb"}},
		{`m{a="x,y",b="{}"}`, "m", map[string]string{"a": "x,y", "b": "{}"}},
		{`m{}`, "m", map[string]string{}},
		{`m{a}`, "m", map[string]string{}},
		{`m{a="unterminated`, "m", map[string]string{"a": "unterminated"}},
	} {
		name, labels := parseKey(tc.key)
		if name != tc.name || !maps.Equal(labels, tc.labels) || (labels == nil) != (tc.labels == nil) {
			t.Errorf("parseKey(%q) = %q %q, want %q %q", tc.key, name, labels, tc.name, tc.labels)
		}
	}
}

// A selector sums the samples of its metric whose labels match its own, other
// labels free; a metric whose name merely starts with the selector's is not it.
func TestSelectorSumsMatchingSamples(t *testing.T) {
	t.Parallel()
	m := map[string]float64{
		`floodgate_reactor_closed_total{gateway="gw-1",reason="peer"}`:      3,
		`floodgate_reactor_closed_total{gateway="gw-1",reason="heartbeat"}`: 4,
		`floodgate_reactor_closed_total_extra{gateway="gw-1"}`:              100,
		`floodgate_reactor_closed_totals`:                                   1000,
		`floodgate_reactor_rejected_total{gateway="gw-1",reason="busy"}`:    5,
	}
	for _, tc := range []struct {
		sel  selector
		want float64
		ok   bool
	}{
		{selector{name: "floodgate_reactor_closed_total"}, 7, true},
		{selector{"floodgate_reactor_closed_total", map[string]string{"reason": "peer"}}, 3, true},
		{selector{"floodgate_reactor_closed_total", map[string]string{"reason": "idle"}}, 0, false},
		{selector{"floodgate_reactor_rejected_total", map[string]string{"reason": "busy", "gateway": "gw-1"}}, 5, true},
		{selector{name: "floodgate_reactor_accepted_total"}, 0, false},
	} {
		if v, ok := tc.sel.value(m); v != tc.want || ok != tc.ok {
			t.Errorf("%+v: %g %v, want %g %v", tc.sel, v, ok, tc.want, tc.ok)
		}
	}
}

// labelName is what a Prometheus label or metric name may be.
var labelName = regexp.MustCompile(`^[a-zA-Z_][a-zA-Z0-9_]*$`)

// escapeLabel escapes a label value as the Prometheus text format does.
func escapeLabel(v string) string {
	return strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`).Replace(v)
}

// Any key parses without a panic, to a name without a brace; a key written from
// a name and a label reads back as them, whatever the value holds.
func FuzzParseKey(f *testing.F) {
	for _, seed := range [][3]string{{"m", "a", "x"}, {"floodgate_reactor_closed_total", "reason", `say "hi"`},
		{"m", "path", `c:\temp`}, {"m", "l", "a\nb"}, {"m", "b", "x,y={}"}, {"m", "e", ""}, {"m", "tail", `\`}} {
		f.Add(seed[0], seed[1], seed[2])
	}
	f.Fuzz(func(t *testing.T, name, label, value string) {
		if n, _ := parseKey(name + label + value); strings.Contains(n, "{") {
			t.Fatalf("name %q holds a brace", n)
		}
		if !labelName.MatchString(name) || !labelName.MatchString(label) {
			return
		}
		key := name + `{` + label + `="` + escapeLabel(value) + `"}`
		gotName, labels := parseKey(key)
		if gotName != name || len(labels) != 1 || labels[label] != value {
			t.Fatalf("parseKey(%q) = %q %q, want %q {%s: %q}", key, gotName, labels, name, label, value)
		}
	})
}
