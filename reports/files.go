// Package reports turns a run folder into its verdict and its report: summary.json
// (the contract CI and tools read), report.md, index.html with plots, junit.xml,
// merged HdrHistogram logs; and compares runs against baselines and plans capacity.
// Everything is computed from the raw files the runner leaves (package runfolder),
// so `floodgate report RUN_DIR` can regenerate it all after a format change without
// a rerun.
//
// Data flows one way: scenario → sim (orchestration, raw facts) → reports. The
// charts are drawn by package reports/chart, which knows nothing of runs.
package reports

// Files this package derives from a run folder (runfolder names the raw ones).
const (
	FileSummary = "summary.json" // Summary: the contract tools read
	FileReport  = "report.md"
	FileHTML    = "index.html"
	FileJUnit   = "junit.xml"
)
