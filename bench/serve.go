package bench

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"
)

// command is a line the harness sends a client process.
type command struct {
	Cmd       string `json:"cmd"` // "echo" or "stop"
	MsgBytes  int    `json:"msg_bytes,omitempty"`
	Depth     int    `json:"depth,omitempty"`
	WarmupMS  int64  `json:"warmup_ms,omitempty"`
	MeasureMS int64  `json:"measure_ms,omitempty"`
}

// reply is a line a client process sends the harness.
type reply struct {
	Connect *ConnectResult `json:"connect,omitempty"`
	Echo    *EchoResult    `json:"echo,omitempty"`
	Error   string         `json:"error,omitempty"`
}

// maxLine bounds one protocol line (a histogram snapshot is tens of KiB).
const maxLine = 4 << 20

// ServeClient is the body of a load-client process (`floodgate bench client`): it
// connects, reports {"connect":...} on out, then runs the commands read from in, one
// JSON object a line, answering each "echo" with {"echo":...}, until "stop", the end of
// in, or the end of ctx. It closes its connections before it returns.
func ServeClient(ctx context.Context, cfg ClientConfig, in io.Reader, out io.Writer) error {
	cl, err := NewClient(cfg)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(ctx)
	ran := make(chan error, 1)
	go func() { ran <- cl.Run(ctx) }()
	defer func() {
		cancel()
		<-ran
	}()

	enc := json.NewEncoder(out)
	res, err := cl.Connect(ctx)
	if err != nil {
		return fmt.Errorf("connecting: %w", err)
	}
	if err := enc.Encode(reply{Connect: &res}); err != nil {
		return fmt.Errorf("writing the connect report: %w", err)
	}

	cmds := make(chan command)
	readErr := make(chan error, 1)
	go func() { readErr <- readCommands(ctx, in, cmds) }()
	for {
		var cmd command
		select {
		case <-ctx.Done():
			return nil
		case err := <-readErr:
			return err // nil at the end of input
		case cmd = <-cmds:
		}
		switch cmd.Cmd {
		case "stop":
			return nil
		case "echo":
			res, err := cl.Echo(ctx, EchoSpec{
				MsgBytes: cmd.MsgBytes, Depth: cmd.Depth,
				Warmup:  time.Duration(cmd.WarmupMS) * time.Millisecond,
				Measure: time.Duration(cmd.MeasureMS) * time.Millisecond,
			})
			r := reply{Echo: &res}
			if err != nil {
				r.Error = err.Error()
			}
			if err := enc.Encode(r); err != nil {
				return fmt.Errorf("writing an echo report: %w", err)
			}
		default:
			if err := enc.Encode(reply{Error: fmt.Sprintf("unknown command %q", cmd.Cmd)}); err != nil {
				return fmt.Errorf("writing an error: %w", err)
			}
		}
	}
}

// readCommands decodes lines from in onto cmds until the end of in (nil) or ctx.
func readCommands(ctx context.Context, in io.Reader, cmds chan<- command) error {
	sc := bufio.NewScanner(in)
	sc.Buffer(make([]byte, 0, 4096), maxLine)
	for sc.Scan() {
		var cmd command
		if err := json.Unmarshal(sc.Bytes(), &cmd); err != nil {
			return fmt.Errorf("bad command %q: %w", sc.Text(), err)
		}
		select {
		case cmds <- cmd:
		case <-ctx.Done():
			return nil
		}
	}
	if err := sc.Err(); err != nil && !errors.Is(err, io.ErrClosedPipe) {
		return fmt.Errorf("reading commands: %w", err)
	}
	return nil
}
