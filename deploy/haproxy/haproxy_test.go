package haproxy

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"log/slog"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/floodgate/floodgate/gateway/client"
	"github.com/floodgate/floodgate/gateway/node"
	"github.com/floodgate/floodgate/gateway/proto"
	"github.com/floodgate/floodgate/gateway/stack"
	"github.com/floodgate/floodgate/internal/testnet"
)

func TestRenderListsEveryGatewayAndRefusesWhatItCannotUse(t *testing.T) {
	var b bytes.Buffer
	if err := Render(&b, Config{Bind: "0.0.0.0:443", Cert: "/etc/floodgate/tls.pem", Gateways: []string{"10.0.0.1:7000", "10.0.0.2:7000"}}); err != nil {
		t.Fatal(err)
	}
	for _, line := range []string{"bind 0.0.0.0:443 ssl crt /etc/floodgate/tls.pem", "server gw-1 10.0.0.1:7000 check",
		"server gw-2 10.0.0.2:7000 check", "maxconn 20000", "mode tcp", "balance leastconn"} {
		if !strings.Contains(b.String(), line) {
			t.Errorf("config lacks %q:\n%s", line, b.String())
		}
	}
	if strings.Contains(b.String(), "floodgate_wss") {
		t.Errorf("a config without WSBind has a wss frontend:\n%s", b.String())
	}
	b.Reset()
	if err := Render(&b, Config{Bind: "0.0.0.0:443", Cert: "/etc/floodgate/tls.pem", Gateways: []string{"10.0.0.1:7000"},
		WSBind: "0.0.0.0:8443", WSGateways: []string{"10.0.0.1:7003", "10.0.0.2:7003"}}); err != nil {
		t.Fatal(err)
	}
	for _, line := range []string{"bind 0.0.0.0:8443 ssl crt /etc/floodgate/tls.pem", "server ws-1 10.0.0.1:7003 check",
		"server ws-2 10.0.0.2:7003 check"} {
		if !strings.Contains(b.String(), line) {
			t.Errorf("config lacks %q:\n%s", line, b.String())
		}
	}
	for _, bad := range []Config{{Cert: "c", Gateways: []string{"a:1"}}, {Bind: "b:1", Gateways: []string{"a:1"}}, {Bind: "b:1", Cert: "c"},
		{Bind: "b:1", Cert: "c", Gateways: []string{"a:1"}, WSBind: "b:2"}} {
		if err := Render(&b, bad); err == nil {
			t.Errorf("Render(%+v) accepted", bad)
		}
	}
}

// haproxyBinary finds haproxy, skipping the test without it unless
// FLOODGATE_REQUIRE_HAPROXY=1 (CI installs it), where its absence fails.
func haproxyBinary(t *testing.T) string {
	t.Helper()
	bin, err := exec.LookPath("haproxy")
	if err != nil {
		if os.Getenv("FLOODGATE_REQUIRE_HAPROXY") == "1" {
			t.Fatal("haproxy not found and FLOODGATE_REQUIRE_HAPROXY=1 (install the haproxy package)")
		}
		t.Skip("haproxy not installed; .ci/run installs it (Debian package haproxy)")
	}
	return bin
}

// selfSigned writes a PEM with a fresh certificate for 127.0.0.1 and its key, as
// HAProxy's crt wants it, and returns its path and a pool trusting it.
func selfSigned(t *testing.T) (string, *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "floodgate test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	pem.Encode(&b, &pem.Block{Type: "CERTIFICATE", Bytes: der})
	pem.Encode(&b, &pem.Block{Type: "EC PRIVATE KEY", Bytes: kder})
	path := filepath.Join(t.TempDir(), "tls.pem")
	if err := os.WriteFile(path, b.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return path, pool
}

// The shipped configuration, run by a real HAProxy in front of a real stack: two
// clients log in over TLS, one sends to the other, the PUSH arrives; a client
// speaking the protocol without TLS to the TLS port gets nowhere.
func TestClientsSpeakTheProtocolOverTLSThroughHAProxy(t *testing.T) {
	bin := haproxyBinary(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s, err := stack.Up(ctx, stack.Config{Gateways: 2, Rates: &node.Rates{}, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	certPath, pool := selfSigned(t)
	bind, wsBind := testnet.FreeAddr(t), testnet.FreeAddr(t)
	var gws, wsGws []string
	for _, g := range s.Gateways {
		gws, wsGws = append(gws, g.Addr), append(wsGws, g.WS)
	}
	var cfg bytes.Buffer
	if err := Render(&cfg, Config{Bind: bind, Cert: certPath, Gateways: gws, WSBind: wsBind, WSGateways: wsGws, MaxConn: 1000}); err != nil {
		t.Fatal(err)
	}
	cfgPath := filepath.Join(t.TempDir(), "haproxy.cfg")
	if err := os.WriteFile(cfgPath, cfg.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.CommandContext(ctx, bin, "-c", "-f", cfgPath).CombinedOutput(); err != nil {
		t.Fatalf("haproxy -c: %v\n%s", err, out)
	}
	hp := exec.Command(bin, "-db", "-f", cfgPath)
	var hpLog bytes.Buffer
	hp.Stdout, hp.Stderr = &hpLog, &hpLog
	hp.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := hp.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { hp.Process.Kill(); hp.Wait() }()

	signer, err := proto.NewSigner(s.Keys.Token)
	if err != nil {
		t.Fatal(err)
	}
	// dialTLS logs uid in over TLS to addr: the client protocol as it is, or (ws)
	// inside WebSocket, which makes it wss://.
	dialTLS := func(uid uint64, addr string, ws bool) (*client.Conn, error) {
		deadline := time.Now().Add(10 * time.Second)
		for {
			var c *client.Conn
			nc, err := tls.DialWithDialer(&net.Dialer{Timeout: time.Second}, "tcp", addr,
				&tls.Config{RootCAs: pool, ServerName: "127.0.0.1", MinVersion: tls.VersionTLS12})
			if err == nil {
				nc.SetDeadline(time.Now().Add(10 * time.Second))
				c = client.New(nc)
				if ws {
					var wc net.Conn
					if wc, err = client.WebSocket(nc, addr, "/"); err == nil {
						c = client.New(wc)
					}
				}
			}
			if err == nil {
				if _, err = c.Login(uid, signer.Mint(uid, time.Now().Add(time.Hour))); err == nil {
					return c, nil
				}
			}
			if nc != nil {
				nc.Close()
			}
			if time.Now().After(deadline) {
				return nil, err
			}
			time.Sleep(50 * time.Millisecond) // HAProxy is still binding, or its health checks have not passed yet
		}
	}
	alice, err := dialTLS(1, bind, false)
	if err != nil {
		t.Fatalf("login over TLS: %v\nhaproxy: %s", err, hpLog.String())
	}
	defer alice.Close()
	bob, err := dialTLS(2, wsBind, true)
	if err != nil {
		t.Fatalf("login over wss: %v\nhaproxy: %s", err, hpLog.String())
	}
	defer bob.Close()
	if err := alice.Send(1, 2, 0, []byte("over TLS")); err != nil {
		t.Fatal(err)
	}
	for {
		f, err := bob.Next()
		if err != nil {
			t.Fatalf("waiting for the PUSH: %v", err)
		}
		var p proto.Push
		if f.Type == proto.TypePush && p.Decode(f.Body) == nil {
			if string(p.Payload) != "over TLS" || p.From != 1 {
				t.Fatalf("PUSH %q from %d", p.Payload, p.From)
			}
			break
		}
	}

	// The protocol in clear to the TLS port: HAProxy drops it in its handshake.
	plain, err := client.Dial(bind, 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer plain.Close()
	plain.NetConn().SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := plain.Login(3, signer.Mint(3, time.Now().Add(time.Hour))); err == nil {
		t.Fatal("a login in clear text through the TLS port succeeded")
	}
}
