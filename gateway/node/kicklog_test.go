package node_test

import (
	"log/slog"
	"strings"
	"testing"

	"github.com/floodgate/floodgate/gateway/node"
	"github.com/floodgate/floodgate/gateway/proto"
	"github.com/floodgate/floodgate/internal/syncbuf"
)

// A kick is logged at info with its reason, code and user. Kicks after it within a
// second are held back (loglimit's test covers the limiter), so two kicks log one
// or, on a machine slow enough to part them by a second, two lines.
func TestKicksAreLoggedAtInfoWithTheirReasonOneASecond(t *testing.T) {
	var logs syncbuf.Buffer
	g := startGateway(t, func(c *node.Config) {
		c.Logger = slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelInfo}))
	})
	old, _ := g.login(t, 5)
	g.login(t, 5)
	expectKick(t, old, proto.ReasonReplaced, proto.CodeSessionReplaced)
	again, _ := g.login(t, 5)
	g.login(t, 5)
	expectKick(t, again, proto.ReasonReplaced, proto.CodeSessionReplaced)

	var kicks []string
	for _, line := range strings.Split(logs.String(), "\n") {
		if strings.Contains(line, "msg=kick ") {
			kicks = append(kicks, line)
		}
	}
	if len(kicks) < 1 || len(kicks) > 2 {
		t.Fatalf("%d kick lines for two kicks, want 1 or 2:\n%s", len(kicks), logs.String())
	}
	for _, want := range []string{"level=INFO", "reason=" + proto.ReasonReplaced.String(), "code=" + proto.CodeSessionReplaced.String(), "uid=5"} {
		if !strings.Contains(kicks[0], want) {
			t.Errorf("kick line %q lacks %q", kicks[0], want)
		}
	}
}
