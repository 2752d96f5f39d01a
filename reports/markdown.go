package reports

import (
	"fmt"
	"strings"
)

// statusMark is how a pass or fail row is marked in Markdown.
func statusMark(s string) string {
	switch s {
	case "pass":
		return "✅ pass"
	case "fail":
		return "❌ **FAIL**"
	}
	return s
}

// mdCell escapes a table cell.
func mdCell(s string) string {
	return strings.NewReplacer("|", `\|`, "\n", " ").Replace(s)
}

// writeMDTable renders a table.
func writeMDTable(b *strings.Builder, t table) {
	if t.Caption != "" {
		fmt.Fprintf(b, "**%s**\n\n", t.Caption)
	}
	b.WriteString("|")
	for _, h := range t.Head {
		b.WriteString(" " + mdCell(h) + " |")
	}
	b.WriteString("\n|")
	for range t.Head {
		b.WriteString("---|")
	}
	b.WriteString("\n")
	for i, row := range t.Rows {
		b.WriteString("|")
		for j, c := range row {
			if j == 0 && i < len(t.Status) && t.Status[i] != "" {
				c = statusMark(t.Status[i])
			}
			b.WriteString(" " + mdCell(c) + " |")
		}
		b.WriteString("\n")
	}
	b.WriteString("\n")
}

// writeMDSection renders one section.
func writeMDSection(b *strings.Builder, sec section, level string) {
	fmt.Fprintf(b, "%s %s\n\n", level, sec.Title)
	for _, p := range sec.Paras {
		b.WriteString(p + "\n\n")
	}
	for _, l := range sec.Bullets {
		fmt.Fprintf(b, "- %s\n", l)
	}
	if len(sec.Bullets) > 0 {
		b.WriteString("\n")
	}
	for _, t := range sec.Tables {
		writeMDTable(b, t)
	}
	for _, p := range sec.Plots {
		fmt.Fprintf(b, "![%s](%s)\n\n*%s*\n\n", p.Title, p.File, p.Caption)
	}
}

// renderMarkdown renders the report as report.md.
func renderMarkdown(d document) string {
	var b strings.Builder
	fmt.Fprintf(&b, "# %s — %s\n\n%s\n\n", d.Title, strings.ToUpper(d.Verdict), d.Headline)
	for _, r := range d.Reasons {
		fmt.Fprintf(&b, "- invalid: %s\n", r)
	}
	if len(d.Reasons) > 0 {
		b.WriteString("\n")
	}
	for _, sec := range d.Sections {
		writeMDSection(&b, sec, "##")
	}
	return b.String()
}
