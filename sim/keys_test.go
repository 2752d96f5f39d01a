package sim

import (
	"slices"
	"strings"
	"testing"

	"github.com/floodgate/floodgate/internal/keys"
)

// Each process of a run gets exactly the keys its role needs, none inherited
// from the runner's own environment (the retired FLOODGATE_SECRET included),
// and the run's three keys are valid and different.
func TestEachProcessGetsOnlyItsKeys(t *testing.T) {
	k := newRunKeys()
	if err := keys.Validate(keys.Named{Name: "token", Key: []byte(k.token)}, keys.Named{Name: "cluster", Key: []byte(k.cluster)},
		keys.Named{Name: "admin", Key: []byte(k.admin)}); err != nil {
		t.Fatal(err)
	}
	base := []string{"PATH=/usr/bin", "FLOODGATE_SECRET=old", "FLOODGATE_TOKEN_KEY=operator's", "FLOODGATE_CLUSTER_KEY=operator's",
		"FLOODGATE_ADMIN_TOKEN=operator's", "FLOODGATE_REQUIRE_REDIS=1"}
	token, cluster, admin := "FLOODGATE_TOKEN_KEY="+k.token, "FLOODGATE_CLUSTER_KEY="+k.cluster, "FLOODGATE_ADMIN_TOKEN="+k.admin
	for _, tc := range []struct {
		role string
		want []string
	}{
		{"gateway", []string{token, cluster}},
		{"state", []string{cluster}},
		{"msg", []string{cluster}},
		{"router", []string{cluster}},
		{"ipconf", []string{cluster}},
		{"control", []string{cluster, admin}},
		{"agent", nil}, // the plan file carries the token key
		{"redis", nil},
	} {
		t.Run(tc.role, func(t *testing.T) {
			env := processEnv(base, k, tc.role)
			var got []string
			for _, kv := range env {
				if strings.HasPrefix(kv, "FLOODGATE_TOKEN_KEY=") || strings.HasPrefix(kv, "FLOODGATE_CLUSTER_KEY=") ||
					strings.HasPrefix(kv, "FLOODGATE_ADMIN_TOKEN=") || strings.HasPrefix(kv, "FLOODGATE_SECRET=") {
					got = append(got, kv)
				}
			}
			if !slices.Equal(got, tc.want) {
				t.Fatalf("keys %q, want %q", got, tc.want)
			}
			for _, keep := range []string{"PATH=/usr/bin", "FLOODGATE_REQUIRE_REDIS=1", "GOMAXPROCS=1"} {
				if !slices.Contains(env, keep) {
					t.Errorf("lost %q", keep)
				}
			}
		})
	}
}
