package e2e_test

import (
	"context"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/parquet-go/parquet-go"
	"github.com/qdrant/go-client/qdrant"

	"github.com/snappipe/snappipe/internal/qdrantemu"
	"github.com/snappipe/snappipe/pipeline"
)

type dupRow struct {
	ID  uint64    `parquet:"id"`
	Vec []float32 `parquet:"vec"`
}

// 1000 rows whose id column holds 10 distinct ids load into 10 points: the
// run fails, saying ids collided and naming examples, unless
// points.allow_duplicate_ids is set.
func TestDuplicateIDsAreAnError(t *testing.T) {
	dir := t.TempDir()
	f, err := os.Create(filepath.Join(dir, "d.parquet"))
	if err != nil {
		t.Fatal(err)
	}
	w := parquet.NewGenericWriter[dupRow](f)
	rows := make([]dupRow, 1000)
	for i := range rows {
		rows[i] = dupRow{ID: uint64(i % 10), Vec: []float32{float32(i), 1}}
	}
	if _, err := w.Write(rows); err != nil {
		t.Fatal(err)
	}
	w.Close()
	f.Close()
	e := newEnv(t, qdrantemu.Options{})
	y := `version: 1
name: dups
qdrant: { url: "${QDRANT_URL}", grpc_port: "${QDRANT_GRPC_PORT}" }
collection:
  name: dups
  on_exists: recreate
  vectors: { v: { size: 2, distance: Dot } }
sources:
  d: { path: d.parquet }
points:
  id: { column: id }
  vectors: { v: { source: d, column: vec } }
  payload: { source: d, exclude: [vec] }
upload: { batch_size: 100 }
snapshot: { destination: out }
`
	cfg := e.load(t, dir, y)
	_, err = e.apply(t, cfg, pipeline.ApplyOptions{})
	if err == nil {
		t.Fatal("a load that collapsed 1000 rows into 10 points succeeded")
	}
	for _, want := range []string{`collection "dups" holds 10 points after 1000 rows were loaded: 990 rows reused an id`,
		`points.id.column "id"`, "points.allow_duplicate_ids: true"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q:\n%v", want, err)
		}
	}
	if !regexp.MustCompile(`e\.g\. id (\d) at rows \d*(\d) and \d*(\d)`).MatchString(err.Error()) {
		t.Errorf("no example of a colliding id: %v", err)
	}
	cfg = e.load(t, dir, strings.Replace(y, "  id: { column: id }\n", "  id: { column: id }\n  allow_duplicate_ids: true\n", 1))
	if _, err := e.apply(t, cfg, pipeline.ApplyOptions{FullRefresh: true, ConfirmRecreate: func(string, uint64) error { return nil }}); err != nil {
		t.Fatal(err)
	}
	n, err := e.client.Count(context.Background(), &qdrant.CountPoints{CollectionName: "dups", Exact: qdrant.PtrOf(true)})
	if err != nil || n != 10 {
		t.Fatalf("count %d, %v", n, err)
	}
}
