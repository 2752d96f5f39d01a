// Package reports will turn a run folder (summary, HdrHistogram logs, scraped metrics)
// into a percentile report, plots, JUnit gates, regression comparisons and capacity plans.
//
// Nothing lives here yet; see the reports issue. Run output goes to reports/out/ (git-ignored).
package reports
