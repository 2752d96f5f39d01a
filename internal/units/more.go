package units

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// Duration is a time.Duration written as "250ms", "5m", "1h30m".
type Duration time.Duration

// UnmarshalText implements encoding.TextUnmarshaler.
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(strings.TrimSpace(string(b)))
	if err != nil || v < 0 {
		return fmt.Errorf("%q is not a duration: want a non-negative number with a unit, like 250ms, 30s or 5m", b)
	}
	*d = Duration(v)
	return nil
}

// MarshalText implements encoding.TextMarshaler: JSON and YAML write a
// Duration as its String, which UnmarshalText reads back.
func (d Duration) MarshalText() ([]byte, error) { return []byte(time.Duration(d).String()), nil }

// D returns the time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

func (d Duration) String() string { return time.Duration(d).String() }

// metric scales a number with an optional k, M or G suffix.
func metric(s string) (float64, error) {
	mult := 1.0
	switch {
	case strings.HasSuffix(s, "k"):
		mult, s = 1e3, strings.TrimSuffix(s, "k")
	case strings.HasSuffix(s, "M"):
		mult, s = 1e6, strings.TrimSuffix(s, "M")
	case strings.HasSuffix(s, "G"):
		mult, s = 1e9, strings.TrimSuffix(s, "G")
	}
	v, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
	if err != nil || math.IsNaN(v) || math.IsInf(v, 0) || v < 0 {
		return 0, fmt.Errorf("bad number")
	}
	return v * mult, nil
}

// Rate is events per second, written "20k/s", "500/s", "1.5M/s", "60/m" or "3600/h".
type Rate float64

// UnmarshalText implements encoding.TextUnmarshaler.
func (r *Rate) UnmarshalText(b []byte) error {
	s := strings.TrimSpace(string(b))
	num, unit, ok := strings.Cut(s, "/")
	per := map[string]float64{"s": 1, "m": 60, "h": 3600}[unit]
	v, err := metric(num)
	if !ok || per == 0 || err != nil {
		return fmt.Errorf("%q is not a rate: want a count per unit of time, like 20k/s, 500/s or 60/m", s)
	}
	*r = Rate(v / per)
	return nil
}

func (r Rate) String() string { return strconv.FormatFloat(float64(r), 'g', -1, 64) + "/s" }

// Count is a whole number written "100000", "100k" or "1.5M".
type Count int64

// UnmarshalText implements encoding.TextUnmarshaler.
func (c *Count) UnmarshalText(b []byte) error {
	v, err := metric(strings.TrimSpace(string(b)))
	if err != nil || v != math.Trunc(v) || v > math.MaxInt64/2 {
		return fmt.Errorf("%q is not a count: want a whole number, like 5000, 100k or 1.5M", b)
	}
	*c = Count(v)
	return nil
}

// Fraction is a share in [0, 1], written "5%" or "0.05".
type Fraction float64

// UnmarshalText implements encoding.TextUnmarshaler.
func (f *Fraction) UnmarshalText(b []byte) error {
	s := strings.TrimSpace(string(b))
	pct := strings.HasSuffix(s, "%")
	v, err := strconv.ParseFloat(strings.TrimSuffix(s, "%"), 64)
	if pct {
		v /= 100
	}
	if err != nil || v < 0 || v > 1 || math.IsNaN(v) {
		return fmt.Errorf("%q is not a fraction: want a share between 0 and 1, like 5%% or 0.05", s)
	}
	*f = Fraction(v)
	return nil
}

// UnmarshalText lets a Size be read from text (scenario files).
func (s *Size) UnmarshalText(b []byte) error { return s.Set(string(b)) }
