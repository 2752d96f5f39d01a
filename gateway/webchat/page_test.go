package webchat

import (
	"bytes"
	"encoding/xml"
	"errors"
	"io"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// elementsOf parses the page's markup with encoding/xml in strict mode (the page
// is written as polyglot markup: void elements self-closed, attributes quoted
// and valued), the bodies of <script> and <style> blanked first since they are
// not markup. It returns the elements' names in document order and every
// attribute as name=value, and fails on markup that does not nest.
func elementsOf(t *testing.T, page string) (names, attrs []string) {
	t.Helper()
	blank := regexp.MustCompile(`(?s)(<(script|style)[^>]*>).*?(</(script|style)>)`)
	markup := blank.ReplaceAllString(page, "$1$3")
	markup = strings.TrimPrefix(markup, "<!DOCTYPE html>")
	d := xml.NewDecoder(strings.NewReader(markup))
	d.Entity = xml.HTMLEntity
	var open []string
	for {
		tok, err := d.Token()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("page does not tokenize: %v", err)
		}
		switch tk := tok.(type) {
		case xml.StartElement:
			names = append(names, tk.Name.Local)
			open = append(open, tk.Name.Local)
			for _, a := range tk.Attr {
				attrs = append(attrs, a.Name.Local+"="+a.Value)
			}
		case xml.EndElement:
			if len(open) == 0 || open[len(open)-1] != tk.Name.Local {
				t.Fatalf("</%s> closes %v", tk.Name.Local, open)
			}
			open = open[:len(open)-1]
		}
	}
	if len(open) != 0 {
		t.Fatalf("elements left open: %v", open)
	}
	return names, attrs
}

// The embedded page is one well-nested HTML document with the ids its script
// and the browser test use, one inline script and style, and nothing it would
// fetch from elsewhere.
func TestPageIsSelfContainedHTML(t *testing.T) {
	p := string(Page())
	if !strings.HasPrefix(p, "<!DOCTYPE html>") {
		t.Fatalf("page does not start with <!DOCTYPE html>: %.40q", p)
	}
	names, attrs := elementsOf(t, p)
	for _, id := range []string{"status", "selftest", "messages", "compose", "to", "text", "send"} {
		if !slices.Contains(attrs, "id="+id) {
			t.Errorf("no element with id %q", id)
		}
	}
	for _, el := range []string{"script", "style"} {
		if n := strings.Count(strings.Join(names, " ")+" ", el+" "); n != 1 {
			t.Errorf("%d <%s> elements, want 1 inline", n, el)
		}
	}
	for _, a := range attrs {
		if name, _, _ := strings.Cut(a, "="); name == "src" || name == "href" || name == "action" {
			t.Errorf("attribute %s loads or leaves for a resource", a)
		}
	}
	external := regexp.MustCompile(`https?://|@import|url\(|import\(|importScripts|fetch\(|XMLHttpRequest|<link|<iframe`)
	if m := external.FindAllString(p, -1); len(m) != 0 {
		t.Errorf("page refers to external resources: %q", m)
	}
}

// Page hands out copies: changing one does not change the next.
func TestPageReturnsACopy(t *testing.T) {
	a := Page()
	a[0] = 'X'
	if b := Page(); b[0] != '<' || bytes.Equal(a, b) {
		t.Fatalf("Page shares its bytes: %.10q", b)
	}
}
