package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/floodgate/floodgate/gateway/client"
	"github.com/floodgate/floodgate/gateway/proto"
	"github.com/floodgate/floodgate/internal/exitcode"
)

// runClient is `floodgate client`: an example client. It logs in as -uid (through
// ipconf, reconnecting across gateway failures), prints every message it receives
// once and in order, and sends "<uid> <text>" lines read from stdin.
func runClient(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("client", flag.ContinueOnError)
	ipconf := fs.String("ipconf", "", "ipconf base URL (or -gateway)")
	gateway := fs.String("gateway", "", "a gateway address, instead of asking ipconf")
	uid := fs.Uint64("uid", 0, "the user to log in as (required)")
	webSocket := fs.Bool("ws", false, "connect over the gateways' WebSocket ports (ipconf's ws addresses; with -gateway, a WebSocket address)")
	kf := registerKeys(fs, tokenKey)
	if stop, code := parse(fs, args, stderr); stop {
		return code
	}
	if *uid == 0 || (*ipconf == "") == (*gateway == "") {
		fmt.Fprintln(stderr, "client: -uid and one of -ipconf or -gateway are required")
		return exitcode.Failure
	}
	held, err := kf.load(tokenKey)
	if err != nil {
		fmt.Fprintln(stderr, "client:", err)
		return exitcode.Failure
	}
	signer, err := proto.NewSigner(held.token)
	if err != nil {
		fmt.Fprintln(stderr, "client:", err)
		return exitcode.Failure
	}
	cfg := client.SessionConfig{
		UID:    *uid,
		Token:  func() []byte { return signer.Mint(*uid, time.Now().Add(time.Hour)) },
		Ipconf: *ipconf, WebSocket: *webSocket,
		OnMessage: func(p proto.Push) {
			fmt.Fprintf(stdout, "[seq %d] from %d: %s\n", p.Seq, p.From, p.Payload)
		},
		OnConnect: func(addr string) { fmt.Fprintf(stderr, "logged in as %d at %s\n", *uid, addr) },
		Logger:    slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn})),
	}
	if *gateway != "" {
		cfg.Gateways = []string{*gateway}
	}
	s := client.NewSession(cfg)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	go func() {
		sc := bufio.NewScanner(os.Stdin)
		for sc.Scan() {
			to, text, ok := strings.Cut(strings.TrimSpace(sc.Text()), " ")
			dest, err := strconv.ParseUint(to, 10, 64)
			if !ok || err != nil || dest == 0 {
				fmt.Fprintln(stderr, `type "<uid> <message>"`)
				continue
			}
			// Send retries on its own (same client_msg_id, so the message is stored
			// at most once) until the server acknowledges it or refuses it for good.
			sctx, cancel := context.WithTimeout(ctx, sendTimeout)
			id, err := s.Send(sctx, dest, time.Now().UnixMilli(), []byte(text))
			cancel()
			refused, isRefused := errors.AsType[*client.ServerError](err)
			switch {
			case isRefused:
				fmt.Fprintln(stderr, "not sent:", refused)
				continue
			case err != nil:
				fmt.Fprintf(stderr, "no acknowledgement within %v; the message may or may not have been stored: %v\n", sendTimeout, err)
				continue
			}
			fmt.Fprintf(stderr, "stored as message %d\n", id)
		}
		// End of input: keep receiving until interrupted.
	}()
	if err := <-done; err != nil {
		if k, ok := errors.AsType[*client.KickError](err); ok && k.Reason == proto.ReasonReplaced {
			fmt.Fprintf(stderr, "client: uid %d logged in elsewhere; this session ended\n", *uid)
			return 1
		}
		fmt.Fprintln(stderr, "client:", err)
		return 1
	}
	return 0
}

// sendTimeout bounds how long the example client waits for one message's
// acknowledgement (the session keeps retrying meanwhile, across reconnects).
const sendTimeout = 30 * time.Second
