package main

import (
	"bytes"
	"errors"
	"io"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/floodgate/floodgate/gateway/client"
	"github.com/floodgate/floodgate/gateway/proto"
	"github.com/floodgate/floodgate/internal/exitcode"
	"github.com/floodgate/floodgate/internal/testbin"
)

func TestUsageAndUnknownCommand(t *testing.T) {
	var out, errb bytes.Buffer
	if code := dispatch([]string{"nope"}, &out, &errb); code != exitcode.Failure || !strings.Contains(errb.String(), `unknown command "nope"`) {
		t.Fatalf("code %d, stderr %q", code, errb.String())
	}
	errb.Reset()
	if code := dispatch([]string{"token", "-uid", "0"}, &out, &errb); code != exitcode.Failure {
		t.Fatalf("token -uid 0: code %d", code)
	}
}

func TestTokenVerifiesUnderTheTokenKey(t *testing.T) {
	t.Setenv("FLOODGATE_TOKEN_KEY", testTokenKey)
	var out, errb bytes.Buffer
	if code := dispatch([]string{"token", "-uid", "77", "-ttl", "1h"}, &out, &errb); code != 0 {
		t.Fatalf("code %d: %s", code, errb.String())
	}
	s, _ := proto.NewSigner([]byte(testTokenKey))
	if err := s.Verify(bytes.TrimSpace(out.Bytes()), 77, time.Now()); err != nil {
		t.Fatalf("minted token does not verify: %v (%q)", err, out.String())
	}
}

// The gateway command end to end: READY line, login with a minted token, metrics,
// the file-limit log line, and SIGTERM → KICK SHUTDOWN → exit 0 within the bound.
func TestGatewayCommandServesAndStopsOnSIGTERM(t *testing.T) {
	bin := testbin.Floodgate(t)
	env := []string{"FLOODGATE_TOKEN_KEY=" + testTokenKey} // a lone gateway holds the token key only
	gw := testbin.Start(t, env, "gateway", "-listen", "127.0.0.1:0", "-admin", "127.0.0.1:0", "-shutdown-timeout", "2s")
	if len(gw.Ready) != 4 || gw.Ready[1] != "gateway" {
		t.Fatalf("READY line %q", gw.Ready)
	}
	addr, adminAddr := gw.Addr(), gw.Admin()

	tokCmd := exec.Command(bin, "token", "-uid", "5", "-ttl", "1m")
	tokCmd.Env = append(os.Environ(), env...)
	tok, err := tokCmd.Output()
	if err != nil {
		t.Fatal(err)
	}
	c, err := client.Dial(addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.NetConn().SetDeadline(time.Now().Add(20 * time.Second))
	if _, err := c.Login(5, bytes.TrimSpace(tok)); err != nil {
		t.Fatalf("login: %v", err)
	}

	resp, err := http.Get("http://" + adminAddr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{`floodgate_reactor_connections{gateway="gw-1"} 1`, `floodgate_gateway_sessions{gateway="gw-1"} 1`, `floodgate_gateway_logins_total{gateway="gw-1",result="ok"} 1`} {
		if !strings.Contains(string(body), want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
	if !strings.Contains(gw.Stderr(), "nofile_hard=") {
		t.Errorf("the effective RLIMIT_NOFILE is not logged:\n%s", gw.Stderr())
	}

	start := time.Now()
	gw.Signal(syscall.SIGTERM)
	var kick *client.KickError
	for {
		fr, err := c.Next()
		if err != nil {
			t.Fatalf("before the KICK: %v", err)
		}
		if errors.As(client.AsError(fr), &kick) {
			break
		}
	}
	if kick.Reason != proto.ReasonShutdown {
		t.Fatalf("kick %v, want SHUTDOWN", kick)
	}
	c.Close()
	gw.Stop(t)
	t.Logf("SIGTERM to exit: %v", time.Since(start))
}
