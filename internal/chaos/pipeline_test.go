package chaos

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

// pipeline is a harness pipeline file: what the scenarios vary, around
// what they share (two dim-wide Cosine vectors from the image and text
// sources, payload from metadata).
type pipeline struct {
	name       string // default "chaos" (the state file's name)
	qdrant     string // the qdrant mapping's body
	collection string // extra collection lines ("  on_exists: reuse\n")
	sources    string // the metadata, image and text lines
	rest       string // upload, download, snapshot
}

// localSources are the three LAION-like files of dir.
func localSources(dir string) string {
	return fmt.Sprintf(`  metadata: { path: "%[1]s/metadata_0000.parquet" }
  image:    { path: "%[1]s/img_emb_0000.npy" }
  text:     { path: "%[1]s/text_emb_0000.npy" }
`, dir)
}

// emulatorQdrant is the qdrant mapping's body for an emulator.
func emulatorQdrant(httpAddr, grpcPort string) string {
	return fmt.Sprintf(`url: "http://%s", grpc_port: %s`, httpAddr, grpcPort)
}

// write puts the file in dir as p.yaml and returns its path.
func (p pipeline) write(t *testing.T, dir string) string {
	t.Helper()
	if p.name == "" {
		p.name = "chaos"
	}
	body := fmt.Sprintf(`version: 1
name: %s
qdrant: { %s }
collection:
  name: chaos
%s  vectors:
    image: { size: %d, distance: Cosine }
    text:  { size: %d, distance: Cosine }
sources:
%spoints:
  vectors: { image: image, text: text }
  payload: { source: metadata }
%s`, p.name, p.qdrant, p.collection, dim, dim, p.sources, p.rest)
	cfg := filepath.Join(dir, "p.yaml")
	if err := os.WriteFile(cfg, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	return cfg
}
