package config

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"go.yaml.in/yaml/v3"
)

var update = flag.Bool("update", false, "rewrite golden files and the committed schema")

func TestSchemaIsCurrent(t *testing.T) {
	got, err := JSONSchema()
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join("..", "..", "schema", "snappipe.schema.json")
	if *update {
		os.WriteFile(path, got, 0o644)
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatal("schema/snappipe.schema.json is stale: run `go test ./pipeline/config -run TestSchemaIsCurrent -update` (or `snappipe schema > schema/snappipe.schema.json`)")
	}
}

func compileSchema(t *testing.T) *jsonschema.Schema {
	t.Helper()
	b, _ := JSONSchema()
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	c := jsonschema.NewCompiler()
	c.DefaultDraft(jsonschema.Draft7)
	if err := c.AddResource(SchemaID, doc); err != nil {
		t.Fatal(err)
	}
	s, err := c.Compile(SchemaID)
	if err != nil {
		t.Fatalf("schema does not compile as draft-07: %v", err)
	}
	return s
}

func yamlToJSON(t *testing.T, b []byte) any {
	t.Helper()
	var v any
	if err := yaml.Unmarshal(b, &v); err != nil {
		t.Fatal(err)
	}
	j, _ := json.Marshal(v)
	out, err := jsonschema.UnmarshalJSON(bytes.NewReader(j))
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestConfigsValidateAgainstSchema(t *testing.T) {
	s := compileSchema(t)
	files, _ := filepath.Glob(filepath.Join("..", "..", "configs", "*.yaml"))
	if len(files) == 0 {
		t.Fatal("no configs")
	}
	for _, f := range files {
		b, _ := os.ReadFile(f)
		if !strings.HasPrefix(string(b), "# yaml-language-server: $schema=../schema/snappipe.schema.json\n") {
			t.Errorf("%s: must start with the yaml-language-server modeline", f)
		}
		if err := s.Validate(yamlToJSON(t, b)); err != nil {
			t.Errorf("%s: %v", f, err)
		}
	}
	// And the schema rejects what the loader rejects.
	bad := strings.Replace(goodConfig, "distance: Cosine", "distance: L2", 1)
	if err := s.Validate(yamlToJSON(t, []byte(bad))); err == nil {
		t.Error("schema accepted distance: L2")
	}
	bad = strings.Replace(goodConfig, "  name: C\n", "  name: C\n  bogus: 1\n", 1)
	if err := s.Validate(yamlToJSON(t, []byte(bad))); err == nil {
		t.Error("schema accepted an unknown key")
	}
}

func TestReadmeConfigReference(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("..", "..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	const start, end = "<!-- config-reference:start -->\n", "<!-- config-reference:end -->"
	s := string(b)
	i, j := strings.Index(s, start), strings.Index(s, end)
	if i < 0 || j < i {
		t.Fatal("README.md lacks the config-reference markers")
	}
	want := ConfigReference()
	if *update {
		s = s[:i+len(start)] + want + s[j:]
		os.WriteFile(filepath.Join("..", "..", "README.md"), []byte(s), 0o644)
		return
	}
	if s[i+len(start):j] != want {
		t.Fatal("README.md config reference is stale: run `go test ./pipeline/config -run TestReadmeConfigReference -update`")
	}
}
