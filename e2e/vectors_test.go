package e2e_test

import (
	"cmp"
	"context"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/qdrant/go-client/qdrant"
	"github.com/snappipe/snappipe/internal/qdrantemu"
	"github.com/snappipe/snappipe/internal/testkit"
	"github.com/snappipe/snappipe/pipeline"
	"github.com/snappipe/snappipe/stages/all"
)

// expectRow is one row of testdata/vectors/expect.json, written by the
// same pyarrow script that wrote the Parquet files.
type expectRow struct {
	ID      uint64      `json:"id"`
	Title   string      `json:"title"`
	Dense   []float64   `json:"dense"`
	Dense16 []float64   `json:"dense16"`
	Tokens  [][]float64 `json:"tokens"`
	SpIdx   []uint32    `json:"sp_idx"`
	SpVal   []float64   `json:"sp_val"`
	BmIdx   []uint32    `json:"bm_idx"`
	BmVal   []float64   `json:"bm_val"`
}

const mixedYAML = `version: 1
name: mixed
qdrant: { url: "${QDRANT_URL}", grpc_port: "${QDRANT_GRPC_PORT}" }
collection:
  name: mixed
  on_exists: fail
  quantization: { scalar: { quantile: 0.99, always_ram: true } }
  vectors:
    dense:   { size: 8, distance: Cosine }
    half:    { size: 4, distance: Dot, datatype: float16 }
    colbert: { size: 6, distance: Cosine, multivector: { comparator: max_sim } }
  sparse_vectors:
    splade: {}
    bm25: { modifier: idf, on_disk: true }
sources:
  t: { path: PATH }
points:
  id: { column: id }
  vectors:
    dense:   { source: t, column: dense }
    half:    { source: t, column: dense16 }
    colbert: { source: t, column: tokens }
    splade:  { source: t, indices: sp_idx, values: sp_val }
    bm25:    { source: t, indices: bm_idx, values: bm_val }
  payload: { source: t, include: [title] }
upload: { batch_size: 64 }
snapshot: { destination: out }
`

func f32s(v []float64) []float32 {
	out := make([]float32, len(v))
	for i, x := range v {
		out[i] = float32(x)
	}
	return out
}

// sortedSparse orders a sparse vector by index (Qdrant stores it so).
func sortedSparse(idx []uint32, val []float32) ([]uint32, []float32) {
	type e struct {
		i uint32
		v float32
	}
	es := make([]e, len(idx))
	for k := range idx {
		es[k] = e{idx[k], val[k]}
	}
	slices.SortFunc(es, func(a, b e) int { return cmp.Compare(a.i, b.i) })
	oi, ov := make([]uint32, len(es)), make([]float32, len(es))
	for k, x := range es {
		oi[k], ov[k] = x.i, x.v
	}
	return oi, ov
}

// A Parquet file written by Apache Arrow with dense (float and float16),
// multivector (list<list<float>>) and two sparse (uint32/float and
// int64/double) columns loads exactly: every point read back with the
// go-client has its dense values, its token vectors, its sparse pairs and
// its payload; the collection shows the quantization, the max_sim
// multivector and the sparse vectors; the snapshot recovers into a fresh
// server with every vector intact.
func TestMultivectorAndSparseFromArrow(t *testing.T) {
	src := filepath.Join(repoRoot(t), "testdata", "vectors")
	var want []expectRow
	b, err := os.ReadFile(filepath.Join(src, "expect.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &want); err != nil {
		t.Fatal(err)
	}
	e := newEnv(t, qdrantemu.Options{})
	dir := t.TempDir()
	cfg := e.load(t, dir, strings.Replace(mixedYAML, "PATH", filepath.Join(src, "mixed.parquet"), 1))
	sum, err := e.apply(t, cfg, pipeline.ApplyOptions{})
	if err != nil {
		t.Fatal(err)
	}
	pts := e.scroll(t, "mixed")
	if len(pts) != len(want) || sum.PointsWritten != int64(len(want)) {
		t.Fatalf("%d points (%d written), want %d", len(pts), sum.PointsWritten, len(want))
	}
	byID := map[uint64]*qdrant.RetrievedPoint{}
	for _, p := range pts {
		byID[p.GetId().GetNum()] = p
	}
	empty := 0
	for row, w := range want {
		p := byID[w.ID]
		if p == nil {
			t.Fatalf("row %d: point %d missing", row, w.ID)
		}
		vs := p.GetVectors().GetVectors().GetVectors()
		if got := testkit.VectorOf(p, "dense"); !testkit.EqualF32(got, f32s(w.Dense)) {
			t.Fatalf("row %d dense: %v want %v", row, got, w.Dense)
		}
		if got := testkit.VectorOf(p, "half"); !testkit.EqualF32(got, f32s(w.Dense16)) {
			t.Fatalf("row %d float16 dense: %v want %v", row, got, w.Dense16)
		}
		toks := vs["colbert"].GetMultiDense().GetVectors()
		if len(toks) != len(w.Tokens) {
			t.Fatalf("row %d: %d token vectors, want %d", row, len(toks), len(w.Tokens))
		}
		for k := range toks {
			if !testkit.EqualF32(toks[k].GetData(), f32s(w.Tokens[k])) {
				t.Fatalf("row %d token %d: %v want %v", row, k, toks[k].GetData(), w.Tokens[k])
			}
		}
		for _, sp := range []struct {
			name string
			idx  []uint32
			val  []float64
		}{{"splade", w.SpIdx, w.SpVal}, {"bm25", w.BmIdx, w.BmVal}} {
			wi, wv := sortedSparse(sp.idx, f32s(sp.val))
			got := vs[sp.name].GetSparse()
			if len(wi) == 0 {
				empty++ // may come back absent or empty
				if len(got.GetIndices())+len(got.GetValues()) != 0 {
					t.Fatalf("row %d %s: %v, want empty", row, sp.name, got)
				}
				continue
			}
			if !slices.Equal(got.GetIndices(), wi) || !testkit.EqualF32(got.GetValues(), wv) {
				t.Fatalf("row %d %s: %v / %v, want %v / %v", row, sp.name, got.GetIndices(), got.GetValues(), wi, wv)
			}
		}
		if p.GetPayload()["title"].GetStringValue() != w.Title || len(p.GetPayload()) != 1 {
			t.Fatalf("row %d payload %v", row, p.GetPayload())
		}
	}
	if empty == 0 || !slices.ContainsFunc(want, func(r expectRow) bool { return slices.Contains(r.SpIdx, math.MaxUint32) }) {
		t.Fatal("the fixture lost its edge cases (empty sparse rows, index 4294967295)")
	}
	info, err := e.client.GetCollectionInfo(context.Background(), "mixed")
	if err != nil {
		t.Fatal(err)
	}
	params := info.GetConfig().GetParams()
	vm := params.GetVectorsConfig().GetParamsMap().GetMap()
	if vm["colbert"].GetMultivectorConfig().GetComparator() != qdrant.MultiVectorComparator_MaxSim || vm["dense"].GetMultivectorConfig() != nil ||
		params.GetSparseVectorsConfig().GetMap()["bm25"].GetModifier() != qdrant.Modifier_Idf || !params.GetSparseVectorsConfig().GetMap()["bm25"].GetIndex().GetOnDisk() ||
		params.GetSparseVectorsConfig().GetMap()["splade"] == nil ||
		info.GetConfig().GetQuantizationConfig().GetScalar().GetQuantile() != 0.99 || !info.GetConfig().GetQuantizationConfig().GetScalar().GetAlwaysRam() {
		t.Fatalf("collection config: %v", info.GetConfig())
	}

	// The snapshot recovers into a fresh server with every vector intact.
	e2 := newEnv(t, qdrantemu.Options{})
	recoverInto(t, e2, sum.SnapshotPath, "mixed")
	testkit.SamePoints(t, e.client, "mixed", e2.client, "mixed")
	info2, err := e2.client.GetCollectionInfo(context.Background(), "mixed")
	if err != nil || info2.GetConfig().GetParams().GetSparseVectorsConfig().GetMap()["bm25"].GetModifier() != qdrant.Modifier_Idf {
		t.Fatalf("recovered config: %v %v", info2.GetConfig(), err)
	}
}

// A sparse pair whose lists differ in length is refused naming the source
// and the row, and nothing is written.
func TestUnequalSparsePairRefused(t *testing.T) {
	src := filepath.Join(repoRoot(t), "testdata", "vectors", "bad_sparse.parquet")
	e := newEnv(t, qdrantemu.Options{})
	y := `version: 1
name: bad-sparse
qdrant: { url: "${QDRANT_URL}", grpc_port: "${QDRANT_GRPC_PORT}" }
collection:
  name: bad
  vectors: { dense: { size: 4, distance: Dot } }
  sparse_vectors: { s: ~ }
sources: { t: { path: ` + src + ` } }
points:
  vectors:
    dense: { source: t, column: dense }
    s: { source: t, indices: sp_idx, values: sp_val }
snapshot: { destination: out }
`
	_, err := e.apply(t, e.load(t, t.TempDir(), y), pipeline.ApplyOptions{})
	if err == nil || !strings.Contains(err.Error(), "source t") || !strings.Contains(err.Error(), "row 5") ||
		!strings.Contains(err.Error(), `indices column "sp_idx" has 3 entries, values column "sp_val" has 2`) {
		t.Fatalf("err = %v", err)
	}
	if n := e.count(t, "bad"); n != 0 {
		t.Fatalf("%d points written", n)
	}
	if ok, _ := e.client.CollectionExists(context.Background(), "bad"); ok {
		t.Fatal("the collection was created")
	}
}

// plan, against an existing collection it would reuse, names every
// setting that differs: vectors of each kind and the collection settings.
func TestPlanShowsCollectionDifferences(t *testing.T) {
	src := filepath.Join(repoRoot(t), "testdata", "vectors", "mixed.parquet")
	e := newEnv(t, qdrantemu.Options{})
	y := strings.Replace(mixedYAML, "PATH", src, 1)
	y = strings.Replace(y, "  quantization:", "  wal: { capacity_mb: 64 }\n  metadata: { owner: search }\n  write_consistency_factor: 1\n  strict_mode: { enabled: true, max_query_limit: 100 }\n  quantization:", 1)
	if _, err := e.apply(t, e.load(t, t.TempDir(), y), pipeline.ApplyOptions{}); err != nil {
		t.Fatal(err)
	}
	changed := strings.NewReplacer(
		"on_exists: fail", "on_exists: reuse",
		"capacity_mb: 64", "capacity_mb: 128",
		"owner: search", "owner: ads",
		"bm25: { modifier: idf, on_disk: true }", "bm25: { modifier: none, on_disk: true }",
		", multivector: { comparator: max_sim }", "",
		"quantile: 0.99, always_ram: true", "quantile: 0.95, always_ram: true",
		"datatype: float16", "datatype: float32",
		"max_query_limit: 100 }", "max_query_limit: 50, max_timeout: 10 }",
	).Replace(y)
	changed = strings.Replace(changed, "    colbert: { source: t, column: tokens }\n", "    colbert: { source: t, column: dense }\n", 1)
	changed = strings.Replace(changed, "size: 6, distance: Cosine", "size: 8, distance: Cosine", 1)
	cfg := e.load(t, t.TempDir(), changed)
	rep, err := pipeline.PlanRun(context.Background(), cfg, all.Registry(), "")
	if err != nil {
		t.Fatal(err)
	}
	text := strings.Join(rep.Problems, "\n")
	for _, want := range []string{
		`collection "mixed": wal.capacity_mb 64 != 128`,
		`collection "mixed": metadata "owner" is "search", the config says "ads"`,
		`collection "mixed": sparse vector "bm25" modifier idf != none`,
		`collection "mixed": vector "colbert" is a multivector (MaxSim); the config makes it a plain dense vector`,
		`collection "mixed": vector "colbert" size 6 != 8`,
		`collection "mixed": quantization scalar int8 quantile 0.99 always_ram true != scalar int8 quantile 0.95 always_ram true`,
		`collection "mixed": vector "half" datatype float16 != float32`,
		`collection "mixed": strict_mode.max_query_limit 100 != 50`,
		`collection "mixed": strict_mode.max_timeout is not set on the server; the config says 10`,
	} {
		if !strings.Contains(text, want) {
			t.Errorf("plan lacks %q; problems:\n%s", want, text)
		}
	}
}
