package main

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/floodgate/floodgate/gateway/proto"
	"github.com/floodgate/floodgate/gateway/stack"
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
	secret := []byte(os.Getenv("FLOODGATE_SECRET"))
	generated := len(secret) == 0
	if generated {
		b := make([]byte, 24)
		rand.Read(b)
		secret = []byte(base64.RawURLEncoding.EncodeToString(b))
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	sctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	st, err := stack.Up(sctx, stack.Config{Host: *host, Secret: secret, Gateways: *gateways, Logger: log})
	cancel()
	if err != nil {
		fmt.Fprintln(stderr, "up:", err)
		return 1
	}
	signer, _ := proto.NewSigner(secret)
	w := func(f string, a ...any) { fmt.Fprintf(stdout, f, a...) }
	w("Floodgate is up (one process, loopback).\n\n")
	w("  ipconf    %s/v1/gateways?uid=1\n", st.Ipconf)
	w("  control   %s/v1/alerts   %s/v1/recommendation   POST %s/v1/drain\n", st.Control, st.Control, st.Control)
	w("  metrics   %s/metrics\n", st.Admin)
	w("  state     %s   msg %s   router %s   (internal links)\n", st.State, st.Msg, st.Router)
	for _, g := range st.Gateways {
		w("  %-8s  %s   (link %s)\n", g.ID, g.Addr, g.Link)
	}
	if generated {
		w("\nCluster secret (generated; export it for the commands below):\n  export FLOODGATE_SECRET=%s\n", secret)
	}
	w("\nTry it, in two more terminals:\n")
	w("  floodgate client -ipconf %s -uid 1\n", st.Ipconf)
	w("  floodgate client -ipconf %s -uid 2\n", st.Ipconf)
	w("then type \"2 hello\" in the first to send uid 2 a message.\n")
	w("Tokens for other clients: floodgate token -uid N   (e.g. uid 1: %s)\n", signer.Mint(1, time.Now().Add(24*time.Hour)))
	w("Load: floodgate loadgen -ipconf %s -users 2000 -rate 2000 -duration 30s\n", st.Ipconf)
	w("\nCtrl-C stops everything.\n")
	<-ctx.Done()
	fmt.Fprintln(stdout, "stopping…")
	if err := st.Close(); err != nil {
		fmt.Fprintln(stderr, "up:", err)
		return 1
	}
	return 0
}
