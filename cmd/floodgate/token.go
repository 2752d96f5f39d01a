package main

import (
	"flag"
	"fmt"
	"io"
	"time"

	"github.com/floodgate/floodgate/gateway/proto"
)

func runToken(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("token", flag.ContinueOnError)
	uid := fs.Uint64("uid", 0, "user id (required, > 0)")
	ttl := fs.Duration("ttl", 24*time.Hour, "how long the token is valid")
	var sec secretFlags
	sec.register(fs)
	if stop, code := parse(fs, args, stderr); stop {
		return code
	}
	if *uid == 0 {
		fmt.Fprintln(stderr, "token: -uid is required and must be > 0")
		return 2
	}
	secret, err := sec.load()
	if err != nil {
		fmt.Fprintln(stderr, "token:", err)
		return 2
	}
	signer, err := proto.NewSigner(secret)
	if err != nil {
		fmt.Fprintln(stderr, "token:", err)
		return 2
	}
	fmt.Fprintf(stdout, "%s\n", signer.Mint(*uid, time.Now().Add(*ttl)))
	return 0
}
