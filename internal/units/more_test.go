package units

import (
	"encoding/json"
	"testing"
	"time"
)

func TestUnitsParse(t *testing.T) {
	rate := func(s string) (float64, error) { var r Rate; err := r.UnmarshalText([]byte(s)); return float64(r), err }
	count := func(s string) (float64, error) {
		var c Count
		err := c.UnmarshalText([]byte(s))
		return float64(c), err
	}
	frac := func(s string) (float64, error) {
		var f Fraction
		err := f.UnmarshalText([]byte(s))
		return float64(f), err
	}
	dur := func(s string) (float64, error) {
		var d Duration
		err := d.UnmarshalText([]byte(s))
		return float64(d), err
	}
	tests := []struct {
		name  string
		parse func(string) (float64, error)
		in    string
		want  float64
		err   bool
	}{
		{"rate", rate, "20k/s", 20000, false},
		{"rate", rate, "500/s", 500, false},
		{"rate", rate, "1.5M/s", 1.5e6, false},
		{"rate", rate, "60/m", 1, false},
		{"rate", rate, "3600/h", 1, false},
		{"rate", rate, "20k", 0, true},
		{"rate", rate, "20/d", 0, true},
		{"rate", rate, "-1/s", 0, true},
		{"count", count, "100k", 100000, false},
		{"count", count, "1.5M", 1500000, false},
		{"count", count, "5000", 5000, false},
		{"count", count, "1.5", 0, true},
		{"count", count, "lots", 0, true},
		{"fraction", frac, "5%", 0.05, false},
		{"fraction", frac, "0.25", 0.25, false},
		{"fraction", frac, "150%", 0, true},
		{"fraction", frac, "-0.1", 0, true},
		{"duration", dur, "250ms", float64(250 * time.Millisecond), false},
		{"duration", dur, "5m", float64(5 * time.Minute), false},
		{"duration", dur, "5", 0, true},
		{"duration", dur, "-1s", 0, true},
	}
	for _, tc := range tests {
		got, err := tc.parse(tc.in)
		if (err != nil) != tc.err || (!tc.err && got != tc.want) {
			t.Errorf("%s %q = %v, %v; want %v, error %v", tc.name, tc.in, got, err, tc.want, tc.err)
		}
	}
}

// A Duration is written as its String, in JSON too, and reads back equal.
func TestDurationTextRoundTrips(t *testing.T) {
	for _, d := range []Duration{0, 1, Duration(250 * time.Millisecond), Duration(90 * time.Second), Duration(26 * time.Hour)} {
		b, err := json.Marshal(struct {
			D Duration `json:"d"`
		}{d})
		if want := `{"d":"` + d.String() + `"}`; err != nil || string(b) != want {
			t.Errorf("%v: %s, %v; want %s", d.D(), b, err, want)
			continue
		}
		var back struct {
			D Duration `json:"d"`
		}
		if err := json.Unmarshal(b, &back); err != nil || back.D != d {
			t.Errorf("%s read back as %v, %v", b, back.D, err)
		}
	}
}
