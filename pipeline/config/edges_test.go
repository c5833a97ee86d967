package config

import (
	"strings"
	"testing"
)

// Variable names: letters, digits (not first) and '_' — checked at the
// characters just outside each range.
func TestVarNameEdges(t *testing.T) {
	lookup := func(n string) (string, bool) { return "<" + n + ">", true }
	for _, name := range []string{"A", "Z", "a", "z", "_", "A0", "A9", "_9"} {
		got, err := ExpandVars("${"+name+"}", lookup)
		if err != nil || got != "<"+name+">" {
			t.Errorf("%s: %q %v", name, got, err)
		}
	}
	for _, name := range []string{"@", "[", "`", "{", "0A", "9", "A/", "A:", ""} {
		if _, err := ExpandVars("${"+name+"}x", lookup); err == nil {
			t.Errorf("%q accepted as a variable name", name)
		}
	}
	if _, err := ExpandVars("a ${B", lookup); err == nil || !strings.Contains(err.Error(), "unterminated") {
		t.Errorf("unterminated: %v", err)
	}
	// A default applies when unset or empty; :? fails on both.
	empty := func(n string) (string, bool) { return "", n == "SET_EMPTY" }
	for _, tc := range []struct{ in, want string }{{"${SET_EMPTY:-d}", "d"}, {"${UNSET:-d}", "d"}, {"${SET_EMPTY}", ""}, {"$${X}", "${X}"}, {"${:-d}", ""}} {
		got, err := ExpandVars(tc.in, empty)
		if tc.in == "${:-d}" {
			if err == nil {
				t.Errorf("%s: an empty name accepted", tc.in)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("%s = %q, %v; want %q", tc.in, got, err, tc.want)
		}
	}
	if _, err := ExpandVars("${SET_EMPTY:?needed}", empty); err == nil || !strings.Contains(err.Error(), "needed") {
		t.Errorf(":? on empty: %v", err)
	}
}

// Diagnostics sort by file, line, column, then message; a diagnostic
// without a line shows no position.
func TestDiagnosticsOrder(t *testing.T) {
	ds := Diagnostics{
		{File: "b", Line: 1, Column: 1, Message: "m"},
		{File: "a", Line: 2, Column: 1, Message: "m"},
		{File: "a", Line: 1, Column: 5, Message: "m"},
		{File: "a", Line: 1, Column: 2, Message: "z"},
		{File: "a", Line: 1, Column: 2, Message: "b"},
		{File: "a", Line: 1, Column: 2, Message: "b"}, // duplicate
	}.Sort()
	var got []string
	for _, d := range ds {
		got = append(got, d.String())
	}
	if strings.Join(got, "|") != "a:1:2: b|a:1:2: z|a:1:5: m|a:2:1: m|b:1:1: m" {
		t.Fatalf("order: %v", got)
	}
	if s := (Diagnostic{File: "--set", Message: "x"}).String(); s != "--set: x" {
		t.Fatalf("no position: %q", s)
	}
	if s := (Diagnostic{File: "f", Line: 1, Column: 1, Message: "x"}).String(); s != "f:1:1: x" {
		t.Fatalf("position: %q", s)
	}
}

func TestSuggestEdges(t *testing.T) {
	keys := []string{"on_exists", "vectors", "shard_number"}
	for in, want := range map[string]string{"on_exist": "on_exists", "vector": "vectors", "shard_numbr": "shard_number", "zzzzzz": "", "ON_EXISTS": "on_exists"} {
		if got := suggest(in, keys); got != want {
			t.Errorf("suggest(%q) = %q, want %q", in, got, want)
		}
	}
	// An abbreviation or an extension of exactly one value names it, even
	// when another value is closer by edit distance ("cos" is two edits
	// from "Dot", three from "Cosine").
	dist := []string{"Cosine", "Euclid", "Dot", "Manhattan"}
	for in, want := range map[string]string{"cos": "Cosine", "COS": "Cosine", "euclidean": "Euclid", "manhattan_l1": "Manhattan", "cosine": "Cosine", "dott": "Dot", "l2": ""} {
		if got := suggest(in, dist); got != want {
			t.Errorf("suggest(%q) = %q, want %q", in, got, want)
		}
	}
	if got := suggest("s", []string{"sources", "snapshot"}); got != "" {
		t.Errorf("a one-letter value suggests %q", got)
	}
	if got := suggest("sh", []string{"shard_number", "sharding_method"}); got != "" {
		t.Errorf("an abbreviation of two values suggests %q", got)
	}
	if levenshtein("kitten", "sitting") != 3 || levenshtein("", "abc") != 3 || levenshtein("abc", "abc") != 0 {
		t.Fatal("levenshtein")
	}
}

// The schema says unsigned integers are not negative; signed ones have no
// minimum.
func TestSchemaUnsignedMinimum(t *testing.T) {
	b, err := JSONSchema()
	if err != nil {
		t.Fatal(err)
	}
	s := string(b)
	i := strings.Index(s, `"shard_number"`)
	j := strings.Index(s, `"grpc_port"`)
	if i < 0 || j < 0 || !strings.Contains(s[i:i+300], `"minimum": 0`) || strings.Contains(s[j:j+200], `"minimum"`) {
		t.Fatalf("shard_number/grpc_port schema:\n%s\n%s", s[i:i+300], s[j:j+200])
	}
}
