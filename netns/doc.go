// Package netns will build test hosts in Linux network namespaces (a bridge, one
// namespace and veth pair per host, addresses from 198.18.0.0/15), run commands
// inside them, and tear everything down completely, also after a killed run.
//
// Nothing lives here yet; see the loadgen/netns issue.
package netns
