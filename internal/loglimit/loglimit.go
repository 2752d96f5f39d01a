// Package loglimit keeps a flood of like events (refused connections, kicks) from
// flooding the log: one line a second gets through, and says how many were held
// back since the last one.
package loglimit

import (
	"sync"
	"time"
)

// Limiter lets one log line through per second. Its zero value is ready to use.
type Limiter struct {
	mu         sync.Mutex
	last       time.Time
	suppressed int
}

// Allow reports whether a line may be logged at now, and how many were held back
// since the last one that was.
func (l *Limiter) Allow(now time.Time) (suppressed int, ok bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.last.IsZero() && now.Sub(l.last) < time.Second {
		l.suppressed++
		return 0, false
	}
	n := l.suppressed
	l.last, l.suppressed = now, 0
	return n, true
}
