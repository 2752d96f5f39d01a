package reports

import (
	"bytes"
	"embed"
	"fmt"
	"html/template"
	"strings"
)

//go:embed templates/report.html.tmpl
var templates embed.FS

// renderHTML renders the report as index.html: one self-contained page (inline
// style, no scripts, nothing fetched) with the PNGs beside it, so it opens from
// disk and from a CI artifact store alike.
func renderHTML(d document) ([]byte, error) {
	funcs := template.FuncMap{
		"upper": strings.ToUpper,
		"status": func(t table, i int) string {
			if i < len(t.Status) {
				return t.Status[i]
			}
			return ""
		},
		"mark": func(s string) string {
			if s == "pass" {
				return "✔ pass"
			}
			return "✘ FAIL"
		},
		"nonEmpty": func(head []string) bool {
			for _, h := range head {
				if h != "" {
					return true
				}
			}
			return false
		},
	}
	t, err := template.New("report.html.tmpl").Funcs(funcs).ParseFS(templates, "templates/report.html.tmpl")
	if err != nil {
		return nil, fmt.Errorf("index.html template: %w", err)
	}
	var b bytes.Buffer
	if err := t.Execute(&b, d); err != nil {
		return nil, fmt.Errorf("index.html: %w", err)
	}
	return b.Bytes(), nil
}
