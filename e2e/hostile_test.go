package e2e_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/parquet-go/parquet-go"
	"github.com/qdrant/go-client/qdrant"

	"github.com/snappipe/snappipe/internal/qdrantemu"
	"github.com/snappipe/snappipe/internal/sample"
	"github.com/snappipe/snappipe/pipeline"
	"github.com/snappipe/snappipe/stages/all"
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

// A bad row late in a file fails the run after many points were written:
// the error says what the collection holds and how to go on, and plan and
// status show the failed run's partial state.
func TestLateBadRowSaysWhatIsLoaded(t *testing.T) {
	dir := t.TempDir()
	f, err := os.Create(filepath.Join(dir, "d.parquet"))
	if err != nil {
		t.Fatal(err)
	}
	w := parquet.NewGenericWriter[dupRow](f)
	rows := make([]dupRow, 3000)
	for i := range rows {
		rows[i] = dupRow{ID: uint64(i), Vec: []float32{float32(i), 1}}
	}
	rows[2950].Vec = []float32{1} // short
	if _, err := w.Write(rows); err != nil {
		t.Fatal(err)
	}
	w.Close()
	f.Close()
	e := newEnv(t, qdrantemu.Options{})
	cfg := e.load(t, dir, `version: 1
name: late
qdrant: { url: "${QDRANT_URL}", grpc_port: "${QDRANT_GRPC_PORT}" }
collection:
  name: late
  vectors: { v: { size: 2, distance: Dot } }
sources:
  d: { path: d.parquet }
points:
  vectors: { v: { source: d, column: vec } }
upload: { batch_size: 100 }
snapshot: { destination: out }
`)
	_, err = e.apply(t, cfg, pipeline.ApplyOptions{})
	var pe *pipeline.PartialError
	if !errors.As(err, &pe) || pe.Loaded < 1000 || pe.Loaded > 2900 || pe.Rows != 3000 {
		t.Fatalf("err = %v", err)
	}
	for _, want := range []string{"2950", `collection "late" now holds the points of the first`, "run the same command again to resume", "--full-refresh"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q:\n%v", want, err)
		}
	}
	n, _ := e.client.Count(context.Background(), &qdrant.CountPoints{CollectionName: "late", Exact: qdrant.PtrOf(true)})
	if int64(n) < pe.Loaded {
		t.Fatalf("collection holds %d points, the error says %d", n, pe.Loaded)
	}
	rep, err := pipeline.PlanRun(context.Background(), cfg, all.Registry(), "")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(rep.Text(), "the last run failed at") || !strings.Contains(rep.Text(), fmt.Sprintf("holds the first %d of 3000 rows", pe.Loaded)) {
		t.Fatalf("plan:\n%s", rep.Text())
	}
	sf, _, err := pipeline.OpenState(filepath.Join(dir, ".snappipe", "late.state.json"))
	if err != nil {
		t.Fatal(err)
	}
	lines, err := pipeline.Status(cfg, all.Registry(), sf)
	if err != nil || !strings.Contains(strings.Join(lines, "\n"), "2950") {
		t.Fatalf("status: %v\n%s", err, strings.Join(lines, "\n"))
	}
}

// A corrupt state file stops apply (the message names --full-refresh), and
// --full-refresh gets past it, keeping the old file as *.corrupt; a state
// whose hash was edited by hand says so instead of listing no changes.
func TestCorruptStateAndFullRefresh(t *testing.T) {
	dir := t.TempDir()
	if err := sample.Generate(sample.Options{Rows: 50, Dim: 4, Seed: 1, Out: dir}); err != nil {
		t.Fatal(err)
	}
	e := newEnv(t, qdrantemu.Options{})
	cfg := e.load(t, dir, `version: 1
name: corrupt
qdrant: { url: "${QDRANT_URL}", grpc_port: "${QDRANT_GRPC_PORT}" }
collection: { name: corrupt, on_exists: recreate, vectors: { v: { size: 4, distance: Dot } } }
sources: { s: { path: img_emb_0000.npy } }
points: { vectors: { v: s } }
snapshot: { destination: out }
`)
	state := filepath.Join(dir, ".snappipe", "corrupt.state.json")
	os.MkdirAll(filepath.Dir(state), 0o755)
	os.WriteFile(state, []byte(`{"state_version": 1, "upsert": {`), 0o600)
	if _, err := e.apply(t, cfg, pipeline.ApplyOptions{}); err == nil || !strings.Contains(err.Error(), "corrupt") || !strings.Contains(err.Error(), "--full-refresh") {
		t.Fatalf("corrupt state: %v", err)
	}
	yes := func(string, uint64) error { return nil }
	if _, err := e.apply(t, cfg, pipeline.ApplyOptions{FullRefresh: true, ConfirmRecreate: yes}); err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(state + ".corrupt"); err != nil || string(b) != `{"state_version": 1, "upsert": {` {
		t.Fatalf("corrupt file not kept aside: %q %v", b, err)
	}
	b, _ := os.ReadFile(state)
	edited := regexp.MustCompile(`"config_hash":"[0-9a-f]+"`).ReplaceAll(b, []byte(`"config_hash":"0000"`))
	os.WriteFile(state, edited, 0o600)
	if _, err := e.apply(t, cfg, pipeline.ApplyOptions{}); err == nil || !strings.Contains(err.Error(), "does not match its own config_fields") {
		t.Fatalf("edited hash: %v", err)
	}
}

// A destination that is a file fails apply before the collection is
// touched, and plan reports it.
func TestUnwritableDestinationFailsFirst(t *testing.T) {
	dir := t.TempDir()
	if err := sample.Generate(sample.Options{Rows: 50, Dim: 4, Seed: 1, Out: dir}); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(dir, "out"), []byte("a file"), 0o644)
	e := newEnv(t, qdrantemu.Options{})
	cfg := e.load(t, dir, `version: 1
name: dest
qdrant: { url: "${QDRANT_URL}", grpc_port: "${QDRANT_GRPC_PORT}" }
collection: { name: dest, vectors: { v: { size: 4, distance: Dot } } }
sources: { s: { path: img_emb_0000.npy } }
points: { vectors: { v: s } }
snapshot: { destination: out }
`)
	rep, err := pipeline.PlanRun(context.Background(), cfg, all.Registry(), "")
	if err != nil || !strings.Contains(strings.Join(rep.Problems, "\n"), "snapshot.destination:") {
		t.Fatalf("plan: %v\n%s", err, rep.Text())
	}
	_, err = e.apply(t, cfg, pipeline.ApplyOptions{})
	if err == nil || !strings.Contains(err.Error(), "snapshot.destination: cannot create") {
		t.Fatalf("err = %v", err)
	}
	if ops := e.srv.OpsOf("create"); len(ops) != 0 {
		t.Fatalf("collection created before the destination was checked: %v", ops)
	}
}

// Quantization reaches the server (collection-wide and per vector), and a
// reuse against a collection with another quantization is refused naming it.
func TestQuantizationReachesTheServer(t *testing.T) {
	dir := t.TempDir()
	if err := sample.Generate(sample.Options{Rows: 40, Dim: 8, Seed: 1, Out: dir}); err != nil {
		t.Fatal(err)
	}
	e := newEnv(t, qdrantemu.Options{})
	y := `version: 1
name: quant
qdrant: { url: "${QDRANT_URL}", grpc_port: "${QDRANT_GRPC_PORT}" }
collection:
  name: quant
  on_exists: reuse
  quantization: { scalar: { quantile: 0.99 } }
  write_consistency_factor: 1
  wal: { capacity_mb: 64, segments_ahead: 1 }
  metadata: { source: laion, built_by: snappipe }
  strict_mode: { enabled: true, upsert_max_batchsize: 256, max_points_count: 1000, search_max_oversampling: 2.5 }
  vectors:
    v: { size: 8, distance: Cosine, quantization: { product: { compression: x16, always_ram: true } } }
sources: { s: { path: img_emb_0000.npy } }
points: { vectors: { v: s } }
snapshot: { destination: out }
`
	if _, err := e.apply(t, e.load(t, dir, y), pipeline.ApplyOptions{}); err != nil {
		t.Fatal(err)
	}
	info, err := e.client.GetCollectionInfo(context.Background(), "quant")
	if err != nil || info.GetConfig().GetQuantizationConfig().GetScalar().GetQuantile() != float32(0.99) ||
		info.GetConfig().GetParams().GetVectorsConfig().GetParamsMap().GetMap()["v"].GetQuantizationConfig().GetProduct().GetCompression() != qdrant.CompressionRatio_x16 {
		t.Fatalf("info %v %v", info, err)
	}
	if cfg := info.GetConfig(); cfg.GetWalConfig().GetWalCapacityMb() != 64 || cfg.GetMetadata()["source"].GetStringValue() != "laion" || cfg.GetParams().GetWriteConsistencyFactor() != 1 {
		t.Fatalf("wal/metadata/write consistency: %v", cfg)
	}
	if sm := info.GetConfig().GetStrictModeConfig(); !sm.GetEnabled() || sm.GetUpsertMaxBatchsize() != 256 || sm.GetMaxPointsCount() != 1000 || sm.GetSearchMaxOversampling() != 2.5 {
		t.Fatalf("strict mode: %v", sm)
	}
	_, err = e.apply(t, e.load(t, t.TempDir(), strings.Replace(strings.Replace(y, "{ scalar: { quantile: 0.99 } }", "{ binary: {} }", 1), "path: img_emb_0000.npy", "path: "+dir+"/img_emb_0000.npy", 1)), pipeline.ApplyOptions{})
	if err == nil || !strings.Contains(err.Error(), "quantization scalar int8 quantile 0.99 != binary") {
		t.Fatalf("reuse with another quantization: %v", err)
	}
}
