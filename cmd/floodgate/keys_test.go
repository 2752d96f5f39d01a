package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/floodgate/floodgate/gateway/proto"
	"github.com/floodgate/floodgate/internal/exitcode"
)

// The tests' keys: three different ones, each at least keys.MinLen bytes.
const (
	testTokenKey   = "test-token-key-0123456789abcdefghij"
	testClusterKey = "test-cluster-key-0123456789abcdefghij"
	testAdminToken = "test-admin-token-0123456789abcdefghij"
)

// testKeyEnv is the environment a process of role gets: only the keys it needs,
// as a deployment gives them.
func testKeyEnv(role string) []string {
	switch role {
	case "gateway":
		return []string{"FLOODGATE_TOKEN_KEY=" + testTokenKey, "FLOODGATE_CLUSTER_KEY=" + testClusterKey}
	case "control":
		return []string{"FLOODGATE_CLUSTER_KEY=" + testClusterKey, "FLOODGATE_ADMIN_TOKEN=" + testAdminToken}
	case "token", "client", "loadgen":
		return []string{"FLOODGATE_TOKEN_KEY=" + testTokenKey}
	}
	return []string{"FLOODGATE_CLUSTER_KEY=" + testClusterKey}
}

// clearKeyEnv unsets every key variable (and the retired one) for the test.
func clearKeyEnv(t *testing.T) {
	for _, v := range []string{"FLOODGATE_TOKEN_KEY", "FLOODGATE_CLUSTER_KEY", "FLOODGATE_ADMIN_TOKEN", "FLOODGATE_SECRET"} {
		t.Setenv(v, "")
	}
}

// Every role loads the keys it needs and refuses to start, before it listens on
// anything, without them, with a short one, or with two equal ones; the error
// names the flag or variable to fix. -secret-file is gone.
func TestEachRoleRefusesToStartWithoutItsKeys(t *testing.T) {
	short := "twenty-bytes-long-ok"
	for _, tc := range []struct {
		name string
		env  map[string]string
		args []string
		want string
	}{
		{"token without the token key", map[string]string{"FLOODGATE_CLUSTER_KEY": testClusterKey},
			[]string{"token", "-uid", "1"}, "no token key: give -token-key-file or set FLOODGATE_TOKEN_KEY"},
		{"token with the retired secret", map[string]string{"FLOODGATE_SECRET": testClusterKey},
			[]string{"token", "-uid", "1"}, "FLOODGATE_SECRET was split into FLOODGATE_TOKEN_KEY"},
		{"token with a short key", map[string]string{"FLOODGATE_TOKEN_KEY": short},
			[]string{"token", "-uid", "1"}, "$FLOODGATE_TOKEN_KEY: the key is 20 bytes, need at least 32"},
		{"token with a missing key file", nil,
			[]string{"token", "-uid", "1", "-token-key-file", "/nonexistent/key"}, "-token-key-file"},
		{"the retired -secret-file", map[string]string{"FLOODGATE_TOKEN_KEY": testTokenKey},
			[]string{"token", "-uid", "1", "-secret-file", "/dev/null"}, "flag provided but not defined: -secret-file"},
		{"client without the token key", map[string]string{"FLOODGATE_CLUSTER_KEY": testClusterKey},
			[]string{"client", "-uid", "1", "-gateway", "127.0.0.1:1"}, "no token key"},
		{"loadgen without the token key", map[string]string{"FLOODGATE_CLUSTER_KEY": testClusterKey},
			[]string{"loadgen", "-gateways", "127.0.0.1:1"}, "no token key"},
		{"lone gateway without the token key", map[string]string{"FLOODGATE_CLUSTER_KEY": testClusterKey},
			[]string{"gateway", "-listen", "127.0.0.1:0", "-admin", ""}, "no token key"},
		{"stack gateway without the cluster key", map[string]string{"FLOODGATE_TOKEN_KEY": testTokenKey},
			[]string{"gateway", "-listen", "127.0.0.1:0", "-admin", "", "-state", "127.0.0.1:1", "-msg", "127.0.0.1:1"}, "no cluster key"},
		{"stack gateway with one key for both", map[string]string{"FLOODGATE_TOKEN_KEY": testTokenKey, "FLOODGATE_CLUSTER_KEY": testTokenKey},
			[]string{"gateway", "-listen", "127.0.0.1:0", "-admin", "", "-state", "127.0.0.1:1", "-msg", "127.0.0.1:1"},
			"$FLOODGATE_TOKEN_KEY and $FLOODGATE_CLUSTER_KEY are the same key"},
		{"state with the token key only", map[string]string{"FLOODGATE_TOKEN_KEY": testTokenKey},
			[]string{"state", "-listen", "127.0.0.1:0", "-admin", ""}, "no cluster key: give -cluster-key-file or set FLOODGATE_CLUSTER_KEY"},
		{"state with the retired secret", map[string]string{"FLOODGATE_SECRET": testClusterKey},
			[]string{"state", "-listen", "127.0.0.1:0", "-admin", ""}, "FLOODGATE_SECRET was split into"},
		{"state with a short cluster key", map[string]string{"FLOODGATE_CLUSTER_KEY": short},
			[]string{"state", "-listen", "127.0.0.1:0", "-admin", ""}, "$FLOODGATE_CLUSTER_KEY: the key is 20 bytes, need at least 32"},
		{"msg with a short cluster key", map[string]string{"FLOODGATE_CLUSTER_KEY": short},
			[]string{"msg", "-listen", "127.0.0.1:0", "-admin", ""}, "need at least 32"},
		{"router with the token key only", map[string]string{"FLOODGATE_TOKEN_KEY": testTokenKey},
			[]string{"router", "-listen", "127.0.0.1:0", "-admin", ""}, "no cluster key"},
		{"ipconf with the token key only", map[string]string{"FLOODGATE_TOKEN_KEY": testTokenKey},
			[]string{"ipconf", "-listen", "127.0.0.1:0", "-admin", ""}, "no cluster key"},
		{"control without the admin token", map[string]string{"FLOODGATE_CLUSTER_KEY": testClusterKey},
			[]string{"control", "-listen", "127.0.0.1:0", "-admin", ""}, "no admin token: give -admin-token-file or set FLOODGATE_ADMIN_TOKEN"},
		{"control with a short admin token", map[string]string{"FLOODGATE_CLUSTER_KEY": testClusterKey, "FLOODGATE_ADMIN_TOKEN": "letmein"},
			[]string{"control", "-listen", "127.0.0.1:0", "-admin", ""}, "$FLOODGATE_ADMIN_TOKEN: the key is 7 bytes"},
		{"control with the cluster key as admin token", map[string]string{"FLOODGATE_CLUSTER_KEY": testClusterKey, "FLOODGATE_ADMIN_TOKEN": testClusterKey},
			[]string{"control", "-listen", "127.0.0.1:0", "-admin", ""}, "are the same key"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			clearKeyEnv(t)
			for k, v := range tc.env {
				t.Setenv(k, v)
			}
			var out, errb bytes.Buffer
			if code := dispatch(tc.args, &out, &errb); code != exitcode.Failure || !strings.Contains(errb.String(), tc.want) {
				t.Fatalf("exit %d, stderr %q; want 1 and %q", code, errb.String(), tc.want)
			}
			if out.Len() != 0 {
				t.Fatalf("it printed %q on stdout (a READY line?)", out.String())
			}
		})
	}
}

// A key file's surrounding whitespace (the newline an editor adds) is not part
// of the key, and the file wins over the variable.
func TestTokenKeyFromAFile(t *testing.T) {
	clearKeyEnv(t)
	t.Setenv("FLOODGATE_TOKEN_KEY", testClusterKey) // not the one used
	f := filepath.Join(t.TempDir(), "token.key")
	if err := os.WriteFile(f, []byte(testTokenKey+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	var out, errb bytes.Buffer
	if code := dispatch([]string{"token", "-uid", "9", "-token-key-file", f}, &out, &errb); code != 0 {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	s, _ := proto.NewSigner([]byte(testTokenKey))
	if err := s.Verify(bytes.TrimSpace(out.Bytes()), 9, time.Now()); err != nil {
		t.Fatalf("the token does not verify under the file's key: %v", err)
	}
}
