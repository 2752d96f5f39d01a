package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/floodgate/floodgate/gateway/proto"
	"github.com/floodgate/floodgate/gateway/stack"
	"github.com/floodgate/floodgate/gateway/webchat"
	"github.com/floodgate/floodgate/internal/keys"
)

// runUp is `floodgate up`: the whole stack in this process on loopback, for trying
// it by hand. No root, no namespaces.
func runUp(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("up", flag.ContinueOnError)
	host := fs.String("host", "127.0.0.1", "address every component binds (ports are picked)")
	gateways := fs.Int("gateways", 2, "gateways to run")
	log, done, code := parseLogged(fs, args, stderr)
	if done {
		return code
	}
	// Each key comes from its variable when set, else is generated for this run.
	var ks stack.Keys
	generated := map[keyKind]bool{}
	for k, dst := range map[keyKind]*[]byte{tokenKey: &ks.Token, clusterKey: &ks.Cluster, adminToken: &ks.Admin} {
		if v := os.Getenv(k.env()); v != "" {
			*dst = []byte(v)
		} else {
			*dst, generated[k] = keys.Generate(), true
		}
	}
	if os.Getenv(envOldSecret) != "" {
		fmt.Fprintf(stderr, "up: ignoring %s: it was split into %s and %s (SECURITY.md)\n", envOldSecret, tokenKey.env(), clusterKey.env())
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	sctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	st, err := stack.Up(sctx, stack.Config{Host: *host, Keys: ks, Gateways: *gateways, Logger: log,
		Pages: map[string][]byte{"/chat": webchat.Page()}})
	cancel()
	if err != nil {
		fmt.Fprintln(stderr, "up:", err)
		return 1
	}
	signer, _ := proto.NewSigner(ks.Token)
	w := func(f string, a ...any) { fmt.Fprintf(stdout, f, a...) }
	w("Floodgate is up (one process, loopback).\n\n")
	w("  ipconf    %s/v1/gateways?uid=1\n", st.Ipconf)
	w("  control   %s/v1/alerts   %s/v1/recommendation   POST %s/v1/drain (admin token)\n", st.Control, st.Control, st.Control)
	w("  metrics   %s/metrics   (every role's series, each gateway's labelled gateway=<id>; admin: also pprof, /debug/memstats)\n", st.Admin)
	w("  state     %s   msg %s   router %s   (internal links)\n", st.State, st.Msg, st.Router)
	for _, g := range st.Gateways {
		w("  %-8s  %s   WebSocket %s   (link %s)\n", g.ID, g.Addr, g.WS, g.Link)
	}
	if generated[tokenKey] || generated[adminToken] {
		w("\nKeys generated for this run; export them for the commands below (SECURITY.md):\n")
		if generated[tokenKey] {
			w("  export %s=%s   # signs login tokens: floodgate client, token, loadgen\n", tokenKey.env(), ks.Token)
		}
		if generated[adminToken] {
			w("  export %s=%s   # control's drain and undrain\n", adminToken.env(), ks.Admin)
		}
	}
	w("\nTry it, in two more terminals:\n")
	w("  floodgate client -ipconf %s -uid 1\n", st.Ipconf)
	w("  floodgate client -ipconf %s -uid 2\n", st.Ipconf)
	w("then type \"2 hello\" in the first to send uid 2 a message.\n")
	w("Or in a browser, one tab per user (the chat page on a gateway's WebSocket port; tokens valid 24 h):\n")
	for _, uid := range []uint64{1, 2} {
		w("  http://%s/chat?uid=%d&token=%s\n", st.Gateways[0].WS, uid, signer.Mint(uid, time.Now().Add(24*time.Hour)))
	}
	w("Tokens for other clients: floodgate token -uid N   (e.g. uid 1: %s)\n", signer.Mint(1, time.Now().Add(24*time.Hour)))
	w("Load: floodgate loadgen -ipconf %s -users 2000 -rate 2000 -duration 30s\n", st.Ipconf)
	w("Drain gw-1: curl -H \"Authorization: Bearer $%s\" -H 'Content-Type: application/json' -d '{\"gateway\":\"gw-1\"}' %s/v1/drain\n",
		adminToken.env(), st.Control)
	w("\nCtrl-C stops everything.\n")
	<-ctx.Done()
	fmt.Fprintln(stdout, "stopping…")
	if err := st.Close(); err != nil {
		fmt.Fprintln(stderr, "up:", err)
		return 1
	}
	return 0
}
