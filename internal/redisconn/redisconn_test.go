package redisconn

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"reflect"
	"testing"

	"github.com/floodgate/floodgate/internal/redistest"
	"github.com/redis/go-redis/v9"
)

func TestFlagsDefaultFromEnvironmentAndFlagsWin(t *testing.T) {
	t.Setenv(EnvMode, "sentinel")
	t.Setenv(EnvAddr, "a:26379, b:26379")
	t.Setenv(EnvMaster, "m1")
	t.Setenv(EnvPassword, "pw")
	for _, c := range []struct {
		name string
		args []string
		want Config
	}{
		{"environment", nil, Config{Mode: Sentinel, Addrs: []string{"a:26379", "b:26379"}, Master: "m1", Password: "pw"}},
		{"flags", []string{"-redis-mode", "cluster", "-redis-addr", "x:1,y:2,z:3"},
			Config{Mode: Cluster, Addrs: []string{"x:1", "y:2", "z:3"}, Master: "m1", Password: "pw"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			fs := flag.NewFlagSet("t", flag.ContinueOnError)
			fs.SetOutput(io.Discard)
			cfg := Register(fs)
			if err := fs.Parse(c.args); err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(*cfg, c.want) {
				t.Fatalf("got %+v, want %+v", *cfg, c.want)
			}
		})
	}
}

func TestValidateRefusesWhatOpenCannotUse(t *testing.T) {
	for _, c := range []struct {
		cfg Config
		ok  bool
	}{
		{Config{Mode: Single, Addrs: []string{"a:1"}}, true},
		{Config{Mode: Single, Addrs: []string{"a:1", "b:2"}}, false},
		{Config{Mode: Single}, false},
		{Config{Mode: Sentinel, Addrs: []string{"a:1"}, Master: "m"}, true},
		{Config{Mode: Sentinel, Addrs: []string{"a:1"}}, false},
		{Config{Mode: Cluster, Addrs: []string{"a:1"}}, true},
		{Config{Mode: Cluster}, false},
		{Config{Mode: "ring", Addrs: []string{"a:1"}}, false},
	} {
		if err := c.cfg.Validate(); (err == nil) != c.ok {
			t.Errorf("%+v: Validate() = %v, want ok=%v", c.cfg, err, c.ok)
		}
	}
}

func TestClientMatchesTheMode(t *testing.T) {
	for mode, want := range map[string]any{
		Single: &redis.Client{}, Sentinel: &redis.Client{}, Cluster: &redis.ClusterClient{},
	} {
		rdb, err := Config{Mode: mode, Addrs: []string{"127.0.0.1:1"}, Master: "m"}.Client()
		if err != nil {
			t.Fatal(err)
		}
		if reflect.TypeOf(rdb) != reflect.TypeOf(want) {
			t.Errorf("%s: client %T, want %T", mode, rdb, want)
		}
		rdb.Close()
	}
}

func TestNoAnswerTellsFailuresFromRedisReplies(t *testing.T) {
	for _, c := range []struct {
		err  error
		want bool
	}{
		{nil, false},
		{redis.Nil, false},
		{errors.New("dial tcp 10.0.0.1:6379: connect: connection refused"), true},
		{context.DeadlineExceeded, true},
		{fmt.Errorf("wrapped: %w", io.EOF), true},
	} {
		if got := noAnswer(c.err); got != c.want {
			t.Errorf("noAnswer(%v) = %v, want %v", c.err, got, c.want)
		}
	}
}

func TestNoAnswerIsFalseForRedisErrorReplies(t *testing.T) {
	s := redistest.Start(t)
	rdb := redis.NewClient(&redis.Options{Addr: s.Addr})
	defer rdb.Close()
	err := rdb.Do(context.Background(), "NOSUCHCOMMAND").Err()
	if err == nil || noAnswer(err) {
		t.Fatalf("an error reply (%v) taken for no answer", err)
	}
}
