package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"go.yaml.in/yaml/v3"
)

// LoadOptions control how a config file is read.
type LoadOptions struct {
	// Lookup resolves ${VAR}; nil means the process environment.
	Lookup Lookup
	// Sets are --set key.path=value overrides, applied before decoding.
	Sets []string
	// AllowUnset makes a variable without a value (and without a default)
	// a warning, and leaves the key it is in unchecked: for checking a
	// committed config where its secrets are not set (validate
	// --allow-unset). The Config is then not fit to run.
	AllowUnset bool
}

// Load reads, expands, decodes and validates a config file. name is shown in
// diagnostics ("-" for standard input, with dir as the base directory). The
// returned error is Diagnostics when the file has problems.
func Load(name string, data []byte, dir string, opts LoadOptions) (*Config, error) {
	if opts.Lookup == nil {
		opts.Lookup = EnvLookup(nil)
	}
	d := &decoder{file: name, lookup: opts.Lookup, allowUnset: opts.AllowUnset, pos: map[string]Pos{}, end: map[string]Pos{}, failed: map[string]bool{}, keyPos: map[string]Pos{}}
	var root yaml.Node
	dec := yaml.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&root); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, Diagnostics{{File: name, Line: 1, Column: 1, Severity: SeverityError, Message: "empty file: expected a pipeline config"}}
		}
		return nil, Diagnostics{yamlErrorDiag(name, data, err)}
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); err == nil {
		return nil, Diagnostics{{File: name, Line: extra.Line, Column: extra.Column, Severity: SeverityError, Message: "a config file holds one YAML document; found a second"}}
	}
	for _, s := range opts.Sets {
		if err := applySet(&root, s); err != nil {
			d.diags = append(d.diags, Diagnostic{File: "--set", Severity: SeverityError, Message: err.Error()})
		}
	}
	cfg := &Config{File: name, Dir: dir}
	applyDefaults(reflect.ValueOf(cfg).Elem())
	d.decode(&root, reflect.ValueOf(cfg).Elem(), "")
	cfg.pos = d.pos
	if d.tooMany {
		return cfg, d.diags.Err()
	}
	applyEnvOverrides(cfg, opts.Lookup, opts.Sets)
	validate(cfg, d)
	if err := d.diags.Err(); err != nil {
		return cfg, err
	}
	cfg.Warnings = d.diags.Warnings()
	cfg.Unset = d.unset
	return cfg, nil
}

// LoadFile is Load on a file path.
func LoadFile(path string, opts LoadOptions) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, err
	}
	return Load(path, data, filepath.Dir(abs), opts)
}

var yamlLineRE = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)

func yamlErrorDiag(file string, data []byte, err error) Diagnostic {
	msg := err.Error()
	if m := yamlLineRE.FindStringSubmatch(msg); m != nil {
		line, _ := strconv.Atoi(m[1])
		col := 1
		// The parser names the line before the tab (where the mapping it
		// was reading began): point at the tab itself.
		if strings.Contains(m[2], "tab character") {
			for i, l := range SourceLines(data) {
				if i+1 < line {
					continue
				}
				if ind := len(l) - len(strings.TrimLeft(l, " \t")); strings.Contains(l[:ind], "\t") {
					line, col = i+1, strings.IndexByte(l, '\t')+1
					break
				}
			}
		}
		return Diagnostic{File: file, Line: line, Column: col, Severity: SeverityError, Message: "YAML syntax error: " + m[2]}
	}
	return Diagnostic{File: file, Line: 1, Column: 1, Severity: SeverityError, Message: "YAML syntax error: " + strings.TrimPrefix(msg, "yaml: ")}
}

type decoder struct {
	file       string
	lookup     Lookup
	allowUnset bool
	unset      []string // key paths left unset (allowUnset)
	diags      Diagnostics
	pos        map[string]Pos
	end        map[string]Pos // just past each decoded value, when known
	// failed marks key paths that already have a decoding problem, so
	// validation adds no follow-on noise for them.
	failed map[string]bool
	// keyPos holds the position of each mapping key, by key path: a
	// missing key is reported at its parent's key.
	keyPos map[string]Pos
	// nodes counts the values decoded: an alias is decoded again wherever
	// it is used, so a small file can expand to millions of nodes. Past
	// MaxNodes decoding stops with one problem.
	nodes   int
	tooMany bool
}

// visit counts one value against MaxNodes; false once the budget is spent.
func (d *decoder) visit(n *yaml.Node, path string) bool {
	if d.tooMany {
		return false
	}
	if d.nodes++; d.nodes > MaxNodes {
		d.tooMany = true
		d.errorf(n, path, "the file expands to more than %d YAML values (each use of an alias repeats its target); stopped reading here", MaxNodes)
		return false
	}
	return true
}

// MaxNodes bounds the YAML values one config may expand to (aliases
// counted at every use). Real pipelines use a few hundred.
const MaxNodes = 100_000

func (d *decoder) errorf(n *yaml.Node, path, format string, args ...any) {
	d.nodeDiag(n, path, SeverityError, format, args...)
}

// nodeDiag reports a problem at node n; the key path is then not checked
// further.
func (d *decoder) nodeDiag(n *yaml.Node, path, severity, format string, args ...any) {
	line, col := 0, 0
	var end Pos
	if n != nil {
		line, col = n.Line, n.Column
		end = endOf(n)
	}
	d.diags = append(d.diags, Diagnostic{File: d.file, Line: line, Column: col, EndLine: end.Line, EndColumn: end.Column,
		Severity: severity, Path: path, Message: fmt.Sprintf(format, args...)})
	d.failed[path] = true
}

// at reports a problem at a decoded key path's position.
func (d *decoder) at(path, format string, args ...any) {
	d.report(SeverityError, path, format, args...)
}

// warn reports a warning at a decoded key path's position.
func (d *decoder) warn(path, format string, args ...any) {
	d.report(SeverityWarning, path, format, args...)
}

func (d *decoder) report(severity, path, format string, args ...any) {
	if d.failed[path] {
		return
	}
	p, e := d.pos[path], d.end[path]
	if e.Line == 0 {
		e = p
	}
	d.diags = append(d.diags, Diagnostic{File: d.file, Line: p.Line, Column: p.Column, EndLine: e.Line, EndColumn: e.Column,
		Severity: severity, Path: path, Message: fmt.Sprintf(format, args...)})
}

// endOf is the position just past a node when it is known: a one-line
// scalar (quotes included); otherwise the node's start.
func endOf(n *yaml.Node) Pos {
	if n.Kind == yaml.ScalarNode && !strings.Contains(n.Value, "\n") {
		w := utf8.RuneCountInString(n.Value)
		switch n.Style {
		case yaml.DoubleQuotedStyle, yaml.SingleQuotedStyle:
			w += 2
		case yaml.LiteralStyle, yaml.FoldedStyle:
			return Pos{n.Line, n.Column}
		}
		return Pos{n.Line, n.Column + w}
	}
	return Pos{n.Line, n.Column}
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

func kindName(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		switch n.Tag {
		case "!!null":
			return "null"
		case "!!int":
			return "an integer"
		case "!!float":
			return "a number"
		case "!!bool":
			return "a boolean"
		}
		return fmt.Sprintf("string %q", n.Value)
	}
	return "something else"
}

// nodeUnmarshaler is implemented by config types with more than one shape.
type nodeUnmarshaler interface {
	unmarshalNode(d *decoder, n *yaml.Node, path string)
}

var durationType = reflect.TypeOf(Duration(0))

// scalar expands variables in a scalar node's value.
func (d *decoder) scalar(n *yaml.Node, path string) (string, bool) {
	v, err := ExpandVars(n.Value, d.lookup)
	if err != nil {
		var ue *UnsetError
		if d.allowUnset && errors.As(err, &ue) {
			d.nodeDiag(n, path, SeverityWarning, "variable %s is not set: not checked", ue.Name)
			d.unset = append(d.unset, path)
			return "", false
		}
		d.errorf(n, path, "%v", err)
		return "", false
	}
	return v, true
}

func (d *decoder) decode(n *yaml.Node, v reflect.Value, path string) {
	for n.Kind == yaml.DocumentNode && len(n.Content) == 1 {
		n = n.Content[0]
	}
	if !d.visit(n, path) {
		return
	}
	if n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	d.pos[path] = Pos{n.Line, n.Column}
	d.end[path] = endOf(n)
	if v.CanAddr() {
		if u, ok := v.Addr().Interface().(nodeUnmarshaler); ok {
			u.unmarshalNode(d, n, path)
			return
		}
	}
	if n.Kind == yaml.ScalarNode && n.Tag == "!!null" && v.Kind() != reflect.String {
		return // explicit null: keep the zero value/default
	}
	switch v.Kind() {
	case reflect.Pointer:
		if v.IsNil() {
			v.Set(reflect.New(v.Type().Elem()))
			applyDefaults(v.Elem())
		}
		d.decode(n, v.Elem(), path)
	case reflect.Struct:
		d.decodeStruct(n, v, path)
	case reflect.Map:
		if n.Kind != yaml.MappingNode {
			d.errorf(n, path, "expected a mapping, got %s", kindName(n))
			return
		}
		if v.IsNil() {
			v.Set(reflect.MakeMap(v.Type()))
		}
		seen := map[string]*yaml.Node{}
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, val := n.Content[i], n.Content[i+1]
			if prev, dup := seen[k.Value]; dup {
				d.errorf(k, join(path, k.Value), "duplicate key %q (first at line %d)", k.Value, prev.Line)
				continue
			}
			seen[k.Value] = k
			if k.Value == "" {
				d.errorf(k, path, "empty key")
				continue
			}
			ev := reflect.New(v.Type().Elem()).Elem()
			d.keyPos[join(path, k.Value)] = Pos{k.Line, k.Column}
			d.decode(val, ev, join(path, k.Value))
			v.SetMapIndex(reflect.ValueOf(k.Value), ev)
		}
	case reflect.Slice:
		if n.Kind != yaml.SequenceNode {
			d.errorf(n, path, "expected a list, got %s", kindName(n))
			return
		}
		s := reflect.MakeSlice(v.Type(), len(n.Content), len(n.Content))
		for i, c := range n.Content {
			d.decode(c, s.Index(i), fmt.Sprintf("%s[%d]", path, i))
		}
		v.Set(s)
	case reflect.String:
		if n.Kind != yaml.ScalarNode {
			d.errorf(n, path, "expected a string, got %s", kindName(n))
			return
		}
		if n.Tag == "!!null" {
			return
		}
		if s, ok := d.scalar(n, path); ok {
			v.SetString(s)
		}
	case reflect.Bool:
		s, ok := d.scalarOf(n, path, "a boolean")
		if !ok {
			return
		}
		b, err := strconv.ParseBool(s)
		if err != nil {
			d.errorf(n, path, "expected a boolean (true or false), got %q", s)
			return
		}
		v.SetBool(b)
	case reflect.Int, reflect.Int32, reflect.Int64:
		if v.Type() == durationType {
			s, ok := d.scalarOf(n, path, "a duration")
			if !ok {
				return
			}
			dur, err := time.ParseDuration(s)
			if err != nil || dur < 0 {
				d.errorf(n, path, "expected a duration such as 30s or 5m, got %q", s)
				return
			}
			v.SetInt(int64(dur))
			return
		}
		s, ok := d.scalarOf(n, path, "an integer")
		if !ok {
			return
		}
		i, err := strconv.ParseInt(s, 0, 64)
		if err != nil || v.OverflowInt(i) {
			d.errorf(n, path, "expected an integer, got %s", describeScalar(n, s))
			return
		}
		v.SetInt(i)
	case reflect.Float32, reflect.Float64:
		s, ok := d.scalarOf(n, path, "a number")
		if !ok {
			return
		}
		f, err := strconv.ParseFloat(s, 64)
		if err != nil || v.OverflowFloat(f) {
			d.errorf(n, path, "expected a number, got %s", describeScalar(n, s))
			return
		}
		v.SetFloat(f)
	case reflect.Uint, reflect.Uint32, reflect.Uint64:
		s, ok := d.scalarOf(n, path, "a non-negative integer")
		if !ok {
			return
		}
		u, err := strconv.ParseUint(s, 0, 64)
		if err != nil || v.OverflowUint(u) {
			d.errorf(n, path, "expected a non-negative integer, got %s", describeScalar(n, s))
			return
		}
		v.SetUint(u)
	default:
		panic("pipeline: cannot decode into " + v.Type().String())
	}
}

func describeScalar(n *yaml.Node, expanded string) string {
	if n.Value != expanded {
		return fmt.Sprintf("%q", expanded)
	}
	return kindName(n)
}

func (d *decoder) scalarOf(n *yaml.Node, path, want string) (string, bool) {
	if n.Kind != yaml.ScalarNode {
		d.errorf(n, path, "expected %s, got %s", want, kindName(n))
		return "", false
	}
	return d.scalar(n, path)
}

type fieldInfo struct {
	key      string
	index    int
	required bool
	def      string
	enum     []string
	doc      string
}

func fieldsOf(t reflect.Type) []fieldInfo {
	var out []fieldInfo
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		key := f.Tag.Get("yaml")
		if key == "" || key == "-" || !f.IsExported() {
			continue
		}
		fi := fieldInfo{key: key, index: i, required: f.Tag.Get("snappipe") == "required", def: f.Tag.Get("default"), doc: f.Tag.Get("doc")}
		if e := f.Tag.Get("enum"); e == "@formats" {
			fi.enum = FormatNames() // the registered format plugins
		} else if e != "" {
			fi.enum = strings.Split(e, ",")
		}
		out = append(out, fi)
	}
	return out
}

func (d *decoder) decodeStruct(n *yaml.Node, v reflect.Value, path string) {
	if n.Kind != yaml.MappingNode {
		d.errorf(n, path, "expected a mapping, got %s", kindName(n))
		return
	}
	fields := fieldsOf(v.Type())
	byKey := map[string]fieldInfo{}
	var keys []string
	for _, f := range fields {
		byKey[f.key] = f
		keys = append(keys, f.key)
	}
	seen := map[string]*yaml.Node{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, val := n.Content[i], n.Content[i+1]
		kp := join(path, k.Value)
		if !d.visit(k, kp) {
			return
		}
		if prev, dup := seen[k.Value]; dup {
			d.errorf(k, kp, "duplicate key %q (first at line %d)", k.Value, prev.Line)
			continue
		}
		seen[k.Value] = k
		f, ok := byKey[k.Value]
		if !ok {
			msg := fmt.Sprintf("unknown key %q", k.Value)
			if s := suggest(k.Value, keys); s != "" {
				msg += fmt.Sprintf("; did you mean %q?", s)
			} else {
				msg += fmt.Sprintf(" (expected one of: %s)", strings.Join(keys, ", "))
			}
			d.errorf(k, kp, "%s", msg)
			continue
		}
		fv := v.Field(f.index)
		d.keyPos[kp] = Pos{k.Line, k.Column}
		d.decode(val, fv, kp)
		if f.enum != nil {
			d.checkEnum(fv, f.enum, kp)
		}
	}
	for _, f := range fields {
		if _, ok := seen[f.key]; ok {
			continue
		}
		if f.required {
			// At the parent's key (where the key belongs), or for top-level
			// keys at the document's first line.
			at := &yaml.Node{Line: 1, Column: 1}
			if p, ok := d.keyPos[path]; ok {
				at = &yaml.Node{Line: p.Line, Column: p.Column}
			}
			d.errorf(at, join(path, f.key), "missing required key %q", f.key)
		}
	}
}

func (d *decoder) checkEnum(v reflect.Value, allowed []string, path string) {
	check := func(s, p string) {
		if s == "" || slices.Contains(allowed, s) {
			return
		}
		msg := fmt.Sprintf("invalid value %q (expected one of: %s)", s, strings.Join(allowed, ", "))
		if sg := suggest(s, allowed); sg != "" {
			msg = fmt.Sprintf("invalid value %q; did you mean %q? (expected one of: %s)", s, sg, strings.Join(allowed, ", "))
		}
		d.at(p, "%s", msg)
	}
	switch v.Kind() {
	case reflect.String:
		check(v.String(), path)
	case reflect.Map:
		for _, k := range v.MapKeys() {
			check(v.MapIndex(k).String(), join(path, k.String()))
		}
	}
}

// applyDefaults sets every `default` tag in a struct, recursing into
// nested (non-pointer) structs.
func applyDefaults(v reflect.Value) {
	if v.Kind() != reflect.Struct {
		return
	}
	for _, f := range fieldsOf(v.Type()) {
		fv := v.Field(f.index)
		if f.def != "" {
			setDefault(fv, f.def)
		}
		if fv.Kind() == reflect.Struct {
			applyDefaults(fv)
		}
	}
}

func setDefault(v reflect.Value, def string) {
	switch v.Kind() {
	case reflect.String:
		v.SetString(def)
	case reflect.Bool:
		v.SetBool(def == "true")
	case reflect.Int, reflect.Int64:
		if v.Type() == durationType {
			dur, _ := time.ParseDuration(def)
			v.SetInt(int64(dur))
			return
		}
		i, _ := strconv.ParseInt(def, 10, 64)
		v.SetInt(i)
	case reflect.Struct:
		if v.Type() == reflect.TypeOf(IDSpec{}) {
			return // zero IDSpec is "row"
		}
	}
}

func (s *IDSpec) unmarshalNode(d *decoder, n *yaml.Node, path string) {
	switch n.Kind {
	case yaml.ScalarNode:
		v, ok := d.scalar(n, path)
		if !ok {
			return
		}
		if v != "row" {
			d.errorf(n, path, "invalid value %q (expected \"row\" or {column: NAME})", v)
		}
	case yaml.MappingNode:
		var m struct {
			Column string `yaml:"column" snappipe:"required" doc:"Payload-source column holding the id."`
		}
		d.decodeStruct(n, reflect.ValueOf(&m).Elem(), path)
		s.Column = m.Column
	default:
		d.errorf(n, path, "expected \"row\" or {column: NAME}, got %s", kindName(n))
	}
}

func (s *VectorSource) unmarshalNode(d *decoder, n *yaml.Node, path string) {
	switch n.Kind {
	case yaml.ScalarNode:
		if v, ok := d.scalar(n, path); ok {
			s.Source = v
		}
	case yaml.MappingNode:
		type plain VectorSource
		d.decodeStruct(n, reflect.ValueOf((*plain)(s)).Elem(), path)
	default:
		d.errorf(n, path, "expected a source name, {source, column} or {source, indices, values}, got %s", kindName(n))
	}
}

// unmarshalNode decodes a source: the common keys as a struct, and the
// keys format plugins declare into Options (checked against the source's
// format by validate).
func (s *Source) unmarshalNode(d *decoder, n *yaml.Node, path string) {
	if n.Kind != yaml.MappingNode {
		d.errorf(n, path, "expected a mapping, got %s", kindName(n))
		return
	}
	type plain Source
	common := map[string]bool{}
	for _, f := range fieldsOf(reflect.TypeOf(plain{})) {
		common[f.key] = true
	}
	opts := formatOptions()
	known := append(SortedKeys(common), SortedKeys(opts)...)
	rest := &yaml.Node{Kind: yaml.MappingNode, Tag: n.Tag, Line: n.Line, Column: n.Column, Style: n.Style}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, val := n.Content[i], n.Content[i+1]
		if !d.visit(k, join(path, k.Value)) {
			return
		}
		if common[k.Value] {
			rest.Content = append(rest.Content, k, val)
			continue
		}
		if opts[k.Value] == nil {
			msg := fmt.Sprintf("unknown key %q", k.Value)
			if sg := suggest(k.Value, known); sg != "" {
				msg += fmt.Sprintf("; did you mean %q?", sg)
			} else {
				msg += fmt.Sprintf(" (expected one of: %s)", strings.Join(known, ", "))
			}
			d.errorf(k, join(path, k.Value), "%s", msg)
			continue
		}
		kp := join(path, k.Value)
		if _, dup := s.Options[k.Value]; dup {
			d.errorf(k, kp, "duplicate key %q", k.Value)
			continue
		}
		d.keyPos[kp] = Pos{k.Line, k.Column}
		d.pos[kp] = Pos{val.Line, val.Column}
		if val.Kind != yaml.ScalarNode {
			d.errorf(val, kp, "expected a string, got %s", kindName(val))
			continue
		}
		v, ok := d.scalar(val, kp)
		if !ok {
			continue
		}
		if s.Options == nil {
			s.Options = map[string]string{}
		}
		s.Options[k.Value] = v
	}
	d.decodeStruct(rest, reflect.ValueOf((*plain)(s)).Elem(), path)
}

// applySet sets key.path=value in the YAML tree, creating mappings as
// needed. The value is parsed as a YAML scalar.
func applySet(root *yaml.Node, set string) error {
	k, val, ok := strings.Cut(set, "=")
	if !ok || k == "" {
		return fmt.Errorf("--set %q: expected key.path=value", set)
	}
	n := root
	if n.Kind == yaml.DocumentNode {
		if len(n.Content) == 0 {
			n.Content = []*yaml.Node{{Kind: yaml.MappingNode, Tag: "!!map"}}
		}
		n = n.Content[0]
	}
	parts := strings.Split(k, ".")
	for i, p := range parts {
		if n.Kind != yaml.MappingNode {
			return fmt.Errorf("--set %s: %s is not a mapping", k, strings.Join(parts[:i], "."))
		}
		var next *yaml.Node
		for j := 0; j+1 < len(n.Content); j += 2 {
			if n.Content[j].Value == p {
				next = n.Content[j+1]
			}
		}
		last := i == len(parts)-1
		if next == nil {
			next = &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map"}
			n.Content = append(n.Content, &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: p}, next)
		}
		if last {
			var parsed yaml.Node
			if err := yaml.Unmarshal([]byte(val), &parsed); err != nil || len(parsed.Content) == 0 || parsed.Content[0].Kind != yaml.ScalarNode {
				*next = yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: val}
			} else {
				sc := parsed.Content[0]
				*next = yaml.Node{Kind: yaml.ScalarNode, Tag: sc.Tag, Value: sc.Value}
			}
		}
		n = next
	}
	return nil
}

// LoadPath reads a config ("-" for standard input). The environment
// overrides (EnvOverrides) are applied by the loader, once, in the
// order --set > environment > --env-file > file > default.
func LoadPath(path string, opts LoadOptions) (*Config, error) {
	var cfg *Config
	var err error
	if path == "-" {
		data, rerr := io.ReadAll(os.Stdin)
		if rerr != nil {
			return nil, rerr
		}
		wd, _ := os.Getwd()
		cfg, err = Load("<stdin>", data, wd, opts)
	} else {
		cfg, err = LoadFile(path, opts)
	}
	return cfg, err
}
