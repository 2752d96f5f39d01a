package reports

import (
	"errors"
	"math"
)

// Fit is an ordinary least-squares line y = Intercept + Slope·x over N points.
// R2 is the coefficient of determination (1: the points lie on the line); with
// two points it is 1 by construction and says nothing. XMax is the largest x
// measured: beyond it the line is an extrapolation.
type Fit struct {
	Slope     float64 `json:"slope"`
	Intercept float64 `json:"intercept"`
	R2        float64 `json:"r2"`
	N         int     `json:"n"`
	XMin      float64 `json:"x_min"`
	XMax      float64 `json:"x_max"`
}

// errFlat is returned when x does not vary: no line can be fitted.
var errFlat = errors.New("the load did not vary across the steps")

// fitLine fits y against x by least squares.
func fitLine(xs, ys []float64) (Fit, error) {
	n := len(xs)
	if n < 2 || len(ys) != n {
		return Fit{N: n}, errors.New("fewer than two steps")
	}
	var mx, my float64
	f := Fit{N: n, XMin: xs[0], XMax: xs[0]}
	for i := range xs {
		mx += xs[i]
		my += ys[i]
		f.XMin, f.XMax = math.Min(f.XMin, xs[i]), math.Max(f.XMax, xs[i])
	}
	mx /= float64(n)
	my /= float64(n)
	var sxx, sxy, syy float64
	for i := range xs {
		dx, dy := xs[i]-mx, ys[i]-my
		sxx += dx * dx
		sxy += dx * dy
		syy += dy * dy
	}
	if sxx == 0 || (f.XMax-f.XMin) <= 1e-9*math.Max(math.Abs(f.XMax), 1) {
		return f, errFlat
	}
	f.Slope = sxy / sxx
	f.Intercept = my - f.Slope*mx
	if syy == 0 {
		f.R2 = 1 // y constant and the line flat through it: a perfect (if dull) fit
		return f, nil
	}
	var ssr float64
	for i := range xs {
		r := ys[i] - (f.Intercept + f.Slope*xs[i])
		ssr += r * r
	}
	f.R2 = 1 - ssr/syy
	return f, nil
}

// at evaluates the line.
func (f Fit) at(x float64) float64 { return f.Intercept + f.Slope*x }
