package progress

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/floodgate/floodgate/internal/poll"
	"github.com/floodgate/floodgate/internal/syncbuf"
	"github.com/vbauerster/mpb/v8"
)

// A plain display prints a time-stamped line on its first update and then at
// most once every Every; an update without a line prints nothing but uses up
// its turn, as a run before its first phase does.
func TestPlainDisplayPrintsALineAtMostEveryPeriod(t *testing.T) {
	stamp := regexp.MustCompile(`^\d\d:\d\d:\d\d `)
	for _, tc := range []struct {
		name  string
		steps []struct {
			line   string
			turnUp bool // the period has passed since the last due update
		}
		want []string
	}{
		{"first update prints, the next waits", []struct {
			line   string
			turnUp bool
		}{{"one", false}, {"two", false}}, []string{"one"}},
		{"a line each period", []struct {
			line   string
			turnUp bool
		}{{"one", false}, {"two", true}, {"three", false}, {"four", true}}, []string{"one", "two", "four"}},
		{"an empty line uses up the turn", []struct {
			line   string
			turnUp bool
		}{{"", false}, {"two", false}, {"three", true}}, []string{"three"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out bytes.Buffer
			d, err := New(&out, Plain, Options{Label: "connected ", Total: 10, Every: time.Hour})
			if err != nil {
				t.Fatal(err)
			}
			for _, s := range tc.steps {
				if s.turnUp {
					d.lastAt = d.lastAt.Add(-time.Hour) // as if the hour had passed
				}
				d.Update(State{Connected: 3, Line: s.line})
			}
			d.Close()
			var got []string
			for _, l := range strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n") {
				if l == "" {
					continue
				}
				if !stamp.MatchString(l) {
					t.Fatalf("line %q does not start with the time of day", l)
				}
				got = append(got, l[len("15:04:05 "):])
			}
			if strings.Join(got, "|") != strings.Join(tc.want, "|") {
				t.Fatalf("lines %q, want %q", got, tc.want)
			}
		})
	}
}

// Bars show the connections made of the total under the label, and the status
// (after the delivered-of-sent bar, when asked for); closing draws the
// connections bar complete.
func TestBarsShowConnectionsAndStatus(t *testing.T) {
	for _, tc := range []struct {
		name     string
		messages bool
		want     []string
	}{
		{"status alone", false, []string{"established", "4 / 10", "phase steady"}},
		{"messages bar", true, []string{"established", "4 / 10", "delivered", "7 / 9", "phase steady"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out syncbuf.Buffer
			d, err := newDisplay(&out, Bars, Options{Label: "established ", Total: 10, Messages: tc.messages}, mpb.WithAutoRefresh())
			if err != nil {
				t.Fatal(err)
			}
			d.Update(State{Connected: 4, Sent: 9, Delivered: 7, Status: "phase steady", Line: "never printed"})
			poll.Until(t, 10*time.Second, "the bars drawn", func() (bool, string) {
				got := out.String()
				for _, w := range tc.want {
					if !strings.Contains(got, w) {
						return false, fmt.Sprintf("%q lacks %q", got, w)
					}
				}
				return true, ""
			})
			d.Close()
			got := out.String()
			if !strings.Contains(got, "established   4 / 4 ") {
				t.Errorf("closed bars %q: want the connections bar drawn complete", got)
			}
			if strings.Contains(got, "never printed") || (!tc.messages && strings.Contains(got, "delivered")) {
				t.Errorf("bars %q show what they should not", got)
			}
		})
	}
}

// Auto is bars on a terminal only; an unknown mode is refused.
func TestModes(t *testing.T) {
	file, err := os.Create(filepath.Join(t.TempDir(), "out"))
	if err != nil {
		t.Fatal(err)
	}
	defer file.Close()
	for _, tc := range []struct {
		name     string
		w        any
		terminal bool
	}{{"a buffer", &bytes.Buffer{}, false}, {"a regular file", file, false}} {
		w := tc.w.(interface{ Write([]byte) (int, error) })
		if got := IsTerminal(w); got != tc.terminal {
			t.Errorf("%s: terminal %v", tc.name, got)
		}
		d, err := New(w, Auto, Options{})
		if err != nil || d.p != nil {
			t.Errorf("%s: auto mode gave bars (%v)", tc.name, err)
		}
	}
	if _, err := New(&bytes.Buffer{}, "fancy", Options{}); err == nil || !strings.Contains(err.Error(), "fancy") {
		t.Fatalf("an unknown mode: %v", err)
	}
}
