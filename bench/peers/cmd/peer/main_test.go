package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/floodgate/floodgate/gateway/admin"
	"github.com/floodgate/floodgate/internal/testbin"
	"github.com/floodgate/floodgate/internal/testnet"
)

// childEnv makes the test binary act as the peer command (see TestMain), so
// the tests exercise the real process: flags, READY line, signals, exit code.
const childEnv = "PEER_TEST_RUN_MAIN"

func TestMain(m *testing.M) {
	if os.Getenv(childEnv) == "1" {
		main()
		os.Exit(0)
	}
	os.Exit(m.Run())
}

func TestEcho(t *testing.T) {
	for _, server := range []string{"netstd", "gnet", "nbio"} {
		t.Run(server, func(t *testing.T) {
			t.Parallel()
			admin := testnet.FreeAddr(t)
			addr := startPeer(t, "-server", server, "-addr", "127.0.0.1:0", "-admin", admin, "-loops", "2")

			var wg sync.WaitGroup
			for i := range 4 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					if err := echoClient(addr, i); err != nil {
						t.Errorf("client %d: %v", i, err)
					}
				}()
			}
			wg.Wait()
			checkAdmin(t, admin)
		})
	}
}

func TestBadFlags(t *testing.T) {
	for _, args := range [][]string{
		{},
		{"-server", "nginx"},
		{"-server", "gnet", "-loops", "0"},
		{"-server", "nbio", "extra"},
	} {
		if _, err := parseFlags(args); err == nil {
			t.Errorf("parseFlags(%q) succeeded", args)
		}
	}
}

// startPeer runs the peer command with args, waits for its READY line and
// returns the echo address. At cleanup it sends SIGTERM and requires a clean
// exit; the process is killed if anything goes wrong.
func startPeer(t *testing.T, args ...string) string {
	t.Helper()
	p := testbin.StartProgram(t, os.Args[0], []string{childEnv + "=1"}, args...)
	t.Cleanup(func() { p.Stop(t) })
	if p.Ready[1] != args[1] {
		t.Fatalf("readiness line %q: want server %s", p.Ready, args[1])
	}
	return p.Addr()
}

// echoClient sends small, 1 KiB and 64 KiB messages and checks that each
// comes back unchanged.
func echoClient(addr string, id int) error {
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return err
	}
	defer c.Close()
	if err := c.SetDeadline(time.Now().Add(10 * time.Second)); err != nil {
		return err
	}
	for _, size := range []int{1, 13, 1 << 10, 64 << 10, 1 << 10} {
		msg := make([]byte, size)
		for i := range msg {
			msg[i] = byte(i*7 + id)
		}
		// Write concurrently with reading: a 64 KiB message need not fit in
		// the socket buffers while nobody reads the echo.
		werr := make(chan error, 1)
		go func() {
			_, err := c.Write(msg)
			werr <- err
		}()
		got := make([]byte, size)
		_, rerr := io.ReadFull(c, got)
		if err := errors.Join(<-werr, rerr); err != nil {
			return fmt.Errorf("%d-byte message: %w", size, err)
		}
		if !bytes.Equal(got, msg) {
			return fmt.Errorf("%d-byte message came back altered", size)
		}
	}
	return nil
}

// checkAdmin checks that the peer serves the memstats endpoint on admin.
func checkAdmin(t *testing.T, addr string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/debug/memstats", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var m admin.MemStats
	if err := json.NewDecoder(resp.Body).Decode(&m); err != nil {
		t.Fatal(err)
	}
	if m.Goroutines == 0 || m.HeapInuse == 0 {
		t.Errorf("implausible memstats %+v", m)
	}
}
