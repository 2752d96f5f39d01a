package state

// SetLeaseCheckedHook makes f run inside every registration of r between its lease
// check and its write, so tests can stage the cross-slot race.
func SetLeaseCheckedHook(r *Redis, f func()) { r.leaseChecked = f }
