package sim

import (
	"bufio"
	"context"
	"encoding/json"
	"maps"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/floodgate/floodgate/internal/poll"
	"github.com/floodgate/floodgate/loadgen"
	"github.com/floodgate/floodgate/runfolder"
)

// A process's memory and CPU time are read from its /proc pages; a truncated
// or garbled page is an error, never a panic.
func TestProcStatsReadsProcOrSaysWhatIsWrong(t *testing.T) {
	t.Parallel()
	// utime 250 and stime 50 ticks: fields 14 and 15 of the line.
	stat := "1234 (my (odd) cmd) S 1 1234 1234 0 -1 4194560 100 0 0 0 250 50 0 0 20 0 1 0 100 1000 10\n"
	status := "Name:\tsh\nVmPeak:\t  9000 kB\nVmRSS:\t  2048 kB\nThreads:\t1\n"
	for _, tc := range []struct {
		name, status, stat string
		rss                int64
		cpu                float64
		wantErr            string
	}{
		{name: "a process", status: status, stat: stat, rss: 2 << 20, cpu: 3},
		{name: "a kernel thread has no VmRSS", status: "Name:\tkthreadd\n", stat: stat, rss: 0, cpu: 3},
		{name: "VmRSS without a value", status: "VmRSS:\n", stat: stat, wantErr: "VmRSS without a value"},
		{name: "VmRSS garbled", status: "VmRSS:\tlots kB\n", stat: stat, wantErr: "status: VmRSS"},
		{name: "stat cut after the name", status: status, stat: "1234 (sh)", wantErr: "no fields after the command name"},
		{name: "stat without a name", status: status, stat: "1234 sh S 1", wantErr: "no fields after the command name"},
		{name: "stat cut short", status: status, stat: "1234 (sh) S 1 1234 1234 0", wantErr: "5 fields after the command name, want at least 13"},
		{name: "CPU times garbled", status: status, stat: strings.Replace(stat, " 250 50 ", " x 50 ", 1), wantErr: "stat: CPU times"},
		{name: "empty pages", wantErr: "no fields after the command name"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rss, cpu, err := parseProcStats([]byte(tc.status), []byte(tc.stat))
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error %v, want one saying %q", err, tc.wantErr)
				}
				return
			}
			if err != nil || rss != tc.rss || cpu != tc.cpu {
				t.Fatalf("rss %d, cpu %v, err %v; want %d, %v", rss, cpu, err, tc.rss, tc.cpu)
			}
		})
	}
	if rss, _, err := procStats(os.Getpid()); err != nil || rss <= 0 {
		t.Fatalf("this process: rss %d, %v", rss, err)
	}
	if _, _, err := procStats(-1); err == nil {
		t.Fatal("a process that does not exist has stats")
	}
}

// The runner's progress sums the agents' latest snapshots, keeps the peak of
// connected clients (never lowering it), and reaches the progress callback.
func TestProgressSumsTheAgentsAndKeepsThePeak(t *testing.T) {
	t.Parallel()
	var got []Progress
	r := newRunner(Options{Scenario: mustParse(t, timedFaults), Progress: func(p Progress) { got = append(got, p) }}, newFakeClock())
	snap := func(active int, sent, delivered, lost, failed, dup, phantom, mis, reconnects uint64) loadgen.Snapshot {
		return loadgen.Snapshot{Phase: "one", Active: active, Reconnects: reconnects, Counts: loadgen.Counts{Sent: sent, Delivered: delivered,
			Lost: lost, Failed: failed, Duplicates: dup, Phantom: phantom, Misdelivered: mis}}
	}
	r.snaps["agent-0"] = snap(4, 100, 90, 5, 5, 1, 0, 0, 2)
	r.snaps["agent-1"] = snap(3, 50, 40, 0, 10, 0, 2, 3, 1)
	r.noteProgress()
	want := Progress{Phase: "one", Clients: 10, Active: 7, Sent: 150, Delivered: 130, Lost: 5, Failed: 15, Reconnects: 3,
		Duplicates: 1, Phantom: 2, Misdelivered: 3}
	if len(got) != 1 || got[0] != want {
		t.Fatalf("progress %+v, want %+v", got, want)
	}
	peakAt := r.info.Peak.At
	if r.info.Peak.Established != 7 || peakAt.IsZero() {
		t.Fatalf("peak %+v, want 7", r.info.Peak)
	}
	r.snaps["agent-1"] = snap(1, 60, 50, 0, 10, 0, 2, 3, 1)
	r.noteProgress()
	if r.info.Peak.Established != 7 || !r.info.Peak.At.Equal(peakAt) || got[1].Active != 5 {
		t.Fatalf("after a drop to 5 active: peak %+v, progress %+v", r.info.Peak, got[1])
	}
}

// An agent's progress lines are kept (the latest as its snapshot, each in
// progress.jsonl); a truncated or foreign line is skipped, and the end of its
// output ends the reading.
func TestAgentOutputKeepsProgressAndSkipsTheRest(t *testing.T) {
	t.Parallel()
	r := newRunner(Options{Scenario: mustParse(t, timedFaults), Dir: t.TempDir()}, newFakeClock())
	p := &proc{spec: spec{name: "agent-0", role: "agent"}, lines: make(chan string, 8), exited: make(chan struct{})}
	for _, l := range []string{
		`{"event":"progress","phase":"one","active":3,"messages":{"sent":10}}`,
		`{"event":"progress","phase":"one","act`, // cut off as the agent died
		``,
		`not json at all`,
		`{"event":"result","result":{"agent":"agent-0"}}`,
		`{"event":"progress","phase":"two","active":5,"messages":{"sent":20}}`,
	} {
		p.lines <- l
	}
	close(p.lines)
	done := make(chan struct{})
	go func() { r.readAgent(p); close(done) }()
	select {
	case <-done:
	case <-time.After(settle):
		t.Fatal("readAgent did not return at the end of the output")
	}
	if s := r.snaps["agent-0"]; s.Phase != "two" || s.Active != 5 || s.Counts.Sent != 20 {
		t.Fatalf("snapshot %+v, want the last progress line's", s)
	}
	f, err := os.Open(filepath.Join(r.dir, runfolder.FileProgress))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var phases []string
	for sc := bufio.NewScanner(f); sc.Scan(); {
		var s runfolder.ProgressSample
		if err := json.Unmarshal(sc.Bytes(), &s); err != nil {
			t.Fatalf("progress.jsonl line %q: %v", sc.Text(), err)
		}
		phases = append(phases, s.Phase)
	}
	if strings.Join(phases, ",") != "one,two" {
		t.Fatalf("progress.jsonl holds phases %v, want one,two", phases)
	}
}

// A /metrics page is read into name{labels} → value for the runner's families
// only, histograms as their sum and count; a page that is not one is an error.
func TestScrapeKeepsTheRunnersFamilies(t *testing.T) {
	t.Parallel()
	page := `# TYPE floodgate_conns gauge
floodgate_conns{gateway="gw-1",kind="ws"} 12
# TYPE floodgate_sent_total counter
floodgate_sent_total 7
# TYPE floodgate_push_seconds histogram
floodgate_push_seconds_bucket{le="0.1"} 3
floodgate_push_seconds_bucket{le="+Inf"} 4
floodgate_push_seconds_sum 0.5
floodgate_push_seconds_count 4
# TYPE process_open_fds untyped
process_open_fds 30
# TYPE go_memstats_heap_inuse_bytes gauge
go_memstats_heap_inuse_bytes 1e+06
# TYPE go_goroutines gauge
go_goroutines 9
# TYPE http_requests_total counter
http_requests_total 100
`
	for _, tc := range []struct {
		name, page string
		status     int
		want       map[string]float64
		wantErr    bool
	}{
		{name: "a page", page: page, status: http.StatusOK, want: map[string]float64{
			`floodgate_conns{gateway="gw-1",kind="ws"}`: 12, "floodgate_sent_total": 7, "floodgate_push_seconds_sum": 0.5,
			"floodgate_push_seconds_count": 4, "process_open_fds": 30, "go_memstats_heap_inuse_bytes": 1e6}},
		{name: "a garbled page", page: "floodgate_x{ 1\n", status: http.StatusOK, wantErr: true},
		{name: "an empty page", page: "", status: http.StatusOK, want: map[string]float64{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
				w.WriteHeader(tc.status)
				w.Write([]byte(tc.page))
			}))
			defer srv.Close()
			r := &runner{http: &http.Client{Timeout: 5 * time.Second, Transport: plainTransport()}}
			m, err := r.scrape(context.Background(), strings.TrimPrefix(srv.URL, "http://"))
			if (err != nil) != tc.wantErr {
				t.Fatalf("scrape: %v, want an error: %v", err, tc.wantErr)
			}
			if !tc.wantErr && !maps.Equal(m, tc.want) {
				t.Fatalf("scraped %v, want %v", m, tc.want)
			}
		})
	}
	r := &runner{http: &http.Client{Timeout: 5 * time.Second, Transport: plainTransport()}}
	if _, err := r.scrape(context.Background(), "127.0.0.1:1"); err == nil {
		t.Fatal("a scrape of nothing succeeded")
	}
}

// A Redis server's INFO becomes the runner's Redis series; keys count 0 in an
// empty database.
func TestRedisInfoBecomesSeries(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, info string
		want       map[string]float64
	}{
		{"a primary with keys", "# Stats\r\ntotal_commands_processed:1234\r\n# Replication\r\nrole:master\r\n# Memory\r\nused_memory:2048\r\n" +
			"# Clients\r\nconnected_clients:7\r\n# Keyspace\r\ndb0:keys=42,expires=0,avg_ttl=0\r\n",
			map[string]float64{metricRedisCommands: 1234, metricRedisPrimary: 1, metricRedisMemory: 2048, metricRedisClients: 7, metricRedisKeys: 42}},
		{"an empty replica", "role:slave\r\nconnected_clients:1\r\n",
			map[string]float64{metricRedisPrimary: 0, metricRedisClients: 1, metricRedisKeys: 0}},
		{"nothing it knows", "# Server\r\nredis_version:7.2.4\r\ngarbage\r\n", map[string]float64{metricRedisKeys: 0}},
	} {
		if got := parseRedisInfo(tc.info); !maps.Equal(got, tc.want) {
			t.Errorf("%s: %v, want %v", tc.name, got, tc.want)
		}
	}
}

// Each second the runner samples every live process's resources and its
// metrics, into the run folder; a run folder it cannot write to costs the
// samples, not the run.
func TestCollectSamplesEveryLiveProcess(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Write([]byte("# TYPE floodgate_x counter\nfloodgate_x 3\n"))
	}))
	defer srv.Close()
	for _, tc := range []struct {
		name    string
		noDir   bool
		samples bool
	}{
		{name: "a run folder", samples: true},
		{name: "a run folder gone", noDir: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := newTestRunner(t, timedFaults, newFakeClock())
			p, err := r.start(context.Background(), spec{name: "state", role: "state", host: r.net.Host("core"), bin: "sleep", args: []string{"60"},
				admin: strings.TrimPrefix(srv.URL, "http://")})
			if err != nil {
				t.Fatal(err)
			}
			if tc.noDir {
				r.dir = filepath.Join(r.dir, "gone")
			}
			reported := make(chan struct{}, 1)
			r.opts.Progress = func(Progress) {
				select {
				case reported <- struct{}{}:
				default:
				}
			}
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan struct{})
			go func() { r.collect(ctx); close(done) }()
			select {
			case <-reported: // one round of samples taken
			case <-time.After(settle):
				t.Fatal("collect reported no progress")
			}
			if tc.samples {
				poll.True(t, settle, "a process sample and a metrics sample of state", func() bool {
					procs, _ := os.ReadFile(filepath.Join(r.dir, runfolder.FileProcesses))
					metrics, _ := os.ReadFile(filepath.Join(r.dir, runfolder.FileMetrics))
					return strings.Contains(string(procs), `"process":"state"`) && strings.Contains(string(metrics), `"floodgate_x":3`)
				})
			}
			cancel()
			<-done
			if !p.alive() {
				t.Fatal("collecting ended the process")
			}
		})
	}
}
