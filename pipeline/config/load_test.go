package config

import (
	"errors"
	"strings"
	"testing"
)

const goodConfig = `version: 1
name: t
qdrant:
  url: http://localhost:6333
collection:
  name: C
  vectors:
    image: { size: 768, distance: Cosine }
sources:
  image: { path: img.npy }
  meta: { path: meta.parquet }
points:
  vectors: { image: image }
  payload: { source: meta }
snapshot:
  destination: out
`

func load(t *testing.T, yaml string, env map[string]string) (*Config, Diagnostics) {
	t.Helper()
	lookup := func(k string) (string, bool) { v, ok := env[k]; return v, ok }
	cfg, err := Load("p.yaml", []byte(yaml), "/base", LoadOptions{Lookup: lookup})
	if err == nil {
		return cfg, nil
	}
	var ds Diagnostics
	if !errors.As(err, &ds) {
		t.Fatalf("error is not Diagnostics: %v", err)
	}
	return cfg, ds
}

func TestGoodConfigDefaults(t *testing.T) {
	cfg, ds := load(t, goodConfig, nil)
	if ds != nil {
		t.Fatal(ds)
	}
	if cfg.Upload.BatchSize != 256 || cfg.Upload.Parallel != 2 || cfg.Collection.OnExists != "fail" || cfg.Qdrant.GRPCPort != 6334 ||
		cfg.Collection.Vectors["image"].Datatype != "float32" || cfg.Sources["image"].Format != "npy" || cfg.Sources["meta"].Format != "parquet" ||
		cfg.Snapshot.Timeout.D().Minutes() != 30 || cfg.Points.ID.Column != "" {
		t.Fatalf("defaults: %+v", cfg)
	}
	if cfg.Resolve("img.npy") != "/base/img.npy" {
		t.Fatal(cfg.Resolve("img.npy"))
	}
}

func TestDiagnosticsPositions(t *testing.T) {
	cases := []struct {
		name string
		yaml string
		env  map[string]string
		want []string // every diagnostic, in order
	}{
		{"unknown key with suggestion", strings.Replace(goodConfig, "  name: C\n", "  name: C\n  on_exist: reuse\n", 1), nil,
			[]string{`p.yaml:7:3: collection.on_exist: unknown key "on_exist"; did you mean "on_exists"?`}},
		{"wrong type", strings.Replace(goodConfig, "size: 768", "size: big", 1), nil,
			[]string{`p.yaml:8:20: collection.vectors.image.size: expected an integer, got string "big"`}},
		{"bad enum", strings.Replace(goodConfig, "distance: Cosine", "distance: cosine", 1), nil,
			[]string{`p.yaml:8:35: collection.vectors.image.distance: invalid value "cosine"; did you mean "Cosine"? (expected one of: Cosine, Euclid, Dot, Manhattan)`}},
		{"missing required", strings.Replace(goodConfig, "snapshot:\n  destination: out\n", "", 1), nil,
			[]string{`p.yaml:1:1: snapshot: missing required key "snapshot"`}},
		{"missing nested required key", strings.Replace(goodConfig, "  name: C\n", "", 1), nil,
			[]string{`p.yaml:5:1: collection.name: missing required key "name"`}},
		{"missing key in a flow mapping", strings.Replace(goodConfig, "size: 768, ", "", 1), nil,
			[]string{`p.yaml:8:5: collection.vectors.image.size: missing required key "size"`}},
		{"undefined source", strings.Replace(goodConfig, "vectors: { image: image }", "vectors: { image: imgae }", 1), nil,
			[]string{`p.yaml:13:21: points.vectors.image: source "imgae" is not defined under sources; did you mean "image"?`}},
		{"size out of range", strings.Replace(goodConfig, "size: 768", "size: 70000", 1), nil,
			[]string{`p.yaml:8:20: collection.vectors.image.size: size 70000 out of range (1-65536)`}},
		{"duplicate key", strings.Replace(goodConfig, "name: t\n", "name: t\nname: u\n", 1), nil,
			[]string{`p.yaml:3:1: name: duplicate key "name" (first at line 2)`}},
		{"unset variable", strings.Replace(goodConfig, "url: http://localhost:6333", "url: ${QURL}", 1), nil,
			[]string{`p.yaml:4:8: qdrant.url: variable QURL is not set (use ${QURL:-default} for a default)`}},
		{"required variable message", strings.Replace(goodConfig, "url: http://localhost:6333", "url: ${QURL:?set QURL to the server}", 1), nil,
			[]string{`p.yaml:4:8: qdrant.url: variable QURL: set QURL to the server`}},
		{"yaml syntax", "version: 1\nname: [unclosed\n", nil,
			[]string{`p.yaml:1:1: YAML syntax error: did not find expected ',' or ']'`}},
		// The parser names the line before a tab; the diagnostic the tab.
		{"tab indentation", "version: 1\nname: x\n\tcollection: {}\n", nil,
			[]string{`p.yaml:3:1: YAML syntax error: found a tab character that violates indentation`}},
		{"tab after spaces", "version: 1\ncollection:\n  name: c\n  \tvectors: {}\n", nil,
			[]string{`p.yaml:4:3: YAML syntax error: found a tab character that violates indentation`}},
		{"every problem at once", strings.NewReplacer("size: 768", "size: 0", "distance: Cosine", "distance: L2", "version: 1", "version: 2", "payload: { source: meta }", "payload: { source: image }").Replace(goodConfig), nil,
			[]string{
				`p.yaml:1:10: version: unsupported version 2 (expected 1)`,
				`p.yaml:8:20: collection.vectors.image.size: size 0 out of range (1-65536)`,
				`p.yaml:8:33: collection.vectors.image.distance: invalid value "L2" (expected one of: Cosine, Euclid, Dot, Manhattan)`,
				`p.yaml:14:22: points.payload.source: payload source "image" must be a table source, such as parquet (it is npy)`,
			}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, ds := load(t, tc.yaml, tc.env)
			var got []string
			for _, d := range ds.Sort() {
				got = append(got, d.String())
			}
			if strings.Join(got, "\n") != strings.Join(tc.want, "\n") {
				t.Fatalf("got:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(tc.want, "\n"))
			}
		})
	}
}

func TestExpandVars(t *testing.T) {
	env := map[string]string{"A": "x", "EMPTY": ""}
	lookup := func(k string) (string, bool) { v, ok := env[k]; return v, ok }
	for in, want := range map[string]string{
		"${A}":            "x",
		"a${A}b":          "axb",
		"${B:-def}":       "def",
		"${EMPTY:-def}":   "def",
		"$${A}":           "${A}",
		"$${A} ${A}":      "${A} x",
		"no vars $HOME":   "no vars $HOME",
		"${A:-${nested}}": "x", // A is set: the nested default is not expanded
	} {
		got, err := ExpandVars(in, lookup)
		if err != nil || got != want {
			t.Errorf("%q -> %q, %v; want %q", in, got, err, want)
		}
	}
	for _, in := range []string{"${B}", "${B:?need B}", "${", "${1A}"} {
		if _, err := ExpandVars(in, lookup); err == nil {
			t.Errorf("%q: expected an error", in)
		}
	}
}

func TestVariablesCannotInjectStructure(t *testing.T) {
	env := map[string]string{"NAME": "x\nversion: 99\ninjected: {a: 1}"}
	cfg, ds := load(t, strings.Replace(goodConfig, "name: C", "name: ${NAME}", 1), env)
	if ds != nil {
		t.Fatal(ds)
	}
	if cfg.Collection.Name != env["NAME"] || cfg.Version != 1 {
		t.Fatalf("collection name %q version %d", cfg.Collection.Name, cfg.Version)
	}
}

func TestSetOverrides(t *testing.T) {
	cfg, err := Load("p.yaml", []byte(goodConfig), "/", LoadOptions{Lookup: func(string) (string, bool) { return "", false },
		Sets: []string{"upload.batch_size=128", "collection.name=Other", "points.limit=10"}})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Upload.BatchSize != 128 || cfg.Collection.Name != "Other" || *cfg.Points.Limit != 10 {
		t.Fatalf("%+v", cfg.Upload)
	}
}

func TestSecretNeverPrinted(t *testing.T) {
	s := Secret("hunter2")
	b, _ := s.MarshalJSON()
	if strings.Contains(s.String(), "hunter2") || strings.Contains(string(b), "hunter2") {
		t.Fatal("secret shown")
	}
}

// AllowUnset (validate --allow-unset): a variable without a value, with
// or without a :? message, is a warning and its key goes unchecked (no
// "url is required" after it); every other problem is still an error.
func TestAllowUnset(t *testing.T) {
	y := strings.NewReplacer("url: http://localhost:6333", `{ url: "${QURL}", api_key: "${QKEY:?set QKEY}" }`, "qdrant:\n", "qdrant: ").Replace(goodConfig) +
		"restore:\n  - { url: \"${T_URL}\" }\n"
	lookup := func(string) (string, bool) { return "", false }
	if _, err := Load("p.yaml", []byte(y), "/base", LoadOptions{Lookup: lookup}); err == nil || !strings.Contains(err.Error(), "variable QURL is not set") {
		t.Fatalf("without AllowUnset: %v", err)
	}
	cfg, err := Load("p.yaml", []byte(y), "/base", LoadOptions{Lookup: lookup, AllowUnset: true})
	if err != nil {
		t.Fatalf("AllowUnset: %v", err)
	}
	var got []string
	for _, d := range cfg.Warnings {
		got = append(got, d.String())
	}
	want := []string{
		`p.yaml:3:18: warning: qdrant.url: variable QURL is not set: not checked`,
		`p.yaml:3:38: warning: qdrant.api_key: variable QKEY is not set: not checked`,
		`p.yaml:17:12: warning: restore[0].url: variable T_URL is not set: not checked`,
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("warnings:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	bad := strings.Replace(y, "size: 768", "size: 0", 1)
	_, err = Load("p.yaml", []byte(bad), "/base", LoadOptions{Lookup: lookup, AllowUnset: true})
	if err == nil || !strings.Contains(err.Error(), "size 0 out of range") {
		t.Fatalf("a real problem with AllowUnset: %v", err)
	}
}
