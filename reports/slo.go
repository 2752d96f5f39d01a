package reports

import (
	"github.com/floodgate/floodgate/reports/chart"
)

// defaultSLOMS is the push latency SLO, in milliseconds, that the plots, the
// per-gateway split's "fared worst" threshold and a capacity plan's default
// target use.
const defaultSLOMS = 100

// sloLine is the line of an SLO of ms milliseconds on a millisecond axis.
func sloLine(ms float64) chart.HLine {
	return chart.HLine{Y: ms, Label: "SLO " + fmtMS(ms), Style: chart.SLOStyle()}
}
