package reports

import (
	"fmt"
	"maps"
	"math"
	"slices"
	"strconv"
)

// fmtUS prints a duration given in microseconds with a readable unit.
func fmtUS(us float64) string {
	switch a := math.Abs(us); {
	case a < 1000:
		return trim(us) + " µs"
	case a < 1e6:
		return trim(us/1000) + " ms"
	default:
		return trim(us/1e6) + " s"
	}
}

// fmtMS prints milliseconds.
func fmtMS(ms float64) string { return fmtUS(ms * 1000) }

// trim prints v to about 3 significant digits.
func trim(v float64) string {
	switch a := math.Abs(v); {
	case a >= 100:
		return strconv.FormatFloat(v, 'f', 0, 64)
	case a >= 10:
		return strconv.FormatFloat(v, 'f', 1, 64)
	default:
		return strconv.FormatFloat(v, 'f', 2, 64)
	}
}

// fmtBytes prints a byte count in binary units.
func fmtBytes(b float64) string {
	units := []string{"B", "KiB", "MiB", "GiB", "TiB"}
	i := 0
	for math.Abs(b) >= 1024 && i < len(units)-1 {
		b /= 1024
		i++
	}
	if i == 0 {
		return strconv.FormatFloat(b, 'f', 0, 64) + " B"
	}
	return trim(b) + " " + units[i]
}

// fmtCount prints a count with thousands separators.
func fmtCount(n float64) string {
	if n != math.Trunc(n) || math.Abs(n) >= 1e15 {
		return trim(n)
	}
	s := strconv.FormatInt(int64(math.Abs(n)), 10)
	out := make([]byte, 0, len(s)+len(s)/3)
	for i := range len(s) {
		if i > 0 && (len(s)-i)%3 == 0 {
			out = append(out, ',')
		}
		out = append(out, s[i])
	}
	if n < 0 {
		return "-" + string(out)
	}
	return string(out)
}

// fmtValue prints a gate value in its unit.
func fmtValue(v float64, unit string) string {
	switch unit {
	case "us":
		return fmtUS(v)
	case "bytes":
		return fmtBytes(v)
	case "fraction":
		return fmtPctShare(v)
	}
	return fmtCount(v)
}

// fmtSecs prints a time offset in seconds.
func fmtSecs(s float64) string { return fmt.Sprintf("%.1f s", s) }

// sortedKeys returns a map's keys in order.
func sortedKeys[V any](m map[string]V) []string {
	return slices.Sorted(maps.Keys(m))
}
