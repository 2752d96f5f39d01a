// Package loadgen will hold the load-generating agents: epoll-based simulated users
// that log in, heartbeat, send at an open-model arrival rate with the intended send
// time in the payload, and record coordinated-omission-correct push latency in
// HdrHistogram interval logs.
//
// Nothing lives here yet; see the loadgen/netns issue.
package loadgen
