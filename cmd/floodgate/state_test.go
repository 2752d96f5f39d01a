package main

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/floodgate/floodgate/gateway/state"
	"github.com/floodgate/floodgate/internal/redisconn"
	"github.com/floodgate/floodgate/internal/redistest"
	"github.com/floodgate/floodgate/internal/testbin"
)

// clearRedisEnv empties the Redis environment variables for t, so only what a
// test passes configures the command.
func clearRedisEnv(t *testing.T) {
	for _, k := range []string{redisconn.EnvMode, redisconn.EnvAddr, redisconn.EnvMaster, redisconn.EnvPassword} {
		t.Setenv(k, "")
	}
}

func TestStateCommandRejectsBadFlags(t *testing.T) {
	t.Setenv("FLOODGATE_CLUSTER_KEY", testClusterKey)
	clearRedisEnv(t)
	for _, tc := range []struct {
		args []string
		code int
	}{
		{[]string{"-backend", "disk"}, 1},
		{[]string{"stray"}, 1},
		{[]string{"-log-level", "loud"}, 1},
		{[]string{"-backend", "redis", "-redis-addr", "127.0.0.1:1", "-admin", ""}, 1}, // nothing listens there
		{[]string{"-backend", "redis", "-redis-mode", "ring"}, 1},
		{[]string{"-backend", "redis", "-redis-addr", "127.0.0.1:1,127.0.0.1:2"}, 1}, // single mode: one primary
		{[]string{"-backend", "redis", "-redis-mode", "sentinel", "-redis-master", ""}, 1},
		{[]string{"-backend", "redis", "-redis-prefix", "{fg}:"}, 1}, // would defeat the store's hash tags
	} {
		var out, errb bytes.Buffer
		if code := dispatch(append([]string{"state"}, tc.args...), &out, &errb); code != tc.code {
			t.Errorf("state %q: exit %d, want %d (stderr %q)", tc.args, code, tc.code, errb.String())
		}
	}
}

// The state command end to end on each backend (Redis in each mode): READY line, a gateway's lease and a
// session through a Client, metrics and health, SIGTERM → exit 0.
func TestStateCommandServesAndStopsOnSIGTERM(t *testing.T) {
	clearRedisEnv(t)
	for _, tc := range []struct {
		name string
		// redis returns the arguments and environment that point the command at a
		// fresh deployment (none: the memory backend).
		redis func(t *testing.T) (args, env []string)
	}{
		{"memory", nil},
		{"redis", func(t *testing.T) ([]string, []string) { // by flags
			return []string{"-redis-addr", redistest.Start(t).Addr}, nil
		}},
		{"redis-sentinel", func(t *testing.T) ([]string, []string) { // by environment
			d := redistest.StartSentinel(t)
			return nil, []string{"FLOODGATE_REDIS_MODE=sentinel", "FLOODGATE_REDIS_ADDR=" + strings.Join(d.SentinelAddrs, ","),
				"FLOODGATE_REDIS_MASTER=" + d.Master}
		}},
		{"redis-cluster", func(t *testing.T) ([]string, []string) {
			c := redistest.StartCluster(t, 3, 0)
			return []string{"-redis-mode", "cluster", "-redis-addr", c.Addrs[0]}, nil
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			args := []string{"state", "-listen", "127.0.0.1:0", "-admin", "127.0.0.1:0"}
			env := []string{"FLOODGATE_CLUSTER_KEY=" + testClusterKey}
			if tc.redis == nil {
				args = append(args, "-backend", "memory")
			} else {
				a, e := tc.redis(t)
				args = append(append(args, "-backend", "redis", "-redis-prefix", "e2e:"), a...)
				env = append(env, e...)
			}
			p := testbin.Start(t, env, args...)
			linkAddr, adminAddr := p.Addr(), p.Admin()

			c, err := state.Dial(state.ClientConfig{Addr: linkAddr, Secret: []byte(testClusterKey)})
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			if err := c.WaitConnected(ctx); err != nil {
				t.Fatal(err)
			}
			e, err := c.Acquire(ctx, state.Gateway{ID: "gw-1", Addr: "127.0.0.1:7000"}, time.Minute)
			if err != nil {
				t.Fatal(err)
			}
			want := state.Session{UID: 5, Gateway: "gw-1", Conn: 1, Epoch: e}
			if _, err := c.Register(ctx, want); err != nil {
				t.Fatal(err)
			}
			if got, ok, err := c.Lookup(ctx, 5); err != nil || !ok || got != want {
				t.Fatalf("lookup: %+v %v %v", got, ok, err)
			}

			metrics := httpGetOK(t, "http://"+adminAddr+"/metrics")
			for _, w := range []string{`floodgate_state_registrations_total{result="ok"} 1`,
				`floodgate_state_lookups_total{result="hit"} 1`, "floodgate_state_sessions 1",
				"floodgate_state_lease_acquires_total 1"} {
				if !strings.Contains(metrics, w) {
					t.Errorf("/metrics lacks %q", w)
				}
			}
			if h := httpGetOK(t, "http://"+adminAddr+"/healthz"); strings.TrimSpace(h) != "ok" {
				t.Errorf("/healthz: %q", h)
			}

			p.Stop(t)
		})
	}
}

// httpGetOK returns the body of GET url, failing t unless the answer is 200.
func httpGetOK(t *testing.T, url string) string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s: %s", url, resp.Status, body)
	}
	return string(body)
}
