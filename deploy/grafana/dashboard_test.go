package grafana

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/floodgate/floodgate/gateway/stack"
)

// dsVar is the datasource variable every panel and query uses.
const dsVar = "${DS_PROMETHEUS}"

// dashboard is the part of Grafana's dashboard JSON model the tests read.
type dashboard struct {
	SchemaVersion int `json:"schemaVersion"`
	Templating    struct {
		List []variable `json:"list"`
	} `json:"templating"`
	Panels []panel `json:"panels"`
}

// variable is a dashboard template variable.
type variable struct {
	Name  string `json:"name"`
	Type  string `json:"type"`
	Query string `json:"query"`
}

// datasource is a panel's or a query's datasource reference.
type datasource struct {
	Type string `json:"type"`
	UID  string `json:"uid"`
}

// panel is one dashboard panel and its PromQL queries.
type panel struct {
	ID         int         `json:"id"`
	Title      string      `json:"title"`
	Datasource *datasource `json:"datasource"`
	Targets    []target    `json:"targets"`
}

// target is one query of a panel.
type target struct {
	Expr       string      `json:"expr"`
	RefID      string      `json:"refId"`
	Datasource *datasource `json:"datasource"`
}

// loadDashboard reads and decodes floodgate.json.
func loadDashboard(t *testing.T) dashboard {
	t.Helper()
	b, err := os.ReadFile("floodgate.json")
	if err != nil {
		t.Fatal(err)
	}
	var d dashboard
	if err := json.Unmarshal(b, &d); err != nil {
		t.Fatalf("floodgate.json: %v", err)
	}
	return d
}

// metricRef matches the metric names a query can reference: Floodgate's own,
// and the Go and process collectors'. PromQL functions (rate,
// histogram_quantile), label names and $__rate_interval never match: none starts
// with these prefixes.
var metricRef = regexp.MustCompile(`\b(?:floodgate_[a-z0-9_]+|process_[a-z_]+|go_[a-z_]+)\b`)

// metricNames returns the metric names expr references, sorted and unique.
func metricNames(expr string) []string {
	names := metricRef.FindAllString(expr, -1)
	slices.Sort(names)
	return slices.Compact(names)
}

// exposedNames reads a text exposition and returns the series names it makes
// queryable: each family's name (from its # TYPE line), plus _bucket, _sum and
// _count for a histogram and _sum and _count for a summary, as the exposition
// writes their series.
func exposedNames(exposition string) map[string]bool {
	names := map[string]bool{}
	sc := bufio.NewScanner(strings.NewReader(exposition))
	sc.Buffer(make([]byte, 0, 64*1024), 1024*1024)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) != 4 || f[0] != "#" || f[1] != "TYPE" {
			continue
		}
		name := f[2]
		names[name] = true
		switch f[3] {
		case "histogram":
			names[name+"_bucket"], names[name+"_sum"], names[name+"_count"] = true, true, true
		case "summary":
			names[name+"_sum"], names[name+"_count"] = true, true
		}
	}
	return names
}

// unexposed returns, for each query of d naming a metric not in exposed, one
// line saying which panel and metric.
func unexposed(d dashboard, exposed map[string]bool) []string {
	var out []string
	for _, p := range d.Panels {
		for _, tg := range p.Targets {
			for _, n := range metricNames(tg.Expr) {
				if !exposed[n] {
					out = append(out, fmt.Sprintf("panel %d %q query %s: %s", p.ID, p.Title, tg.RefID, n))
				}
			}
		}
	}
	return out
}

// scrape returns the body of GET url.
func scrape(t *testing.T, url string) string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %d %v", url, resp.StatusCode, err)
	}
	return string(b)
}

// Every metric the dashboard queries is exposed by some role of a running stack,
// started as `floodgate up` starts it; its one admin address serves every role's
// series (state, msg, router, ipconf, control, each gateway and its reactor, Go
// and process).
func TestDashboardQueriesOnlyExposedMetrics(t *testing.T) {
	d := loadDashboard(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	s, err := stack.Up(ctx, stack.Config{Gateways: 2, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("stack stopped with errors: %v", err)
		}
	})
	exposed := exposedNames(scrape(t, s.Admin+"/metrics"))
	if miss := unexposed(d, exposed); len(miss) > 0 {
		t.Fatalf("the dashboard queries metrics no role exposes:\n%s", strings.Join(miss, "\n"))
	}
	// The check looked at something: the dashboard queries at least one metric
	// of each kind of role.
	var refs []string
	for _, p := range d.Panels {
		for _, tg := range p.Targets {
			refs = append(refs, metricNames(tg.Expr)...)
		}
	}
	for _, prefix := range []string{"floodgate_reactor_", "floodgate_gateway_", "floodgate_msg_", "floodgate_router_",
		"floodgate_state_", "floodgate_link_", "floodgate_control_", "process_", "go_"} {
		if !slices.ContainsFunc(refs, func(n string) bool { return strings.HasPrefix(n, prefix) }) {
			t.Errorf("the dashboard queries no %s* metric", prefix)
		}
	}
}

// The dashboard is well formed for import: schema 39, a Prometheus datasource
// variable, unique panel ids, and every panel and query on that datasource with
// a query that names a metric.
func TestDashboardPanelsWellFormed(t *testing.T) {
	d := loadDashboard(t)
	if d.SchemaVersion != 39 {
		t.Errorf("schemaVersion %d, want 39", d.SchemaVersion)
	}
	if !slices.ContainsFunc(d.Templating.List, func(v variable) bool {
		return v.Name == "DS_PROMETHEUS" && v.Type == "datasource" && v.Query == "prometheus"
	}) {
		t.Error("no datasource variable DS_PROMETHEUS of type prometheus")
	}
	if len(d.Panels) == 0 {
		t.Fatal("no panels")
	}
	ids := map[int]string{}
	for _, p := range d.Panels {
		if prev, dup := ids[p.ID]; dup || p.ID <= 0 {
			t.Errorf("panel %q: id %d not unique and positive (also %q)", p.Title, p.ID, prev)
		}
		ids[p.ID] = p.Title
		if p.Datasource == nil || p.Datasource.UID != dsVar || p.Datasource.Type != "prometheus" {
			t.Errorf("panel %d %q: datasource %+v, want prometheus %s", p.ID, p.Title, p.Datasource, dsVar)
		}
		if len(p.Targets) == 0 {
			t.Errorf("panel %d %q has no query", p.ID, p.Title)
		}
		for _, tg := range p.Targets {
			if tg.Datasource == nil || tg.Datasource.UID != dsVar {
				t.Errorf("panel %d %q query %s: datasource %+v, want %s", p.ID, p.Title, tg.RefID, tg.Datasource, dsVar)
			}
			if len(metricNames(tg.Expr)) == 0 {
				t.Errorf("panel %d %q query %s names no metric: %q", p.ID, p.Title, tg.RefID, tg.Expr)
			}
		}
	}
}

// The extraction finds the names a query references, and the check reports a
// name the exposition lacks, a histogram's series being exposed and a gauge's
// _bucket not: the check can fail.
func TestUnexposedNamesTheMissingMetric(t *testing.T) {
	const exposition = "# HELP a_gauge x\n# TYPE floodgate_a gauge\nfloodgate_a 1\n" +
		"# TYPE floodgate_h_seconds histogram\nfloodgate_h_seconds_bucket{le=\"+Inf\"} 0\n" +
		"# TYPE go_gc_duration_seconds summary\n"
	exposed := exposedNames(exposition)
	cases := []struct {
		expr string
		want []string // metric names referenced
		miss []string // of those, the unexposed
	}{
		{`sum by (gateway) (floodgate_a)`, []string{"floodgate_a"}, nil},
		{`histogram_quantile(0.99, sum by (le) (rate(floodgate_h_seconds_bucket[$__rate_interval])))`, []string{"floodgate_h_seconds_bucket"}, nil},
		{`rate(floodgate_h_seconds_sum[1m]) / rate(floodgate_h_seconds_count[1m])`, []string{"floodgate_h_seconds_count", "floodgate_h_seconds_sum"}, nil},
		{`go_gc_duration_seconds_count + go_gc_duration_seconds`, []string{"go_gc_duration_seconds", "go_gc_duration_seconds_count"}, nil},
		{`rate(floodgate_a_bucket[1m])`, []string{"floodgate_a_bucket"}, []string{"floodgate_a_bucket"}},
		{`floodgate_a + floodgate_nope_total{reason="x"}`, []string{"floodgate_a", "floodgate_nope_total"}, []string{"floodgate_nope_total"}},
		{`process_resident_memory_bytes`, []string{"process_resident_memory_bytes"}, []string{"process_resident_memory_bytes"}},
	}
	for _, c := range cases {
		t.Run(c.expr, func(t *testing.T) {
			if got := metricNames(c.expr); !slices.Equal(got, c.want) {
				t.Fatalf("metricNames = %q, want %q", got, c.want)
			}
			d := dashboard{Panels: []panel{{ID: 1, Title: "p", Targets: []target{{Expr: c.expr, RefID: "A"}}}}}
			got := unexposed(d, exposed)
			if len(got) != len(c.miss) {
				t.Fatalf("unexposed = %q, want %d naming %q", got, len(c.miss), c.miss)
			}
			for i, m := range c.miss {
				if !strings.HasSuffix(got[i], ": "+m) {
					t.Fatalf("unexposed[%d] = %q, want it to name %s", i, got[i], m)
				}
			}
		})
	}
}

// metricNames returns only names that occur in the query and match the
// documented pattern.
func FuzzMetricNames(f *testing.F) {
	for _, s := range []string{"sum(rate(floodgate_x_total[5m]))", "go_goroutines", "process_cpu_seconds_total{job=\"a\"}",
		"histogram_quantile(0.5, floodgate_h_bucket)", "", "floodgate_", "xgo_y floodgate_A"} {
		f.Add(s)
	}
	whole := regexp.MustCompile(`^(?:floodgate_[a-z0-9_]+|process_[a-z_]+|go_[a-z_]+)$`)
	f.Fuzz(func(t *testing.T, expr string) {
		for _, n := range metricNames(expr) {
			if !whole.MatchString(n) || !strings.Contains(expr, n) {
				t.Fatalf("metricNames(%q) returned %q", expr, n)
			}
		}
	})
}
