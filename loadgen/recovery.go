package loadgen

import "time"

// RecoveryBucket is the width of intended send time over which an agent keeps the
// latest first delivery (Result.Recovery).
const RecoveryBucket = 100 * time.Millisecond

// recoveryLog holds, per RecoveryBucket of intended send time from the agent's
// clock zero, the latest first delivery of a message intended then (agent clock,
// ns; 0: none). It grows with the run: ten entries a second.
type recoveryLog []int64

// maxRecoveryBuckets bounds the log (a week of intended time): an intended time
// beyond it is not recorded.
const maxRecoveryBuckets = 7 * 24 * 3600 * int(time.Second/RecoveryBucket)

// noteDelivery records the first delivery, at now (agent clock), of a message
// intended at intendedMono (CLOCK_MONOTONIC).
func (a *Agent) noteDelivery(intendedMono, now int64) {
	t := intendedMono - a.mono0
	if t < 0 {
		return
	}
	i := int(t / int64(RecoveryBucket))
	if i >= maxRecoveryBuckets {
		return
	}
	if i >= len(a.recovery) {
		a.recovery = append(a.recovery, make([]int64, i+1-len(a.recovery))...)
	}
	a.recovery[i] = max(a.recovery[i], now)
}

// Recovery is an agent's record of when messages were first delivered, by when
// they were meant to be sent: LastDeliveryMS[i] is the latest first delivery of a
// message intended in [Start + i·BucketMS, Start + (i+1)·BucketMS), in ms after
// Start, or -1 if none was delivered. Late deliveries (after the message's
// deadline) count; messages never delivered do not.
type Recovery struct {
	Start          time.Time `json:"start"` // wall clock of the agent's clock zero
	BucketMS       int64     `json:"bucket_ms"`
	LastDeliveryMS []int64   `json:"last_delivery_ms"`
}

// recoveryOf summarises the log with the agent's clock zero.
func recoveryOf(log recoveryLog, start time.Time) *Recovery {
	r := &Recovery{Start: start, BucketMS: RecoveryBucket.Milliseconds(), LastDeliveryMS: make([]int64, len(log))}
	for i, t := range log {
		if t == 0 {
			r.LastDeliveryMS[i] = -1
			continue
		}
		r.LastDeliveryMS[i] = t / int64(time.Millisecond)
	}
	return r
}

// LastDeliveryBefore returns the latest first delivery of a message intended
// before t — of the buckets that end at or before t, so a message intended in
// the last bucket's width before t may be left out — and false if there is none.
func (r *Recovery) LastDeliveryBefore(t time.Time) (time.Time, bool) {
	if r == nil || r.BucketMS <= 0 {
		return time.Time{}, false
	}
	n := int(t.Sub(r.Start).Milliseconds() / r.BucketMS)
	latest := int64(-1)
	for i := 0; i < min(n, len(r.LastDeliveryMS)); i++ {
		latest = max(latest, r.LastDeliveryMS[i])
	}
	if latest < 0 {
		return time.Time{}, false
	}
	return r.Start.Add(time.Duration(latest) * time.Millisecond), true
}
