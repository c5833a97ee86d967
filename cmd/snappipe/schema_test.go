package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/snappipe/snappipe/pipeline"
	"github.com/snappipe/snappipe/pipeline/config"
)

// The committed schema and the README's config reference are what the
// program generates with the format plugins it really registers (the
// pipeline package's own tests use stand-in descriptors).
func TestSchemaAndReferenceMatchRegisteredFormats(t *testing.T) {
	var out, errb bytes.Buffer
	if code := execute([]string{"schema"}, strings.NewReader(""), &out, &errb); code != 0 {
		t.Fatalf("schema: exit %d: %s", code, errb.String())
	}
	want, err := os.ReadFile(filepath.Join("..", "..", "schema", "snappipe.schema.json"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(bytes.TrimSpace(out.Bytes()), bytes.TrimSpace(want)) {
		t.Fatal("schema/snappipe.schema.json differs from `snappipe schema`: regenerate it (snappipe schema > schema/snappipe.schema.json)")
	}
	readme, _ := os.ReadFile(filepath.Join("..", "..", "README.md"))
	if !strings.Contains(string(readme), config.ConfigReference()) {
		t.Fatal("README.md's config reference differs from the registered formats' (go test ./pipeline/config -run TestReadmeConfigReference -update)")
	}
	for _, f := range []string{"npy", "npz", "parquet", "fvecs", "bvecs"} {
		if pipeline.FormatByName(f) == nil {
			t.Errorf("format %s is not registered", f)
		}
	}
}
