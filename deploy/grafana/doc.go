// Package grafana holds Floodgate's Grafana dashboard, floodgate.json (see
// README.md here), and the test that keeps it honest: every metric its queries
// name is one some role of a running stack exposes on its admin /metrics.
package grafana
