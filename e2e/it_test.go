package e2e_test

import (
	"context"
	"fmt"
	"math"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/qdrant/go-client/qdrant"
	"github.com/snappipe/snappipe/pipeline"
	"github.com/snappipe/snappipe/stages/all"
)

// TestRealQdrant runs apply against a real Qdrant when
// SNAPPIPE_IT_QDRANT_URL is set (REST URL, e.g. http://localhost:6333;
// SNAPPIPE_IT_QDRANT_GRPC_PORT defaults to 6334, SNAPPIPE_IT_QDRANT_API_KEY
// is optional). Real Qdrant normalises Cosine vectors, so vectors are
// compared after normalising the source rows, with a tolerance.
func TestRealQdrant(t *testing.T) {
	base := os.Getenv("SNAPPIPE_IT_QDRANT_URL")
	if base == "" {
		t.Skip("SNAPPIPE_IT_QDRANT_URL not set: no real Qdrant to test against")
	}
	u, err := url.Parse(base)
	if err != nil {
		t.Fatal(err)
	}
	port := 6334
	if p := os.Getenv("SNAPPIPE_IT_QDRANT_GRPC_PORT"); p != "" {
		port, _ = strconv.Atoi(p)
	}
	key := os.Getenv("SNAPPIPE_IT_QDRANT_API_KEY")
	name := fmt.Sprintf("snappipe-it-%d", time.Now().UnixNano())
	data := filepath.Join(repoRoot(t), "testdata", "sample")
	e := &env{vars: map[string]string{"QDRANT_URL": base, "QDRANT_GRPC_PORT": strconv.Itoa(port), "QDRANT_API_KEY": key}}
	c, err := qdrant.NewClient(&qdrant.Config{Host: u.Hostname(), Port: port, APIKey: key, UseTLS: u.Scheme == "https"})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	e.client = c
	t.Cleanup(func() { c.DeleteCollection(context.Background(), name) })
	dir := t.TempDir()
	cfg := e.load(t, dir, fmt.Sprintf(`version: 1
name: it
qdrant: { url: "${QDRANT_URL}", grpc_port: "${QDRANT_GRPC_PORT}", api_key: "${QDRANT_API_KEY}" }
collection:
  name: %s
  on_exists: recreate
  vectors:
    image: { size: 768, distance: Cosine, datatype: float16 }
    text:  { size: 768, distance: Cosine }
  payload_indexes: { NSFW: keyword }
sources:
  metadata: { path: %[2]s/metadata_0000.parquet }
  image:    { path: %[2]s/img_emb_0000.npy }
  text:     { path: %[2]s/text_emb_0000.npy }
points:
  limit: 300
  vectors: { image: image, text: text }
  payload: { source: metadata }
upload: { batch_size: 64, parallel: 2 }
snapshot: { destination: out }
`, name, data))
	sum, err := pipeline.Apply(context.Background(), cfg, all.Registry(), pipeline.ApplyOptions{StateDir: filepath.Join(dir, ".snappipe")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.DeleteSnapshot(context.Background(), name, sum.SnapshotName) })
	if n := e.count(t, name); n != 300 {
		t.Fatalf("%d points", n)
	}
	img := npyRows(t, filepath.Join(data, "img_emb_0000.npy"))
	for i, p := range e.scroll(t, name) {
		got, want := vectorOf(p, "image"), img[p.GetId().GetNum()]
		var norm float64
		for _, x := range want {
			norm += float64(x) * float64(x)
		}
		norm = math.Sqrt(norm)
		for j := range want {
			if math.Abs(float64(got[j])-float64(want[j])/norm) > 2e-3 {
				t.Fatalf("point %d dim %d: %v vs %v", i, j, got[j], float64(want[j])/norm)
			}
		}
	}
	list, err := c.ListSnapshots(context.Background(), name)
	if err != nil || len(list) != 1 {
		t.Fatalf("snapshots %v %v", list, err)
	}
	if fileSHA(t, sum.SnapshotPath) != list[0].GetChecksum() {
		t.Fatal("snapshot checksum mismatch")
	}
}
