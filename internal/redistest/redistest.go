// Package redistest starts throwaway Redis deployments on loopback for tests — one
// server, a primary with a replica watched by three sentinels, or a sharded cluster —
// each on its own ports and directories, without persistence, killed when the test
// ends.
package redistest

import (
	"context"
	"net"
	"os/exec"
	"slices"
	"syscall"
	"testing"
	"time"

	"github.com/floodgate/floodgate/internal/redisnode"
	"github.com/floodgate/floodgate/internal/testnet"
	"github.com/redis/go-redis/v9"
)

// Server is a running redis-server.
type Server struct {
	Addr string
	cmd  *exec.Cmd
}

// Start runs redis-server for the duration of t. Without the binary the test is
// skipped, except where FLOODGATE_REQUIRE_REDIS=1 (as in CI, which installs it), where
// it fails.
func Start(t testing.TB) *Server {
	t.Helper()
	return startServer(t, redisnode.Server{})
}

// startServer runs a server described by s (Bind, Port and Dir filled in here).
func startServer(t testing.TB, s redisnode.Server) *Server {
	t.Helper()
	bin := redisBinary(t)
	s.Bind, s.Port, s.Dir = "127.0.0.1", testnet.FreePort(t), t.TempDir()
	if s.Cluster {
		s.BusPort = testnet.FreePort(t)
	}
	srv := &Server{Addr: s.Addr()}
	srv.cmd = launch(t, bin, s.Args())
	t.Cleanup(srv.stop)
	waitPing(t, srv.Addr)
	return srv
}

func redisBinary(t testing.TB) string {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		if requireRedis() {
			t.Fatalf("redis-server not found and FLOODGATE_REQUIRE_REDIS=1 (install the redis-server package)")
		}
		t.Skip("redis-server not installed; .ci/run installs it (Debian package redis-server)")
	}
	return bin
}

// launch starts a Redis process that dies with the test process (Pdeathsig) in a
// process group of its own.
func launch(t testing.TB, bin string, args []string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL, Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatalf("redis-server: %v", err)
	}
	return cmd
}

func waitPing(t testing.TB, addr string) {
	t.Helper()
	if err := redisnode.WaitPing(context.Background(), addr, "", 10*time.Second); err != nil {
		t.Fatalf("redis-server on %s: %v", addr, err)
	}
}

func (s *Server) stop() {
	if s.cmd.ProcessState == nil {
		s.cmd.Process.Kill()
		s.cmd.Wait()
	}
}

// Kill kills the server with SIGKILL, as a crash would, and waits for it to exit.
func (s *Server) Kill() { s.stop() }

// Restart kills the server and starts it again on the same port (data is lost: no
// persistence), for tests of reconnection. A replica comes back as one, in sync
// before Restart returns (see rejoin).
func (s *Server) Restart(t testing.TB) {
	t.Helper()
	args := s.cmd.Args
	s.stop()
	if slices.Contains(args, "--replicaof") {
		s.rejoin(t, args)
		return
	}
	s.cmd = launch(t, args[0], args[1:])
	waitPing(t, s.Addr)
}

// RestartAsReplicaOf kills the server and starts it again on the same port as a
// replica of primary, and waits until it is in sync. A primary that lost its data
// (no persistence here) must come back this way after a failover, never as an
// empty primary: until the sentinels reconfigured it, clients could write to it,
// and what it took would be lost when it is made a replica.
func (s *Server) RestartAsReplicaOf(t testing.TB, primary string) {
	t.Helper()
	host, port, err := net.SplitHostPort(primary)
	if err != nil {
		t.Fatal(err)
	}
	args := append(append([]string(nil), s.cmd.Args...), "--replicaof", host, port)
	s.stop()
	s.rejoin(t, args)
}

// rejoin starts a replica that holds no data yet and returns once it is in sync
// and may be promoted. Until then its replica-priority is 0: a sentinel never
// picks it. Without that, a failover in the window — one the sentinels start by
// mistake on a loaded machine, right after a switch-master, is enough — promotes
// the empty node (the only replica, and one whose link never went down), and the
// primary that held every acknowledged message is made its replica and emptied.
func (s *Server) rejoin(t testing.TB, args []string) {
	t.Helper()
	args = append(slices.Clip(args), "--replica-priority", "0")
	s.cmd = launch(t, args[0], args[1:])
	waitPing(t, s.Addr)
	ctx := context.Background()
	if err := redisnode.WaitReplicating(ctx, s.Addr, "", 30*time.Second); err != nil {
		t.Fatal(err)
	}
	c := redis.NewClient(&redis.Options{Addr: s.Addr})
	defer c.Close()
	if err := c.ConfigSet(ctx, "replica-priority", "100").Err(); err != nil {
		t.Fatalf("redis-server on %s: %v", s.Addr, err)
	}
}

// Sentinel is a primary and its replica watched by three sentinels (quorum 2) under
// the master name Master: Sentinel's smallest deployment that survives the loss of
// the primary.
type Sentinel struct {
	Master           string
	Primary, Replica *Server
	SentinelAddrs    []string
}

// StartSentinel starts the primary, the replica (in sync before it returns) and
// the sentinels (each knowing the others and the replica), for the duration of t.
// A sentinel counts the primary down after 1s without an answer.
func StartSentinel(t testing.TB) *Sentinel {
	t.Helper()
	d := &Sentinel{Master: "floodgate"}
	d.Primary = startServer(t, redisnode.Server{})
	d.Replica = startServer(t, redisnode.Server{ReplicaOf: d.Primary.Addr})
	ctx := context.Background()
	if err := redisnode.WaitReplicating(ctx, d.Replica.Addr, "", 10*time.Second); err != nil {
		t.Fatal(err)
	}
	bin := redisBinary(t)
	for range 3 {
		s := redisnode.Sentinel{Bind: "127.0.0.1", Port: testnet.FreePort(t), Dir: t.TempDir(), Master: d.Master, Primary: d.Primary.Addr}
		args, err := s.WriteConfig()
		if err != nil {
			t.Fatal(err)
		}
		srv := &Server{Addr: s.Addr(), cmd: launch(t, bin, args)}
		t.Cleanup(srv.stop)
		waitPing(t, srv.Addr)
		d.SentinelAddrs = append(d.SentinelAddrs, srv.Addr)
	}
	if err := redisnode.WaitSentinels(ctx, d.SentinelAddrs, d.Master, 30*time.Second); err != nil {
		t.Fatal(err)
	}
	return d
}

// WaitFailover waits until every sentinel names the replica as the primary.
func (d *Sentinel) WaitFailover(t testing.TB, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	for _, s := range d.SentinelAddrs {
		for {
			p, err := redisnode.PrimaryOf(context.Background(), s, d.Master)
			if err == nil && p == d.Replica.Addr {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("sentinel %s names %q (%v) as primary %v after the kill, want the replica %s", s, p, err, within, d.Replica.Addr)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
}

// Cluster is a Redis Cluster on loopback.
type Cluster struct {
	Addrs   []string // every node; any of them is a seed
	Shards  []redisnode.Shard
	servers map[string]*Server
}

// StartCluster starts shards primaries with replicasPerShard replicas each and
// forms them into a cluster (slots split evenly, state ok) for the duration of t.
func StartCluster(t testing.TB, shards, replicasPerShard int) *Cluster {
	t.Helper()
	c := &Cluster{servers: map[string]*Server{}}
	node := func() string {
		s := startServer(t, redisnode.Server{Cluster: true, NodeTimeout: time.Second})
		c.Addrs = append(c.Addrs, s.Addr)
		c.servers[s.Addr] = s
		return s.Addr
	}
	for range shards {
		sh := redisnode.Shard{Primary: node()}
		for range replicasPerShard {
			sh.Replicas = append(sh.Replicas, node())
		}
		c.Shards = append(c.Shards, sh)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := redisnode.FormCluster(ctx, c.Shards, ""); err != nil {
		t.Fatal(err)
	}
	return c
}

// Server returns the node at addr.
func (c *Cluster) Server(addr string) *Server { return c.servers[addr] }
