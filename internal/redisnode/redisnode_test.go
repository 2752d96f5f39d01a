package redisnode

import (
	"os"
	"slices"
	"strings"
	"testing"
	"time"
)

// has reports whether args hold flag followed by values.
func has(args []string, flag string, values ...string) bool {
	i := slices.Index(args, flag)
	return i >= 0 && len(args) >= i+1+len(values) && slices.Equal(args[i+1:i+1+len(values)], values)
}

func TestServerArgsSayWhatTheServerIs(t *testing.T) {
	for _, c := range []struct {
		name string
		s    Server
		want [][]string // flag, values...
		not  []string
	}{
		{"standalone without persistence", Server{Bind: "127.0.0.1", Port: 7000, Dir: "/d"},
			[][]string{{"--appendonly", "no"}, {"--save", ""}, {"--maxmemory-policy", "noeviction"}, {"--port", "7000"}},
			[]string{"--replicaof", "--cluster-enabled"}},
		{"replica with an AOF", Server{Bind: "10.0.0.2", Port: 6379, Dir: "/d", AOF: true, ReplicaOf: "10.0.0.1:6379"},
			[][]string{{"--appendonly", "yes"}, {"--appendfsync", "everysec"}, {"--replicaof", "10.0.0.1", "6379"}},
			[]string{"--cluster-enabled"}},
		{"cluster node, default timeout", Server{Bind: "10.0.0.3", Port: 6379, Dir: "/d", Cluster: true},
			[][]string{{"--cluster-enabled", "yes"}, {"--cluster-node-timeout", "1000"}, {"--cluster-config-file", "/d/nodes.conf"}},
			[]string{"--cluster-port"}},
		{"cluster node, own bus port", Server{Bind: "10.0.0.3", Port: 6379, Dir: "/d", Cluster: true, NodeTimeout: 3 * time.Second, BusPort: 16400},
			[][]string{{"--cluster-node-timeout", "3000"}, {"--cluster-port", "16400"}}, nil},
	} {
		t.Run(c.name, func(t *testing.T) {
			a := c.s.Args()
			for _, w := range c.want {
				if !has(a, w[0], w[1:]...) {
					t.Errorf("%v lacks %v", a, w)
				}
			}
			for _, n := range c.not {
				if slices.Contains(a, n) {
					t.Errorf("%v has %s", a, n)
				}
			}
		})
	}
}

func TestSentinelConfigMonitorsThePrimary(t *testing.T) {
	s := Sentinel{Bind: "10.0.0.9", Port: 26379, Dir: t.TempDir(), Master: "fg", Primary: "10.0.0.1:6379"}
	args, err := s.WriteConfig()
	if err != nil {
		t.Fatal(err)
	}
	if len(args) != 2 || args[1] != "--sentinel" {
		t.Fatalf("args %v", args)
	}
	b, err := os.ReadFile(args[0])
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range []string{"sentinel monitor fg 10.0.0.1 6379 2", "sentinel down-after-milliseconds fg 1000",
		"sentinel announce-ip 10.0.0.9", "port 26379"} {
		if !strings.Contains(string(b), line+"\n") {
			t.Errorf("config lacks %q:\n%s", line, b)
		}
	}
	if _, err := (Sentinel{Dir: t.TempDir(), Primary: "no-port"}).WriteConfig(); err == nil {
		t.Fatal("a primary without a port accepted")
	}
}
