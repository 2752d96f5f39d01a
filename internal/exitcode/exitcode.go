// Package exitcode is the one definition of the floodgate binary's exit statuses,
// the contract scripts and CI read (README.md, "Quick start").
package exitcode

const (
	// OK: the command did what it was asked; for a run, every gate passed.
	OK = 0
	// Failure: a usage error (a bad flag or argument: nothing was run), a role
	// that failed to start or to serve, or a harness that could not complete a
	// run. Never a verdict on the system under test.
	Failure = 1
	// GateFailed: the run completed and at least one gate failed (or, for
	// compare, a stat moved outside its band).
	GateFailed = 2
	// Invalid: the run completed but cannot be judged (too few samples, the load
	// generator itself saturated).
	Invalid = 3
)
