// Package testnet holds the tests' network helpers.
package testnet

import (
	"net"
	"testing"
)

// FreeAddr returns a loopback address (127.0.0.1:port) whose port was free a
// moment ago: for a process the test starts that must be told its address in
// advance (HAProxy, redis-server). Another process may take the port in between;
// prefer port 0 wherever the listener can report the port it got.
func FreeAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// FreePort is FreeAddr's port.
func FreePort(t testing.TB) int {
	t.Helper()
	addr := FreeAddr(t)
	ap, err := net.ResolveTCPAddr("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	return ap.Port
}
