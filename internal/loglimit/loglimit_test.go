package loglimit

import (
	"testing"
	"time"
)

func TestLimiterLetsOneLinePerSecond(t *testing.T) {
	var l Limiter
	t0 := time.Unix(1000, 0)
	steps := []struct {
		at         time.Duration
		ok         bool
		suppressed int
	}{
		{0, true, 0},
		{10 * time.Millisecond, false, 0},
		{900 * time.Millisecond, false, 0},
		{time.Second, true, 2},
		{1500 * time.Millisecond, false, 0},
		{3 * time.Second, true, 1},
	}
	for i, st := range steps {
		n, ok := l.Allow(t0.Add(st.at))
		if ok != st.ok || n != st.suppressed {
			t.Fatalf("step %d: Allow = %d, %v; want %d, %v", i, n, ok, st.suppressed, st.ok)
		}
	}
}
