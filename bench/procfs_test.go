package bench

import (
	"os"
	"testing"
	"time"
)

const sampleStatus = `Name:	floodgate
Umask:	0022
State:	S (sleeping)
VmPeak:	 1262032 kB
VmHWM:	   41028 kB
VmRSS:	   39936 kB
RssAnon:	   21504 kB
RssFile:	   18432 kB
Threads:	7
`

func TestParseVmRSS(t *testing.T) {
	got, err := parseVmRSS([]byte(sampleStatus))
	if err != nil || got != 39936<<10 {
		t.Fatalf("parseVmRSS = %d, %v; want %d", got, err, 39936<<10)
	}
	for _, bad := range []string{"Name:\tx\n", "VmRSS:\t12 MB\n", "VmRSS:\tx kB\n"} {
		if _, err := parseVmRSS([]byte(bad)); err == nil {
			t.Errorf("parseVmRSS(%q) succeeded", bad)
		}
	}
}

func TestParseCPU(t *testing.T) {
	// utime 250 and stime 130 ticks; the command name holds spaces and a ')'.
	stat := "4242 (a b) c) S 1 4242 4242 0 -1 4194560 900 0 0 0 250 130 0 0 20 0 7 0 1000 2000000 900 " +
		"18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 1 0 0 0 0 0\n"
	got, err := parseCPU([]byte(stat))
	if want := (procCPU{User: 2500 * time.Millisecond, System: 1300 * time.Millisecond}); err != nil || got != want {
		t.Fatalf("parseCPU = %v, %v; want %v", got, err, want)
	}
	for _, bad := range []string{"4242 no-parens S 1", "4242 (x) S 1 2 3", "4242 (x) S 1 1 1 0 -1 1 1 1 1 1 x 1 0"} {
		if _, err := parseCPU([]byte(bad)); err == nil {
			t.Errorf("parseCPU(%q) succeeded", bad)
		}
	}
}

func TestParseMachineCPU(t *testing.T) {
	stat := "cpu  92478 10 67474 443304 960 2 13834 1024 0 0\ncpu0 1 2 3 4 5 6 7 8 0 0\nintr 1\n"
	got, err := parseMachineCPU([]byte(stat))
	// busy = user 92478 + nice 10 + system 67474 + irq 2 + softirq 13834 ticks
	if want := (machineCPU{Busy: 1737980 * time.Millisecond, Steal: 10240 * time.Millisecond}); err != nil || got != want {
		t.Fatalf("parseMachineCPU = %+v, %v; want %+v", got, err, want)
	}
	for _, bad := range []string{"cpu0 1 2 3 4 5 6 7 8\n", "cpu 1 2 3\n", "cpu 1 2 3 4 5 6 7 x\n"} {
		if _, err := parseMachineCPU([]byte(bad)); err == nil {
			t.Errorf("parseMachineCPU(%q) succeeded", bad)
		}
	}
}

func TestProcReadersOnSelf(t *testing.T) {
	pid := os.Getpid()
	if r, err := rss(pid); err != nil || r <= 0 {
		t.Errorf("rss = %d, %v", r, err)
	}
	if _, err := cpuTime(pid); err != nil {
		t.Errorf("cpuTime: %v", err)
	}
	if n, err := openFDs(pid); err != nil || n < 3 {
		t.Errorf("openFDs = %d, %v", n, err)
	}
	if _, err := readMachineCPU(); err != nil {
		t.Errorf("readMachineCPU: %v", err)
	}
}

func TestSettleRule(t *testing.T) {
	r := settleRule{Window: 3, Tolerance: 0.01, Floor: 10}
	tests := []struct {
		samples []int64
		want    bool
	}{
		{[]int64{100, 100}, false},                // too few
		{[]int64{5, 100, 105, 108}, true},         // within the floor over the last 3
		{[]int64{1000, 1005, 1100}, false},        // moved 100 > max(10, 11)
		{[]int64{10_000, 10_050, 10_090}, true},   // 90 <= 1% of 10,090
		{[]int64{10_000, 10_050, 10_200}, false},  // 200 > 1%
		{[]int64{2000, 1000, 1000, 1000}, true},   // the old spike has left the window
		{[]int64{1000, 1000, 1000, 2000}, false},  // a new spike
		{[]int64{1000, 1000, 1000, 1000}, true},   // flat
		{[]int64{50_000, 49_900, 49_800}, true},   // falling slowly (200 <= 498)
		{[]int64{50_000, 45_000, 40_000}, false},  // falling fast
		{[]int64{0, 0, 0}, true},                  // nothing at all
		{[]int64{100, 100, 100, 100, 100}, true},  // more than the window
		{[]int64{100, 200, 300, 400, 401}, false}, // still climbing
	}
	for _, tt := range tests {
		if got := r.settled(tt.samples); got != tt.want {
			t.Errorf("settled(%v) = %v, want %v", tt.samples, got, tt.want)
		}
	}
}

func TestParseMetrics(t *testing.T) {
	text := `# HELP floodgate_reactor_epoll_waits_total epoll_wait calls that returned.
# TYPE floodgate_reactor_epoll_waits_total counter
floodgate_reactor_epoll_waits_total{gateway="gw 1"} 1234
floodgate_reactor_closed_total{gateway="gw-1",reason="peer"} 3
floodgate_reactor_closed_total{gateway="gw-1",reason="slow"} 4
floodgate_reactor_frames_in_total 5.5e+06 1700000000000
floodgate_reactor_frames_in_totalx 99
go_goroutines 12
`
	got := parseMetrics([]byte(text), "floodgate_reactor_epoll_waits_total", "floodgate_reactor_closed_total",
		"floodgate_reactor_frames_in_total", "absent")
	want := map[string]float64{
		"floodgate_reactor_epoll_waits_total": 1234,
		"floodgate_reactor_closed_total":      7,
		"floodgate_reactor_frames_in_total":   5.5e6,
	}
	if len(got) != len(want) {
		t.Fatalf("parseMetrics = %v, want %v", got, want)
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %v, want %v", k, got[k], v)
		}
	}
}
