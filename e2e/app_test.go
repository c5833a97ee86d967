package e2e_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/qdrant/go-client/qdrant"
	"github.com/snappipe/snappipe/internal/fixtures"
	"github.com/snappipe/snappipe/internal/qdrantemu"
	"github.com/snappipe/snappipe/internal/sample"
	"github.com/snappipe/snappipe/internal/testkit"
	"github.com/snappipe/snappipe/pipeline"
	"github.com/snappipe/snappipe/pipeline/config"
	"github.com/snappipe/snappipe/stages/all"
	"google.golang.org/protobuf/proto"
)

func TestMain(m *testing.M) {
	slog.SetDefault(slog.New(slog.DiscardHandler))
	os.Exit(m.Run())
}

// env is an emulator plus a client to read back what apply wrote.
type env struct {
	srv    *qdrantemu.Server
	client *qdrant.Client
	vars   map[string]string
}

func newEnv(t *testing.T, opts qdrantemu.Options) *env {
	t.Helper()
	srv, c := testkit.Emulator(t, opts)
	return &env{srv: srv, client: c, vars: map[string]string{"QDRANT_URL": srv.URL(), "QDRANT_GRPC_PORT": testkit.GRPCPort(srv), "QDRANT_API_KEY": opts.APIKey}}
}

// load writes yaml into dir/pipeline.yaml and loads it with the emulator's
// address; QDRANT_URL in the process environment is ignored.
func (e *env) load(t *testing.T, dir, yaml string) *config.Config {
	t.Helper()
	p := filepath.Join(dir, "pipeline.yaml")
	if err := os.WriteFile(p, []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	lookup := func(k string) (string, bool) { v, ok := e.vars[k]; return v, ok }
	cfg, err := config.LoadFile(p, config.LoadOptions{Lookup: lookup})
	if err != nil {
		t.Fatalf("load: %v", err)
	}
	return cfg
}

func (e *env) apply(t *testing.T, cfg *config.Config, opts pipeline.ApplyOptions) (*pipeline.Summary, error) {
	t.Helper()
	if opts.StateDir == "" {
		opts.StateDir = filepath.Join(cfg.Dir, ".snappipe")
	}
	return pipeline.Apply(context.Background(), cfg, all.Registry(), opts)
}

func (e *env) scroll(t *testing.T, name string) []*qdrant.RetrievedPoint {
	t.Helper()
	return testkit.ScrollAll(t, e.client, name)
}

func (e *env) count(t *testing.T, name string) int {
	t.Helper()
	ok, err := e.client.CollectionExists(context.Background(), name)
	if err != nil {
		t.Fatal(err)
	}
	if !ok {
		return 0
	}
	n, err := e.client.Count(context.Background(), &qdrant.CountPoints{CollectionName: name, Exact: qdrant.PtrOf(true)})
	if err != nil {
		t.Fatal(err)
	}
	return int(n)
}

func repoRoot(t *testing.T) string {
	t.Helper()
	wd, _ := os.Getwd()
	return filepath.Join(wd, "..")
}

func sharedFixtures(t *testing.T) string {
	t.Helper()
	return fixtures.Dir(t)
}

func fileSHA(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

func sampleYAML(dataDir string, extra string) string {
	return fmt.Sprintf(`version: 1
name: e2e
qdrant:
  url: ${QDRANT_URL}
  grpc_port: ${QDRANT_GRPC_PORT}
  api_key: ${QDRANT_API_KEY:-}
collection:
  name: LAION-5B
  on_exists: recreate
  vectors:
    image: { size: 768, distance: Cosine, datatype: float16 }
    text:  { size: 768, distance: Cosine }
  shard_number: 2
  payload_indexes: { NSFW: keyword, similarity: float }
sources:
  metadata: { path: %[1]s/metadata_0000.parquet }
  image:    { path: %[1]s/img_emb_0000.npy }
  text:     { path: %[1]s/text_emb_0000.npy }
points:
  vectors: { image: image, text: text }
  payload: { source: metadata }
upload: { batch_size: 64, parallel: 3 }
snapshot:
  destination: out
%[2]s`, dataDir, extra)
}

// checkPoints asserts the collection holds exactly n points whose vectors
// and payloads equal the source rows.
func checkPoints(t *testing.T, e *env, name string, n int, img, txt [][]float32, meta []map[string]*qdrant.Value) {
	t.Helper()
	pts := e.scroll(t, name)
	if len(pts) != n {
		t.Fatalf("collection holds %d points, want %d", len(pts), n)
	}
	for i, p := range pts {
		if p.GetId().GetNum() != uint64(i) {
			t.Fatalf("point %d has id %v", i, p.GetId())
		}
		if !equalF32(vectorOf(p, "image"), img[i]) {
			t.Fatalf("point %d: image vector differs from img_emb row %d", i, i)
		}
		if !equalF32(vectorOf(p, "text"), txt[i]) {
			t.Fatalf("point %d: text vector differs from text_emb row %d", i, i)
		}
		if !proto.Equal(&qdrant.Struct{Fields: p.GetPayload()}, &qdrant.Struct{Fields: meta[i]}) {
			t.Fatalf("point %d: payload %v, want %v", i, p.GetPayload(), meta[i])
		}
	}
}

func checkSnapshot(t *testing.T, e *env, sum *pipeline.Summary, collection string) {
	t.Helper()
	list, err := e.client.ListSnapshots(context.Background(), collection)
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 1 {
		t.Fatalf("server has %d snapshots, want exactly 1", len(list))
	}
	if filepath.Base(sum.SnapshotPath) != list[0].GetName() {
		t.Fatalf("snapshot file %s, server name %s", sum.SnapshotPath, list[0].GetName())
	}
	if got := fileSHA(t, sum.SnapshotPath); got != list[0].GetChecksum() || got != sum.SnapshotSHA256 {
		t.Fatalf("snapshot sha256 %s, server checksum %s, summary %s", got, list[0].GetChecksum(), sum.SnapshotSHA256)
	}
	// No temp or partial files beside it: the snapshot and its manifest.
	ents, _ := os.ReadDir(filepath.Dir(sum.SnapshotPath))
	for _, en := range ents {
		if en.Name() != list[0].GetName() && en.Name() != list[0].GetName()+".json" {
			t.Fatalf("unexpected file in destination: %s", en.Name())
		}
	}
	checkManifest(t, sum, collection)
}

// checkManifest reads the manifest beside the snapshot: it names the file,
// its size and SHA-256, the collection, the points and every source, and
// holds no secret.
func checkManifest(t *testing.T, sum *pipeline.Summary, collection string) *pipeline.Manifest {
	t.Helper()
	b, err := os.ReadFile(sum.SnapshotPath + ".json")
	if err != nil {
		t.Fatalf("no manifest: %v", err)
	}
	var m pipeline.Manifest
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	if m.ManifestVersion != 1 || m.Snapshot != filepath.Base(sum.SnapshotPath) || m.Size != sum.SnapshotSize || m.SHA256 != sum.SnapshotSHA256 ||
		m.Collection.Name != collection || m.Points <= 0 || m.Pipeline.Name == "" || len(m.Pipeline.ConfigHash) != 64 || len(m.Sources) == 0 || m.CreatedAt == "" {
		t.Fatalf("manifest %+v", m)
	}
	for _, s := range m.Sources {
		if s.Size <= 0 || s.RowsUsed < 0 || (s.URL == "") == (s.Path == "") {
			t.Fatalf("manifest source %+v", s)
		}
	}
	for _, secret := range []string{"s3cr3t", "hf_secret", "token=", "user:pass"} {
		if strings.Contains(string(b), secret) {
			t.Fatalf("manifest holds %q", secret)
		}
	}
	return &m
}

func TestApplySample(t *testing.T) {
	e := newEnv(t, qdrantemu.Options{APIKey: "s3cr3t-key"})
	e.vars["QDRANT_API_KEY"] = "s3cr3t-key"
	data := filepath.Join(repoRoot(t), "testdata", "sample")
	dir := t.TempDir()
	cfg := e.load(t, dir, sampleYAML(data, ""))
	sum, err := e.apply(t, cfg, pipeline.ApplyOptions{})
	if err != nil {
		t.Fatal(err)
	}
	img := npyRows(t, filepath.Join(data, "img_emb_0000.npy"))
	txt := npyRows(t, filepath.Join(data, "text_emb_0000.npy"))
	meta := parquetRows(t, filepath.Join(data, "metadata_0000.parquet"))
	checkPoints(t, e, "LAION-5B", 2000, img, txt, meta)
	if sum.PointsWritten != 2000 {
		t.Fatalf("summary points %d", sum.PointsWritten)
	}
	checkSnapshot(t, e, sum, "LAION-5B")
	info, _ := e.client.GetCollectionInfo(context.Background(), "LAION-5B")
	if info.GetPayloadSchema()["NSFW"].GetDataType() != qdrant.PayloadSchemaType_Keyword || info.GetConfig().GetParams().GetShardNumber() != 2 {
		t.Fatalf("collection config: %v", info)
	}
	// The state file never holds the API key.
	st, _ := os.ReadFile(filepath.Join(dir, ".snappipe", "e2e.state.json"))
	if strings.Contains(string(st), "s3cr3t-key") {
		t.Fatal("state file contains the API key")
	}
	// A second apply finds everything done and creates no second snapshot.
	sum2, err := e.apply(t, cfg, pipeline.ApplyOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if !sum2.Resumed || sum2.PointsWritten != 0 || sum2.SnapshotSHA256 != sum.SnapshotSHA256 {
		t.Fatalf("second run: %+v", sum2)
	}
	checkSnapshot(t, e, sum, "LAION-5B")
}

func TestApplyLaionLikeFixtures(t *testing.T) {
	fx := filepath.Join(sharedFixtures(t), "laionlike")
	e := newEnv(t, qdrantemu.Options{})
	dir := t.TempDir()
	cfg := e.load(t, dir, fmt.Sprintf(`version: 1
name: fixtures
qdrant: { url: "${QDRANT_URL}", grpc_port: "${QDRANT_GRPC_PORT}" }
collection:
  name: laionlike
  vectors:
    image: { size: 768, distance: Cosine }
    text:  { size: 768, distance: Cosine }
sources:
  metadata: { path: %[1]s/metadata_laionlike_1000.parquet }
  image:    { path: %[1]s/img_emb_f16_1000.npy }
  text:     { path: %[1]s/text_emb_f16_1000.npy }
points:
  id: { column: key }
  vectors: { image: image, text: text }
  payload: { source: metadata }
upload: { batch_size: 100, parallel: 2 }
snapshot: { destination: out }
`, fx))
	sum, err := e.apply(t, cfg, pipeline.ApplyOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var manifest struct {
		Files []struct {
			File    string    `json:"file"`
			Row0    []float64 `json:"row0_first8"`
			RowLast []float64 `json:"rowlast_first8"`
			Sum     float64   `json:"sum_f64"`
			NormMin float64   `json:"l2norm_min"`
			NormMax float64   `json:"l2norm_max"`
		} `json:"files"`
	}
	b, _ := os.ReadFile(filepath.Join(fx, "npy_manifest.json"))
	if err := json.Unmarshal(b, &manifest); err != nil {
		t.Fatal(err)
	}
	var expect struct {
		Rows  int            `json:"rows"`
		First map[string]any `json:"first"`
		Last  map[string]any `json:"last"`
	}
	b, _ = os.ReadFile(filepath.Join(fx, "metadata_laionlike_1000.parquet.expect.json"))
	if err := json.Unmarshal(b, &expect); err != nil {
		t.Fatal(err)
	}
	pts := e.scroll(t, "laionlike")
	if len(pts) != expect.Rows {
		t.Fatalf("%d points", len(pts))
	}
	// Ids come from the key column ("%05d%04d"): map them back to rows.
	byKey := map[string]*qdrant.RetrievedPoint{}
	for _, p := range pts {
		byKey[p.GetPayload()["key"].GetStringValue()] = p
		k, _ := strconv.ParseUint(p.GetPayload()["key"].GetStringValue(), 10, 64)
		if p.GetId().GetNum() != k {
			t.Fatalf("id %v for key %s", p.GetId(), p.GetPayload()["key"].GetStringValue())
		}
	}
	for _, row := range []map[string]any{expect.First, expect.Last} {
		p := byKey[row["key"].(string)]
		if p == nil {
			t.Fatalf("no point for key %v", row["key"])
		}
		for k, want := range row {
			v := p.GetPayload()[k]
			var got any
			switch x := v.GetKind().(type) {
			case *qdrant.Value_NullValue:
				got = nil
			case *qdrant.Value_StringValue:
				got = x.StringValue
			case *qdrant.Value_IntegerValue:
				got = float64(x.IntegerValue)
			case *qdrant.Value_DoubleValue:
				got = x.DoubleValue
			}
			if got != want {
				t.Errorf("key %v: %s = %#v, want %#v", row["key"], k, got, want)
			}
		}
	}
	for fi, name := range []string{"image", "text"} {
		m := manifest.Files[fi]
		sumAll := 0.0
		nmin, nmax := math.Inf(1), math.Inf(-1)
		for _, p := range pts {
			var n2 float64
			for _, x := range vectorOf(p, name) {
				sumAll += float64(x)
				n2 += float64(x) * float64(x)
			}
			nmin, nmax = math.Min(nmin, math.Sqrt(n2)), math.Max(nmax, math.Sqrt(n2))
		}
		if math.Abs(sumAll-m.Sum) > 1e-6 {
			t.Errorf("%s: sum %v, manifest %v", name, sumAll, m.Sum)
		}
		if math.Abs(nmin-m.NormMin) > 1e-9 || math.Abs(nmax-m.NormMax) > 1e-9 {
			t.Errorf("%s: norms [%v, %v], manifest [%v, %v]", name, nmin, nmax, m.NormMin, m.NormMax)
		}
		first := vectorOf(byKey[expect.First["key"].(string)], name)
		for j, w := range m.Row0 {
			if float64(first[j]) != w {
				t.Errorf("%s row0[%d] = %v, want %v", name, j, first[j], w)
			}
		}
	}
	checkSnapshot(t, e, sum, "laionlike")
}

func TestApplyRealClipRetrieval(t *testing.T) {
	fx := filepath.Join(sharedFixtures(t), "real")
	e := newEnv(t, qdrantemu.Options{})
	dir := t.TempDir()
	cfg := e.load(t, dir, fmt.Sprintf(`version: 1
name: real
qdrant: { url: "${QDRANT_URL}", grpc_port: "${QDRANT_GRPC_PORT}" }
collection:
  name: fashion
  vectors:
    image: { size: 512, distance: Cosine }
    text:  { size: 512, distance: Cosine }
sources:
  metadata: { path: %[1]s/metadata_0.parquet }
  image:    { path: %[1]s/img_emb_0.npy }
  text:     { path: %[1]s/text_emb_0.npy }
points:
  vectors: { image: image, text: text }
  payload: { source: metadata }
snapshot: { destination: out }
`, fx))
	sum, err := e.apply(t, cfg, pipeline.ApplyOptions{})
	if err != nil {
		t.Fatal(err)
	}
	checkPoints(t, e, "fashion", 9, npyRows(t, filepath.Join(fx, "img_emb_0.npy")), npyRows(t, filepath.Join(fx, "text_emb_0.npy")),
		parquetRows(t, filepath.Join(fx, "metadata_0.parquet")))
	checkSnapshot(t, e, sum, "fashion")
}

func npyRows(t *testing.T, path string) [][]float32 { return testkit.NpyRows(t, path) }

func parquetRows(t *testing.T, path string) []map[string]*qdrant.Value {
	return testkit.ParquetRows(t, path)
}

func vectorOf(p *qdrant.RetrievedPoint, name string) []float32 { return testkit.VectorOf(p, name) }

func equalF32(a, b []float32) bool { return testkit.EqualF32(a, b) }

// loadedSample is sampleYAML over a generated LAION-like sample (768-d),
// edited by edit (when not nil), applied once: a finished run whose
// config a test then changes.
func loadedSample(t *testing.T, rows, seed int, edit func(*config.Config)) (*env, *config.Config) {
	t.Helper()
	data := t.TempDir()
	if err := sample.Generate(sample.Options{Rows: rows, Dim: 768, Seed: uint64(seed), Out: data}); err != nil {
		t.Fatal(err)
	}
	e := newEnv(t, qdrantemu.Options{})
	cfg := e.load(t, t.TempDir(), sampleYAML(data, ""))
	if edit != nil {
		edit(cfg)
	}
	if _, err := e.apply(t, cfg, pipeline.ApplyOptions{}); err != nil {
		t.Fatal(err)
	}
	return e, cfg
}

// A destination changed after a finished run: plan says the snapshot will
// be written there (it said "up to date" while apply wrote it), apply
// writes the same snapshot there without taking another, and then plan
// has nothing to do.
func TestChangedDestinationIsPlannedAndFetched(t *testing.T) {
	e, cfg := loadedSample(t, 300, 4, nil)
	dir := cfg.Dir
	cfg.Snapshot.Destination = "elsewhere"
	sf, _, _ := pipeline.OpenState(filepath.Join(dir, ".snappipe", "e2e.state.json"))
	if lines, err := pipeline.Status(cfg, all.Registry(), sf); err != nil || !strings.Contains(strings.Join(lines, "\n"), "; snapshot.destination changed since: apply writes it there)") {
		t.Fatalf("status: %v\n%s", err, strings.Join(lines, "\n"))
	}
	rep, err := pipeline.PlanRun(context.Background(), cfg, all.Registry(), "")
	if err != nil || !strings.Contains(rep.Text(), "write it to "+filepath.Join(dir, "elsewhere")) {
		t.Fatalf("plan: %v\n%s", err, rep.Text())
	}
	sum, err := e.apply(t, cfg, pipeline.ApplyOptions{})
	if err != nil || filepath.Dir(sum.SnapshotPath) != filepath.Join(dir, "elsewhere") {
		t.Fatalf("apply: %v %+v", err, sum)
	}
	checkSnapshot(t, e, sum, "LAION-5B")
	if rep, err := pipeline.PlanRun(context.Background(), cfg, all.Registry(), ""); err != nil || rep.Pending() {
		t.Fatalf("plan after apply: %v\n%s", err, rep.Text())
	}
}

// A --full-refresh that is not confirmed changes nothing: the collection
// keeps its points and the checkpoint stays as it was (plan has nothing
// to do, a plain apply writes nothing). Confirmed, it is asked once and
// reloads every point.
func TestRefusedFullRefreshKeepsTheCheckpoint(t *testing.T) {
	e, cfg := loadedSample(t, 120, 8, nil)
	refuse := func(c string, n uint64) error {
		return fmt.Errorf("no terminal to confirm dropping %s (%d points)", c, n)
	}
	if _, err := e.apply(t, cfg, pipeline.ApplyOptions{FullRefresh: true, ConfirmRecreate: refuse}); err == nil || !strings.Contains(err.Error(), "(120 points)") {
		t.Fatalf("refused --full-refresh: %v", err)
	}
	if rep, err := pipeline.PlanRun(context.Background(), cfg, all.Registry(), ""); err != nil || rep.Pending() {
		t.Fatalf("plan after a refused --full-refresh: %v\n%s", err, rep.Text())
	}
	upserts := len(e.srv.OpsOf("upsert"))
	if sum, err := e.apply(t, cfg, pipeline.ApplyOptions{}); err != nil || sum.PointsWritten != 0 || len(e.srv.OpsOf("upsert")) != upserts {
		t.Fatalf("apply after a refused --full-refresh: %v, %d points written", err, sum.PointsWritten)
	}
	asked := 0
	yes := func(string, uint64) error { asked++; return nil }
	if sum, err := e.apply(t, cfg, pipeline.ApplyOptions{FullRefresh: true, ConfirmRecreate: yes}); err != nil || sum.PointsWritten != 120 || asked != 1 {
		t.Fatalf("confirmed --full-refresh: %v, %d points written, asked %d times", err, sum.PointsWritten, asked)
	}
}
