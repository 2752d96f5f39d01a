//go:build !race

package proto

// raceEnabled reports whether the race detector is on; it makes sync.Pool
// drop items at random, so pooled paths allocate.
const raceEnabled = false
