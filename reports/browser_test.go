package reports

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/floodgate/floodgate/internal/headless"
)

// The report of a synthetic run, plots included, opens in headless Chromium with
// no console error, uncaught exception or failed resource, and every image on it
// renders. Then, with one plot deleted, the same check fails naming it: the
// check can fail. (Thrown errors and console.error being caught is
// internal/headless's TestOpenReportsEachFault.)
func TestReportOpensInBrowser(t *testing.T) {
	headless.Binary(t) // skip (or fail, in CI) before drawing any plot
	// A small run: plots are slow to draw under -race, and one of each kind
	// this run has is enough for the browser.
	f := newFixture(t, fxPhase{name: "steady", secs: 5, rate: 100})
	if _, err := Build(f.write()); err != nil {
		t.Fatal(err)
	}
	page, err := os.ReadFile(filepath.Join(f.dir, FileHTML))
	if err != nil {
		t.Fatal(err)
	}
	imgs := strings.Count(string(page), "<img ")
	t.Run("as built", func(t *testing.T) {
		res := headless.Open(t, f.dir, FileHTML, 20*time.Second)
		if p := res.Problems(); len(p) > 0 {
			t.Fatalf("%s in the browser:\n%s", FileHTML, strings.Join(p, "\n"))
		}
		// Every plot the page has was checked, and it has some.
		if imgs == 0 || len(res.Images) != imgs {
			t.Fatalf("the browser saw %d images, the page has %d: %+v", len(res.Images), imgs, res.Images)
		}
	})
	t.Run("plot deleted", func(t *testing.T) {
		const gone = "resources.png"
		if err := os.Remove(filepath.Join(f.dir, gone)); err != nil {
			t.Fatal(err)
		}
		res := headless.Open(t, f.dir, FileHTML, 20*time.Second)
		if b := res.Broken(); !slices.Equal(b, []string{gone}) {
			t.Fatalf("broken images %q, want exactly [%s]", b, gone)
		}
		if !slices.ContainsFunc(res.Problems(), func(p string) bool { return strings.Contains(p, gone) }) {
			t.Fatalf("problems %q do not name %s", res.Problems(), gone)
		}
	})
}
