package scenario

import (
	"testing"
)

// The reader refuses what is not the file's shape, whole, at the value's line
// and column: a YAML feature it does not take, a value of the wrong kind, a
// document that is no document.
func TestReaderRefusesWhatIsNotTheShape(t *testing.T) {
	tests := []struct {
		name  string
		src   string
		edits []string
		want  string
	}{
		{"an alias", minimal, []string{"phases:\n  - {name: only", "x: &d 10s\nphases:\n  - {name: only", "duration: 10s}", "duration: *d}"},
			"m.yaml:6:28: phases[0].duration: aliases are not supported; write the value out"},
		{"a scalar where a mapping goes", minimal, []string{"topology: {gateways: 1, agents: 1}", "topology: big"},
			`m.yaml:2:11: topology: expected a mapping with keys gateways, agents, backend, redis, got "big"`},
		{"a mapping where a list goes", minimal, []string{"phases:\n  - {name: only, duration: 10s}", "phases: {name: only}"},
			"m.yaml:4:9: phases: expected a list, got a mapping"},
		{"a number where text goes", minimal, []string{"name: m", "name: 5"},
			`m.yaml:1:7: name: expected a name: letters, digits and dashes, got "5"`},
		{"a list where text goes", minimal, []string{"name: m", "name: [m]"},
			`m.yaml:1:7: name: expected a name: letters, digits and dashes, got a list`},
		{"text where a boolean goes", valid, []string{"{at: 10s, kill: gw-2}", "{at: 10s, reconnect_storm: \"true\"}"},
			`ok.yaml:26:36: phases[1].faults[0].reconnect_storm: expected true or false, got "true"`},
		{"a number too large", minimal, []string{"gateways: 1", "gateways: 99999999999999999999"},
			`m.yaml:2:22: topology.gateways: expected a whole number, got "99999999999999999999"`},
		{"a fraction of a whole number", minimal, []string{"gateways: 1", "gateways: 1.5"},
			`m.yaml:2:22: topology.gateways: expected a whole number, got "1.5"`},
		{"text where a number goes", valid, []string{"  payload: 100B\n", "  payload: 100B\n  zipf_s: steep\n"},
			`ok.yaml:16:11: traffic.zipf_s: expected a number, got "steep"`},
		{"a mapping where a unit goes", minimal, []string{"duration: 10s", "duration: {s: 10}"},
			"m.yaml:5:28: phases[0].duration: expected a single value, got a mapping"},
		{"a mapping where a gate goes", minimal, []string{"clients: {count: 10}\n", "clients: {count: 10}\ngates: [{push: 1}]\n"},
			`m.yaml:4:9: gates[0]: expected a gate like "push p99 < 100ms", got a mapping`},
		{"a required key of a list's item", minimal, []string{"{name: only, duration: 10s}", "{name: only}"},
			"m.yaml:5:5: phases[0].duration: required key missing"},
		{"a YAML syntax error", minimal, []string{"clients: {count: 10}", "clients: {count: 10"},
			"m.yaml:2: not valid YAML: did not find expected ',' or '}'"},
		{"a scalar document", "just text\n", nil,
			`m.yaml:1:1: expected a mapping with keys name, description, seed, mode, topology, components, clients, traffic, behaviours, phases, gates, validity, autoscale, knee, got "just text"`},
		{"a comment alone", "# nothing here\n", nil, "m.yaml: empty file"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			file := "m.yaml"
			if tc.src == valid {
				file = "ok.yaml"
			}
			src := tc.src
			if tc.edits != nil {
				src = edited(t, tc.src, tc.edits...)
			}
			refusedWith(t, file, src, tc.want)
		})
	}
}

// The reader's errors come sorted by line, and all of them, not just the first.
func TestReaderReportsEveryProblemByLine(t *testing.T) {
	src := edited(t, minimal, "name: m", "name: m\ncolour: blue", "clients: {count: 10}", "clients: {count: ten}",
		"topology: {gateways: 1, agents: 1}", "topology: {gateways: 1}")
	_, err := Parse("m.yaml", []byte(src))
	es, ok := asErrors(err)
	if !ok || len(es) != 3 {
		t.Fatalf("want 3 errors, got %v", err)
	}
	want := []string{
		"m.yaml:2:1: colour: unknown key; expected one of: autoscale, behaviours, clients, components, description, gates, knee, mode, name, phases, seed, topology, traffic, validity",
		"m.yaml:3:11: topology.agents: required key missing",
		`m.yaml:4:18: clients.count: "ten" is not a count: want a whole number, like 5000, 100k or 1.5M`,
	}
	for i, w := range want {
		if es[i].Error() != w {
			t.Errorf("error %d: %s\nwant     %s", i, es[i], w)
		}
	}
}
