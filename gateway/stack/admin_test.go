package stack

import (
	"io"
	"net/http"
	"strings"
	"testing"
)

// scrapeAdmin returns the text of the stack's admin /metrics.
func scrapeAdmin(t *testing.T, s *Stack) string {
	t.Helper()
	resp, err := http.Get(s.Admin + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /metrics: %d %v", resp.StatusCode, err)
	}
	return string(b)
}

// The admin address serves every role's series: the shared components', and each
// running gateway's (reactor included) labelled by gateway; a stopped gateway's
// series leave with it.
func TestAdminMetricsServeEveryRole(t *testing.T) {
	s := up(t, 2)
	body := scrapeAdmin(t, s)
	for _, want := range []string{
		`floodgate_reactor_connections{gateway="gw-1"}`,
		`floodgate_reactor_connections{gateway="gw-2"}`,
		`floodgate_gateway_sessions{gateway="gw-1"}`,
		`floodgate_gateway_lease_epoch{gateway="gw-2"}`,
		"floodgate_state_sessions",
		"floodgate_msg_stored_messages",
		"floodgate_router_live_gateways",
		"floodgate_ipconf_gateways",
		"floodgate_control_serving_gateways",
		"process_resident_memory_bytes",
		"go_memstats_heap_alloc_bytes",
	} {
		if !strings.Contains(body, want+" ") {
			t.Errorf("admin /metrics lacks %s", want)
		}
	}
	if err := s.StopGateway("gw-2"); err != nil {
		t.Fatal(err)
	}
	body = scrapeAdmin(t, s)
	if strings.Contains(body, `gateway="gw-2"`) {
		t.Error("admin /metrics still serves the stopped gw-2's series")
	}
	if !strings.Contains(body, `floodgate_reactor_connections{gateway="gw-1"} `) {
		t.Error("admin /metrics lost gw-1's series when gw-2 stopped")
	}
}
