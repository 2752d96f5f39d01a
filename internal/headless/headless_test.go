package headless

import (
	"bytes"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"
)

// writeFiles writes name → content into a new directory and returns it.
func writeFiles(t *testing.T, files map[string][]byte) string {
	t.Helper()
	dir := t.TempDir()
	for name, b := range files {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// onePixelPNG is a valid 1×1 PNG.
func onePixelPNG(t *testing.T) []byte {
	t.Helper()
	img := image.NewRGBA(image.Rect(0, 0, 1, 1))
	img.Set(0, 0, color.Black)
	var b bytes.Buffer
	if err := png.Encode(&b, img); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// The probe is injected right after <head>, before the page's own scripts.
func TestInjectPutsProbeFirstInHead(t *testing.T) {
	cases := []struct{ name, page string }{
		{"head", `<!DOCTYPE html><html><head><script>x()</script></head><body></body></html>`},
		{"head with attributes", `<html><HEAD lang="en"><script>x()</script></HEAD></html>`},
		{"no head", `<script>x()</script>`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			out := string(inject([]byte(c.page)))
			p, s := strings.Index(out, probePath), strings.Index(out, "x()")
			if p < 0 || s < 0 || p > s {
				t.Fatalf("probe not before the page's script:\n%s", out)
			}
			if strings.Count(out, "x()") != 1 || len(out) != len(c.page)+len(probe) {
				t.Fatalf("page altered beyond the probe:\n%s", out)
			}
		})
	}
}

// Each kind of fault a page can have is reported, and a clean page reports none:
// the checker can fail.
func TestOpenReportsEachFault(t *testing.T) {
	Binary(t) // one skip (or failure) for the test, not one per case
	pngData := onePixelPNG(t)
	cases := []struct {
		name string
		body string
		want string // substring of one problem; "" means no problems
	}{
		{"clean", `<img src="ok.png">`, ""},
		{"missing image", `<img src="ok.png"><img src="missing.png">`, "missing.png"},
		{"undecodable image", `<img src="bad.png">`, "bad.png"},
		{"uncaught exception", `<script>throw new Error("boom-uncaught")</script>`, "boom-uncaught"},
		{"console.error", `<script>console.error("boom-console")</script>`, "boom-console"},
		{"unhandled rejection", `<script>Promise.reject("boom-rejected")</script>`, "boom-rejected"},
	}
	files := map[string][]byte{"ok.png": pngData, "bad.png": []byte("not a png")}
	for _, c := range cases {
		files[c.name+".html"] = []byte(`<!DOCTYPE html><html><head><meta charset="utf-8"><title>t</title></head><body>` + c.body + `</body></html>`)
	}
	dir := writeFiles(t, files)
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			res := Open(t, dir, c.name+".html", 20*time.Second)
			probs := res.Problems()
			if c.want == "" {
				if len(probs) != 0 || len(res.Images) != 1 {
					t.Fatalf("clean page: problems %q, images %+v", probs, res.Images)
				}
				return
			}
			if !slices.ContainsFunc(probs, func(p string) bool { return strings.Contains(p, c.want) }) {
				t.Fatalf("no problem mentions %q; got %q", c.want, probs)
			}
		})
	}
}

// A page that sets window.headlessDone is reported once the promise settles: its
// value in Result.Value, a rejection (early or late) as exactly one error, and
// the errors it logs while the probe waits are kept.
func TestOpenWaitsForHeadlessDone(t *testing.T) {
	Binary(t)
	cases := []struct {
		name      string
		script    string
		wantValue string
		wantErrs  []string // each a substring of one error, in order; nil means none
	}{
		{"resolves after a timer",
			`window.headlessDone=new Promise(function(ok){setTimeout(function(){ok("v-timer")},300)});`,
			"v-timer", nil},
		{"resolves to a non-string",
			`window.headlessDone=new Promise(function(ok){setTimeout(function(){ok(42)},50)});`,
			"42", nil},
		{"rejects after a timer",
			`window.headlessDone=new Promise(function(_,no){setTimeout(function(){no(new Error("boom-late"))},300)});`,
			"", []string{"headlessDone rejected: Error: boom-late"}},
		{"rejects while loading",
			`window.headlessDone=Promise.reject("boom-early");`,
			"", []string{"headlessDone rejected: boom-early"}},
		{"logs while it waits",
			`window.headlessDone=new Promise(function(ok){setTimeout(function(){console.error("boom-waiting");ok("after")},300)});`,
			"after", []string{"console.error: boom-waiting"}},
		{"not a promise",
			`window.headlessDone=5;`,
			"", []string{"window.headlessDone is not a Promise: 5"}},
	}
	files := map[string][]byte{}
	for i, c := range cases {
		files[fmt.Sprintf("p%d.html", i)] = []byte(`<!DOCTYPE html><html><head><meta charset="utf-8"><title>t</title></head><body><script>` + c.script + `</script></body></html>`)
	}
	dir := writeFiles(t, files)
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			res := Open(t, dir, fmt.Sprintf("p%d.html", i), 20*time.Second)
			if res.Value != c.wantValue {
				t.Errorf("Value = %q, want %q", res.Value, c.wantValue)
			}
			if len(res.Errors) != len(c.wantErrs) {
				t.Fatalf("errors %q, want one each matching %q", res.Errors, c.wantErrs)
			}
			for j, w := range c.wantErrs {
				if !strings.Contains(res.Errors[j], w) {
					t.Errorf("error %d = %q, want it to contain %q", j, res.Errors[j], w)
				}
			}
		})
	}
}

// A page without headlessDone still reports at load, with an empty Value: Open
// does not wait for the page's later timers.
func TestOpenWithoutHeadlessDoneReportsAtLoad(t *testing.T) {
	Binary(t)
	dir := writeFiles(t, map[string][]byte{"late.html": []byte(`<!DOCTYPE html><html><head><title>t</title></head><body>` +
		`<script>setTimeout(function(){console.error("boom-after-report")},60000)</script></body></html>`)})
	res := Open(t, dir, "late.html", 20*time.Second)
	if len(res.Problems()) != 0 || res.Value != "" {
		t.Fatalf("problems %q, value %q; want none", res.Problems(), res.Value)
	}
}

// fatalRecorder is a testing.TB whose Fatalf records the message and ends only
// the calling goroutine, so that a test can watch Open fail.
type fatalRecorder struct {
	testing.TB
	msg string
}

func (r *fatalRecorder) Fatalf(format string, args ...any) {
	r.msg = fmt.Sprintf(format, args...)
	runtime.Goexit()
}

// A browser that exits before the page reported (here the page closes its own
// window while headlessDone is pending) fails Open promptly, naming the exit,
// instead of leaving it waiting.
func TestOpenFailsWhenChromiumExitsFirst(t *testing.T) {
	Binary(t)
	dir := writeFiles(t, map[string][]byte{"close.html": []byte(`<!DOCTYPE html><html><head><title>t</title></head><body>` +
		`<script>window.headlessDone=new Promise(function(){});setTimeout(function(){window.close()},100)</script></body></html>`)})
	rec := &fatalRecorder{TB: t}
	done := make(chan struct{})
	go func() {
		defer close(done)
		Open(rec, dir, "close.html", 20*time.Second)
	}()
	select {
	case <-done:
	case <-time.After(40 * time.Second):
		t.Fatal("Open did not return within 40s of a 20s timeout")
	}
	if !strings.Contains(rec.msg, "chromium exited") {
		t.Fatalf("Open failed with %q, want it to report chromium's exit", rec.msg)
	}
}
