package config

import (
	"fmt"
	"strings"
	"testing"
)

// One 2000-key mapping aliased under 2000 sources is 44 KB of YAML that
// expands to four million values: decoding stops at MaxNodes with one
// problem at the alias where the budget ran out, instead of walking (and
// reporting on) every copy.
func TestAliasExpansionIsBounded(t *testing.T) {
	var b strings.Builder
	b.WriteString("version: 1\nname: bomb\nbig: &big\n")
	for i := range 2000 {
		fmt.Fprintf(&b, "  k%d: 1\n", i)
	}
	b.WriteString("sources:\n")
	for i := range 2000 {
		fmt.Fprintf(&b, "  s%d: *big\n", i)
	}
	_, ds := load(t, b.String(), nil)
	if len(ds) == 0 || len(ds) > MaxNodes+10 {
		t.Fatalf("%d problems", len(ds))
	}
	found := false
	for _, d := range ds {
		if strings.Contains(d.Message, "expands to more than") {
			found = true
			if !strings.HasPrefix(d.Path, "sources.s") {
				t.Errorf("budget problem at %d:%d %s", d.Line, d.Column, d.Path)
			}
		}
	}
	if !found {
		t.Fatalf("no expansion problem among %d: %v", len(ds), ds[:3])
	}
}

// Defaults may nest; a nested default is expanded only when used.
func TestNestedDefaults(t *testing.T) {
	env := map[string]string{"B": "bee", "SET": "s"}
	lookup := func(k string) (string, bool) { v, ok := env[k]; return v, ok }
	for in, want := range map[string]string{
		"${A:-${B}}":             "bee",
		"${A:-${C:-x}}/y":        "x/y",
		"${SET:-${UNSET}}":       "s",
		"pre-${A:-${C:-${B}}}-z": "pre-bee-z",
		"${A:-}":                 "",
		"$${A:-${B}}":            "${A:-bee}",
	} {
		got, err := ExpandVars(in, lookup)
		if err != nil || got != want {
			t.Errorf("%s: got %q, %v; want %q", in, got, err, want)
		}
	}
	for in, want := range map[string]string{
		"${A:-${UNSET}}": "variable UNSET is not set",
		"${A:-${B}":      "unterminated",
	} {
		if _, err := ExpandVars(in, lookup); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: err %v, want %q", in, err, want)
		}
	}
}

// An unset required variable in a source's path is one problem, not three
// (no "missing url or path", no "cannot tell the format").
func TestUnsetPathVariableIsOneProblem(t *testing.T) {
	y := `version: 1
name: t
collection: { name: C, vectors: { v: { size: 8, distance: Dot } } }
sources: { s: { path: "${P:?set P to the npy file}" } }
points: { vectors: { v: s } }
snapshot: { destination: out }
`
	_, ds := load(t, y, nil)
	if len(ds) != 1 || ds[0].Path != "sources.s.path" || ds[0].Message != "variable P: set P to the npy file" || ds[0].Line != 4 || ds[0].Column != 23 {
		t.Fatalf("%v", ds)
	}
}

func TestQuantizationKeys(t *testing.T) {
	y := strings.Replace(goodConfig, "collection:\n", "collection:\n  quantization: { scalar: { quantile: 0.99, always_ram: true } }\n", 1)
	cfg, ds := load(t, y, nil)
	if len(ds) != 0 || cfg.Collection.Quantization.Scalar.Type != "int8" || *cfg.Collection.Quantization.Scalar.Quantile != 0.99 {
		t.Fatalf("%v", ds)
	}
	bad := strings.Replace(goodConfig, "collection:\n", "collection:\n  quantization: { scalar: { quantile: 0.2 }, binary: {} }\n", 1)
	_, ds = load(t, bad, nil)
	msgs := fmt.Sprint(ds)
	if !strings.Contains(msgs, "give exactly one of scalar, product and binary (got 2)") || !strings.Contains(msgs, "quantile 0.2 out of range") {
		t.Fatalf("%v", ds)
	}
	bad = strings.Replace(goodConfig, "collection:\n", "collection:\n  quantization: { product: { compression: x3 } }\n", 1)
	if _, ds = load(t, bad, nil); len(ds) == 0 || !strings.Contains(fmt.Sprint(ds), "x3") {
		t.Fatalf("compression x3: %v", ds)
	}
}
