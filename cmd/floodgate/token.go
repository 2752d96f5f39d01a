package main

import (
	"flag"
	"fmt"
	"io"
	"time"

	"github.com/floodgate/floodgate/gateway/proto"
	"github.com/floodgate/floodgate/internal/exitcode"
)

func runToken(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("token", flag.ContinueOnError)
	uid := fs.Uint64("uid", 0, "user id (required, > 0)")
	ttl := fs.Duration("ttl", 24*time.Hour, "how long the token is valid")
	kf := registerKeys(fs, tokenKey)
	if stop, code := parse(fs, args, stderr); stop {
		return code
	}
	if *uid == 0 {
		fmt.Fprintln(stderr, "token: -uid is required and must be > 0")
		return exitcode.Failure
	}
	held, err := kf.load(tokenKey)
	if err != nil {
		fmt.Fprintln(stderr, "token:", err)
		return exitcode.Failure
	}
	signer, err := proto.NewSigner(held.token)
	if err != nil {
		fmt.Fprintln(stderr, "token:", err)
		return exitcode.Failure
	}
	fmt.Fprintf(stdout, "%s\n", signer.Mint(*uid, time.Now().Add(*ttl)))
	return 0
}
