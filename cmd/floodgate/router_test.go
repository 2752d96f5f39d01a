package main

import (
	"bytes"
	"testing"

	"github.com/floodgate/floodgate/internal/exitcode"
)

func TestRouterCommandRejectsBadFlags(t *testing.T) {
	t.Setenv("FLOODGATE_CLUSTER_KEY", testClusterKey)
	for _, args := range [][]string{
		{"-retry-window", "0s"},
		{"-push-timeout", "-1s"},
		{"-max-inflight", "0"},
		{"-max-inflight-bytes", "0"},
		{"stray"},
	} {
		var out, errb bytes.Buffer
		if code := dispatch(append([]string{"router"}, args...), &out, &errb); code != exitcode.Failure {
			t.Errorf("router %q: exit %d, want 1 (stderr %q)", args, code, errb.String())
		}
	}
}
