package main

import (
	"bytes"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	dotparser "gonum.org/v1/gonum/graph/formats/dot"
	dotast "gonum.org/v1/gonum/graph/formats/dot/ast"
)

// The README's picture of the sample pipeline is what graph prints.
func TestReadmeGraphIsCurrent(t *testing.T) {
	t.Setenv("QDRANT_URL", "")
	var out, errb bytes.Buffer
	if code := execute([]string{"graph", filepath.Join("..", "..", "configs", "sample.yaml"), "--format", "mermaid"}, strings.NewReader(""), &out, &errb); code != 0 {
		t.Fatalf("graph: %d %s", code, errb.String())
	}
	readme, err := os.ReadFile(filepath.Join("..", "..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	want := "<!-- graph:begin -->\n```mermaid\n" + out.String() + "```\n<!-- graph:end -->"
	if !strings.Contains(string(readme), want) {
		t.Fatalf("README graph is stale; regenerate with snappipe graph configs/sample.yaml --format mermaid:\n%s", out.String())
	}
}

// A shard set with a restore target: nodes, shard counts and edges.
func TestGraphShardsAndRestore(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "p.yaml")
	os.WriteFile(cfg, []byte(`version: 1
name: g
collection: { name: C, vectors: { v: { size: 8, distance: Dot } } }
sources:
  meta: { url: "https://u:p@h/metadata_{0000..0063}.parquet?token=s" }
  img:  { url: "https://h/img_emb_{0000..0063}.npy" }
points: { limit: 5000, vectors: { v: img }, payload: { source: meta } }
restore: [ { url: "http://target:6333", collection: copy, api_key: "${SNAPPIPE_TEST_UNSET_KEY}" } ]
snapshot: { destination: out }
`), 0o644)
	var out, errb bytes.Buffer
	// A variable that is not set (a secret) does not stop the drawing.
	if code := execute([]string{"graph", cfg}, strings.NewReader(""), &out, &errb); code != 0 ||
		!strings.Contains(errb.String(), "warning: restore[0].api_key: variable SNAPPIPE_TEST_UNSET_KEY is not set: not checked") {
		t.Fatalf("graph: %d %s", code, errb.String())
	}
	for _, want := range []string{`"download.img" -> "decode.img"`, `"decode.meta" -> "batch"`, `"fetch" -> "restore.0"`,
		`64 shards`, `limit 5000`, `restore\nhttp://target:6333\ncopy`,
		// A shard range reads as written (it read img_emb_%7B0000..0063%7D).
		`https://h/img_emb_{0000..0063}.npy`, `https://h/metadata_{0000..0063}.parquet?…`} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("DOT lacks %q:\n%s", want, out.String())
		}
	}
	if strings.Contains(out.String(), "u:p@") || strings.Contains(out.String(), "token=s") {
		t.Fatal("graph shows URL credentials")
	}
}

// The DOT output parses with gonum's DOT parser and names every node of
// the plan; every Mermaid node and edge line is well formed.
func TestGraphParses(t *testing.T) {
	t.Setenv("QDRANT_URL", "")
	cfg := filepath.Join("..", "..", "configs", "sample.yaml")
	var out, errb bytes.Buffer
	if code := execute([]string{"graph", cfg}, strings.NewReader(""), &out, &errb); code != 0 {
		t.Fatalf("graph: %s", errb.String())
	}
	f, err := dotparser.ParseString(out.String())
	if err != nil {
		t.Fatalf("DOT does not parse: %v\n%s", err, out.String())
	}
	nodes := map[string]bool{}
	edges := 0
	for _, st := range f.Graphs[0].Stmts {
		switch s := st.(type) {
		case *dotast.NodeStmt:
			nodes[strings.Trim(s.Node.ID, `"`)] = true
		case *dotast.EdgeStmt:
			edges++
		}
	}
	for _, want := range []string{"decode.image", "decode.metadata", "decode.text", "batch", "upsert", "snapshot", "fetch"} {
		if !nodes[want] {
			t.Errorf("DOT lacks node %s", want)
		}
	}
	if edges != 6 {
		t.Errorf("%d edges, want 6", edges)
	}
	out.Reset()
	execute([]string{"graph", cfg, "--format", "mermaid"}, strings.NewReader(""), &out, &errb)
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	node := regexp.MustCompile(`^  n\d+\["[^"]+"\]$`)
	edge := regexp.MustCompile(`^  n\d+ --> n\d+$`)
	if lines[0] != "flowchart LR" {
		t.Fatalf("mermaid header %q", lines[0])
	}
	for _, l := range lines[1:] {
		if !node.MatchString(l) && !edge.MatchString(l) {
			t.Errorf("mermaid line %q", l)
		}
	}
}
