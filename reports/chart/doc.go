// Package chart draws the charts of a report in one house style, on gonum/plot:
// panels with titled, labelled axes and a grid (New, Empty), stacked into one PNG
// (PNG); series that may have gaps (AddLines); tick markers for milliseconds on
// a log axis, percentiles, seconds and plain numbers; labelled reference lines
// (HLine, VLine), fault windows and instants (FaultShading) and phase starts
// (PhaseMarks) along a time axis.
//
// It knows nothing of runs, metrics or scenarios: callers hand it numbers and
// labels (package reports turns a run into them). Every colour has one meaning
// across all charts: SLOColor is kept for limits, and Palette never returns it.
package chart
