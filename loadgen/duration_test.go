package loadgen

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

// legacyDuration is the JSON duration type plans had before they took
// units.Duration, kept here to hold the new one to its wire form.
type legacyDuration time.Duration

func (d legacyDuration) MarshalJSON() ([]byte, error) { return json.Marshal(time.Duration(d).String()) }

func (d *legacyDuration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("duration: want a string like \"250ms\": %w", err)
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return err
	}
	*d = legacyDuration(v)
	return nil
}

// A plan's durations are written exactly as before (every plan a run folder
// holds reads the same), and every duration a valid plan held before reads the
// same. The differences are in what no valid plan holds: a negative duration is
// refused where it was read (and left to break the run), spaces around the
// number are accepted, and a JSON null leaves the zero value (the default).
func TestPlanDurationsKeepTheirJSONForm(t *testing.T) {
	for _, v := range []time.Duration{0, time.Nanosecond, 250 * time.Millisecond, 90 * time.Second, 26 * time.Hour, -time.Second} {
		got, err := json.Marshal(Duration(v))
		if err != nil {
			t.Fatal(err)
		}
		want, _ := json.Marshal(legacyDuration(v))
		if string(got) != string(want) {
			t.Errorf("%v encodes as %s, was %s", v, got, want)
		}
	}
	for _, tc := range []struct {
		in              string
		want            time.Duration
		ok, legacyOK    bool
		legacyMayDiffer bool
	}{
		{`"250ms"`, 250 * time.Millisecond, true, true, false},
		{`"1m30s"`, 90 * time.Second, true, true, false},
		{`"1.5h"`, 90 * time.Minute, true, true, false},
		{`"0s"`, 0, true, true, false},
		{`"5"`, 0, false, false, false},
		{`5000000000`, 0, false, false, false},
		{`""`, 0, false, false, false},
		{`"soon"`, 0, false, false, false},
		{`"-1s"`, 0, false, true, true},
		{`" 5s "`, 5 * time.Second, true, false, true},
		{`null`, 0, true, false, true},
	} {
		var d Duration
		err := json.Unmarshal([]byte(tc.in), &d)
		if (err == nil) != tc.ok || (err == nil && d.D() != tc.want) {
			t.Errorf("%s: %v, %v; want %v (ok %v)", tc.in, d, err, tc.want, tc.ok)
		}
		var l legacyDuration
		lerr := json.Unmarshal([]byte(tc.in), &l)
		if (lerr == nil) != tc.legacyOK {
			t.Errorf("%s: the legacy type said %v, the table %v", tc.in, lerr, tc.legacyOK)
		}
		if !tc.legacyMayDiffer && (err == nil) == (lerr == nil) && err == nil && d.D() != time.Duration(l) {
			t.Errorf("%s: %v, was %v", tc.in, d.D(), time.Duration(l))
		}
	}
}

// A plan written (as the scenario runner and `floodgate loadgen -out` write
// them) reads back equal, every duration field included.
func TestPlanRoundTripsThroughItsFile(t *testing.T) {
	users := 40
	p := Plan{Seed: 9, Gateways: []string{"127.0.0.1:1"}, Secret: testSecret, Users: 80, ConnectRate: 100,
		Heartbeat: Duration(2 * time.Second), PongTimeout: Duration(1500 * time.Millisecond),
		Traffic:  Traffic{Rate: 50, PayloadBytes: 64},
		Deadline: Duration(7 * time.Second), Interval: Duration(500 * time.Millisecond),
		Phases: []Phase{{Name: "warm", Duration: Duration(time.Minute), Users: &users},
			{Name: "steady", Duration: Duration(90 * time.Second), Rate: f64(80)}},
		Hostile: []HostileClass{{Class: HostileClassNames()[0], Conns: 2, Bound: Duration(3 * time.Second)}},
	}
	if err := p.Validate(); err != nil {
		t.Fatal(err)
	}
	b, err := json.MarshalIndent(p, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "plan.json")
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	got, err := LoadPlan(path)
	if err != nil {
		t.Fatalf("%v\n%s", err, b)
	}
	if !reflect.DeepEqual(got, p) {
		t.Fatalf("read back\n%+v\nwrote\n%+v", got, p)
	}
	for _, want := range []string{`"heartbeat": "2s"`, `"pong_timeout": "1.5s"`, `"deadline": "7s"`, `"interval": "500ms"`, `"duration": "1m30s"`, `"bound": "3s"`} {
		if !strings.Contains(string(b), want) {
			t.Errorf("the plan file lacks %s:\n%s", want, b)
		}
	}
}
