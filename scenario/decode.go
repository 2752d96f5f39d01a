package scenario

import (
	"encoding"
	"errors"
	"fmt"
	"reflect"
	"sort"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Pos is a place in a scenario file. A struct field `At Pos` is filled with the
// position of the YAML node the struct was decoded from, so that checks made after
// decoding can still point at the line.
type Pos struct{ Line, Col int }

// Error is one problem with a scenario file, with where it is.
type Error struct {
	File string
	Pos  Pos
	Path string // the key path, like phases[2].faults[0].kill
	Msg  string
}

func (e *Error) Error() string {
	where := e.File
	switch {
	case e.Pos.Line > 0 && e.Pos.Col > 0:
		where = fmt.Sprintf("%s:%d:%d", e.File, e.Pos.Line, e.Pos.Col)
	case e.Pos.Line > 0: // a YAML syntax error knows its line only
		where = fmt.Sprintf("%s:%d", e.File, e.Pos.Line)
	}
	if e.Path != "" {
		return fmt.Sprintf("%s: %s: %s", where, e.Path, e.Msg)
	}
	return fmt.Sprintf("%s: %s", where, e.Msg)
}

// Errors is every problem found in one file, in file order.
type Errors []*Error

func (es Errors) Error() string {
	msgs := make([]string, len(es))
	for i, e := range es {
		msgs[i] = e.Error()
	}
	return strings.Join(msgs, "\n")
}

// decoder decodes YAML nodes into Go values strictly: every key must be known,
// every value of the expected kind, every required key present. It collects all
// the problems rather than stopping at the first.
type decoder struct {
	file string
	errs Errors
}

func (d *decoder) errorf(n *yaml.Node, path, f string, a ...any) {
	e := &Error{File: d.file, Path: path, Msg: fmt.Sprintf(f, a...)}
	if n != nil {
		e.Pos = Pos{n.Line, n.Column}
	}
	d.errs = append(d.errs, e)
}

var (
	posType       = reflect.TypeFor[Pos]()
	unmarshalText = reflect.TypeFor[encoding.TextUnmarshaler]()
)

// kindName says what a YAML node is, for messages.
func kindName(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		return fmt.Sprintf("%q", n.Value)
	case yaml.AliasNode:
		return "an alias"
	}
	return "nothing"
}

// decode fills v (a pointer target) from n.
func (d *decoder) decode(n *yaml.Node, v reflect.Value, path string, want string) {
	if n.Kind == yaml.AliasNode {
		d.errorf(n, path, "aliases are not supported; write the value out")
		return
	}
	if v.Kind() == reflect.Pointer {
		if v.IsNil() {
			v.Set(reflect.New(v.Type().Elem()))
		}
		d.decode(n, v.Elem(), path, want)
		return
	}
	if v.CanAddr() && v.Addr().Type().Implements(unmarshalText) {
		if n.Kind != yaml.ScalarNode {
			d.errorf(n, path, "expected %s, got %s", orDefault(want, "a single value"), kindName(n))
			return
		}
		if err := v.Addr().Interface().(encoding.TextUnmarshaler).UnmarshalText([]byte(n.Value)); err != nil {
			d.errorf(n, path, "%v", err)
		}
		// A value read from text keeps its place too (Gate.At), for later checks.
		if v.Kind() == reflect.Struct {
			if f, ok := v.Type().FieldByName("At"); ok && f.Type == posType {
				v.FieldByIndex(f.Index).Set(reflect.ValueOf(Pos{n.Line, n.Column}))
			}
		}
		return
	}
	switch v.Kind() {
	case reflect.Struct:
		d.decodeStruct(n, v, path)
	case reflect.Slice:
		if n.Kind != yaml.SequenceNode {
			d.errorf(n, path, "expected a list, got %s", kindName(n))
			return
		}
		s := reflect.MakeSlice(v.Type(), len(n.Content), len(n.Content))
		for i, c := range n.Content {
			d.decode(c, s.Index(i), fmt.Sprintf("%s[%d]", path, i), want)
		}
		v.Set(s)
	case reflect.String:
		if n.Kind != yaml.ScalarNode || (n.Tag != "!!str" && n.Tag != "") {
			d.errorf(n, path, "expected %s, got %s", orDefault(want, "text"), kindName(n))
			return
		}
		v.SetString(n.Value)
	case reflect.Int, reflect.Int64, reflect.Int32:
		i, err := strconv.ParseInt(n.Value, 10, 64)
		if n.Kind != yaml.ScalarNode || err != nil || v.OverflowInt(i) {
			d.errorf(n, path, "expected %s, got %s", orDefault(want, "a whole number"), kindName(n))
			return
		}
		v.SetInt(i)
	case reflect.Float64:
		f, err := strconv.ParseFloat(n.Value, 64)
		if n.Kind != yaml.ScalarNode || err != nil {
			d.errorf(n, path, "expected %s, got %s", orDefault(want, "a number"), kindName(n))
			return
		}
		v.SetFloat(f)
	case reflect.Bool:
		b, err := strconv.ParseBool(n.Value)
		if n.Kind != yaml.ScalarNode || n.Tag != "!!bool" || err != nil {
			d.errorf(n, path, "expected true or false, got %s", kindName(n))
			return
		}
		v.SetBool(b)
	default:
		panic(fmt.Sprintf("scenario: cannot decode into %v", v.Type()))
	}
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

type fieldInfo struct {
	index    int
	required bool
	want     string // what the value should look like, for messages
}

// decodeStruct decodes a mapping into a struct whose fields carry yaml tags:
// `yaml:"name"`, `yaml:"name,required"`, and a `want:"..."` tag describing the value.
func (d *decoder) decodeStruct(n *yaml.Node, v reflect.Value, path string) {
	t := v.Type()
	fields := map[string]fieldInfo{}
	var names []string
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		if f.Type == posType && f.Name == "At" {
			v.Field(i).Set(reflect.ValueOf(Pos{n.Line, n.Column}))
			continue
		}
		tag := f.Tag.Get("yaml")
		if tag == "" || tag == "-" {
			continue
		}
		name, opt, _ := strings.Cut(tag, ",")
		fields[name] = fieldInfo{index: i, required: opt == "required", want: f.Tag.Get("want")}
		names = append(names, name)
	}
	if n.Kind != yaml.MappingNode {
		d.errorf(n, path, "expected a mapping with keys %s, got %s", strings.Join(names, ", "), kindName(n))
		return
	}
	seen := map[string]bool{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, val := n.Content[i], n.Content[i+1]
		key := k.Value
		sub := key
		if path != "" {
			sub = path + "." + key
		}
		f, ok := fields[key]
		switch {
		case !ok:
			d.errorf(k, sub, "unknown key; expected one of: %s", strings.Join(sortedCopy(names), ", "))
			continue
		case seen[key]:
			d.errorf(k, sub, "given twice")
			continue
		}
		seen[key] = true
		d.decode(val, v.Field(f.index), sub, f.want)
	}
	for _, name := range names {
		if f := fields[name]; f.required && !seen[name] {
			p := name
			if path != "" {
				p = path + "." + name
			}
			d.errorf(n, p, "required key missing")
		}
	}
}

func sortStrings(s []string) { sort.Strings(s) }

func sortedCopy(s []string) []string {
	c := append([]string(nil), s...)
	sort.Strings(c)
	return c
}

// decodeFile parses src (named file) into v.
func decodeFile(file string, src []byte, v any) error {
	var doc yaml.Node
	if err := yaml.Unmarshal(src, &doc); err != nil {
		// yaml.v3's syntax errors read "yaml: line N: ..."; keep its line.
		msg := strings.TrimPrefix(err.Error(), "yaml: ")
		line := 0
		if rest, ok := strings.CutPrefix(msg, "line "); ok {
			if num, after, ok := strings.Cut(rest, ":"); ok {
				line, _ = strconv.Atoi(num)
				msg = strings.TrimSpace(after)
			}
		}
		return Errors{{File: file, Pos: Pos{Line: line}, Msg: "not valid YAML: " + msg}}
	}
	if len(doc.Content) == 0 {
		return Errors{{File: file, Msg: "empty file"}}
	}
	d := &decoder{file: file}
	d.decode(doc.Content[0], reflect.ValueOf(v).Elem(), "", "")
	if len(d.errs) > 0 {
		sort.SliceStable(d.errs, func(i, j int) bool { return d.errs[i].Pos.Line < d.errs[j].Pos.Line })
		return d.errs
	}
	return nil
}

// asErrors returns err as Errors if it is one.
func asErrors(err error) (Errors, bool) {
	var es Errors
	ok := errors.As(err, &es)
	return es, ok
}
