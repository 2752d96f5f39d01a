// Package units parses and prints the human quantities used in flags and scenario
// files: sizes ("64KiB"), and (as the harness needs them) rates and fractions.
package units

import (
	"fmt"
	"math"
	"strconv"
	"strings"
)

// Size is a number of bytes. It implements flag.Value, so a flag can be given as
// "65536", "64KiB", "1MiB", "1.5GiB", "64KB" (decimal: 64000) and so on.
type Size int64

var sizeSuffixes = []struct {
	suffix string
	mult   float64
}{
	{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}, {"TiB", 1 << 40},
	{"KB", 1e3}, {"MB", 1e6}, {"GB", 1e9}, {"TB", 1e12},
	{"B", 1},
}

// ParseSize parses a byte size: a non-negative number with an optional unit, binary
// (KiB, MiB, GiB, TiB) or decimal (B, KB, MB, GB, TB). Units are case-sensitive, so
// that "mb" is an error rather than a guess.
func ParseSize(s string) (Size, error) {
	t := strings.TrimSpace(s)
	mult := 1.0
	for _, u := range sizeSuffixes {
		if strings.HasSuffix(t, u.suffix) {
			t, mult = strings.TrimSpace(strings.TrimSuffix(t, u.suffix)), u.mult
			break
		}
	}
	v, err := strconv.ParseFloat(t, 64)
	if err != nil || v < 0 || math.IsInf(v, 0) || math.IsNaN(v) {
		return 0, fmt.Errorf("size %q: want a non-negative number with an optional unit (B, KiB, MiB, GiB, KB, MB, GB)", s)
	}
	b := v * mult
	if b > math.MaxInt64 || b != math.Trunc(b) {
		return 0, fmt.Errorf("size %q: not a whole number of bytes that fits in 63 bits", s)
	}
	return Size(b), nil
}

// String prints the size in the largest binary unit that keeps it whole.
func (s Size) String() string {
	for _, u := range []struct {
		suffix string
		mult   int64
	}{{"TiB", 1 << 40}, {"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}} {
		if s != 0 && int64(s)%u.mult == 0 {
			return strconv.FormatInt(int64(s)/u.mult, 10) + u.suffix
		}
	}
	return strconv.FormatInt(int64(s), 10) + "B"
}

// Set implements flag.Value.
func (s *Size) Set(v string) error {
	p, err := ParseSize(v)
	if err != nil {
		return err
	}
	*s = p
	return nil
}

// Int returns the size as an int.
func (s Size) Int() int { return int(s) }
