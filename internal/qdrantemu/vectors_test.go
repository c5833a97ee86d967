package qdrantemu_test

import (
	"bytes"
	"context"
	"encoding/json"
	"slices"
	"testing"

	"github.com/qdrant/go-client/qdrant"
	"github.com/snappipe/snappipe/internal/qdrantemu"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/proto"
)

// createMixed makes a collection with a dense vector, a multivector and a
// sparse vector (idf), scalar quantization on the collection.
func createMixed(t *testing.T, c *qdrant.Client, name string) {
	t.Helper()
	err := c.CreateCollection(context.Background(), &qdrant.CreateCollection{
		CollectionName: name,
		VectorsConfig: qdrant.NewVectorsConfigMap(map[string]*qdrant.VectorParams{
			"dense":   {Size: 4, Distance: qdrant.Distance_Cosine},
			"colbert": {Size: 3, Distance: qdrant.Distance_Dot, MultivectorConfig: &qdrant.MultiVectorConfig{Comparator: qdrant.MultiVectorComparator_MaxSim}},
		}),
		SparseVectorsConfig: qdrant.NewSparseVectorsConfig(map[string]*qdrant.SparseVectorParams{
			"bm25": {Modifier: qdrant.Modifier_Idf.Enum(), Index: &qdrant.SparseIndexConfig{OnDisk: qdrant.PtrOf(true)}},
		}),
		QuantizationConfig: qdrant.NewQuantizationScalar(&qdrant.ScalarQuantization{Type: qdrant.QuantizationType_Int8, Quantile: qdrant.PtrOf(float32(0.99))}),
	})
	if err != nil {
		t.Fatal(err)
	}
}

func mixedPoint(id uint64, dense []float32, toks [][]float32, idx []uint32, vals []float32) *qdrant.PointStruct {
	return &qdrant.PointStruct{Id: qdrant.NewIDNum(id), Vectors: qdrant.NewVectorsMap(map[string]*qdrant.Vector{
		"dense":   qdrant.NewVectorDense(dense),
		"colbert": qdrant.NewVectorMulti(toks),
		"bm25":    qdrant.NewVectorSparse(idx, vals),
	}), Payload: qdrant.NewValueMap(map[string]any{"i": int64(id)})}
}

// The emulator keeps multivectors and sparse vectors (sparse sorted by
// index, as Qdrant stores them), returns them on get and scroll, echoes
// their config, refuses what Qdrant refuses with Qdrant's messages, and
// keeps everything through a snapshot and its upload elsewhere.
func TestMultiAndSparseVectors(t *testing.T) {
	srv, c := start(t, qdrantemu.Options{})
	ctx := context.Background()
	createMixed(t, c, "mixed")
	wait := true
	pts := []*qdrant.PointStruct{
		mixedPoint(1, []float32{1, 2, 3, 4}, [][]float32{{1, 0, 0}, {0, 1, 0}}, []uint32{7, 4294967295, 2}, []float32{0.7, 1, 0.2}),
		mixedPoint(2, []float32{4, 3, 2, 1}, [][]float32{{0.5, 0.5, 0.5}}, []uint32{}, []float32{}),
	}
	if _, err := c.Upsert(ctx, &qdrant.UpsertPoints{CollectionName: "mixed", Wait: &wait, Points: pts}); err != nil {
		t.Fatal(err)
	}
	got, err := c.Get(ctx, &qdrant.GetPoints{CollectionName: "mixed", Ids: []*qdrant.PointId{qdrant.NewIDNum(1)}, WithVectors: qdrant.NewWithVectors(true)})
	if err != nil || len(got) != 1 {
		t.Fatalf("get: %v %v", got, err)
	}
	vs := got[0].GetVectors().GetVectors().GetVectors()
	if md := vs["colbert"].GetMultiDense(); len(md.GetVectors()) != 2 || md.GetVectors()[1].GetData()[1] != 1 {
		t.Fatalf("multivector back: %v", vs["colbert"])
	}
	if sp := vs["bm25"].GetSparse(); !slices.Equal(sp.GetIndices(), []uint32{2, 7, 4294967295}) || !slices.Equal(sp.GetValues(), []float32{0.2, 0.7, 1}) {
		t.Fatalf("sparse back (sorted by index): %v", vs["bm25"])
	}
	info, err := c.GetCollectionInfo(ctx, "mixed")
	if err != nil {
		t.Fatal(err)
	}
	p := info.GetConfig().GetParams()
	if p.GetVectorsConfig().GetParamsMap().GetMap()["colbert"].GetMultivectorConfig().GetComparator() != qdrant.MultiVectorComparator_MaxSim ||
		p.GetSparseVectorsConfig().GetMap()["bm25"].GetModifier() != qdrant.Modifier_Idf ||
		info.GetConfig().GetQuantizationConfig().GetScalar().GetQuantile() != 0.99 {
		t.Fatalf("config echo: %v", info.GetConfig())
	}

	refused := []struct {
		name string
		pt   *qdrant.PointStruct
		msg  string
	}{
		{"sparse lengths", mixedPoint(3, []float32{1, 1, 1, 1}, [][]float32{{1, 1, 1}}, []uint32{1, 2}, []float32{1}),
			"Validation error in body: [points[0].vectors.vectors_options.vectors.[].values: must be the same length as indices]"},
		{"sparse duplicates", mixedPoint(3, []float32{1, 1, 1, 1}, [][]float32{{1, 1, 1}}, []uint32{5, 5}, []float32{1, 2}),
			"Validation error in body: [points[0].vectors.vectors_options.vectors.[].indices: must be unique]"},
		{"no tokens", mixedPoint(3, []float32{1, 1, 1, 1}, [][]float32{}, nil, nil),
			"Validation error in body: [points[0].vectors.vectors_options.vectors.[].data: multi vector must not be empty]"},
		{"token widths", mixedPoint(3, []float32{1, 1, 1, 1}, [][]float32{{1, 1, 1}, {1, 1}}, nil, nil),
			"Validation error in body: [points[0].vectors.vectors_options.vectors.[].data: all vectors must have the same dimension, found vector with dimension 2]"},
		{"token size", mixedPoint(3, []float32{1, 1, 1, 1}, [][]float32{{1, 1}}, nil, nil),
			"Wrong input: Vector dimension error: expected dim: 3, got 2"},
		{"dense into sparse", &qdrant.PointStruct{Id: qdrant.NewIDNum(3), Vectors: qdrant.NewVectorsMap(map[string]*qdrant.Vector{"bm25": qdrant.NewVectorDense([]float32{1})})},
			"Wrong input: Conversion between sparse and regular vectors failed"},
		{"dense into multi", &qdrant.PointStruct{Id: qdrant.NewIDNum(3), Vectors: qdrant.NewVectorsMap(map[string]*qdrant.Vector{"colbert": qdrant.NewVectorDense([]float32{1, 2, 3})})},
			"Wrong input: Conversion between multi and regular vectors failed"},
		{"multi into dense", &qdrant.PointStruct{Id: qdrant.NewIDNum(3), Vectors: qdrant.NewVectorsMap(map[string]*qdrant.Vector{"dense": qdrant.NewVectorMulti([][]float32{{1, 2, 3, 4}})})},
			"Wrong input: Conversion between multi and regular vectors failed"},
	}
	for _, r := range refused {
		_, err := c.Upsert(ctx, &qdrant.UpsertPoints{CollectionName: "mixed", Wait: &wait, Points: []*qdrant.PointStruct{r.pt}})
		st := grpcStatus(err)
		if st.Code() != codes.InvalidArgument || st.Message() != r.msg {
			t.Errorf("%s: %v %q, want %q", r.name, st.Code(), st.Message(), r.msg)
		}
	}
	if n, _ := c.Count(ctx, &qdrant.CountPoints{CollectionName: "mixed", Exact: qdrant.PtrOf(true)}); n != 2 {
		t.Fatalf("refused upserts changed the collection: %d points", n)
	}

	// Snapshot, upload into a fresh emulator: every vector intact.
	d, err := c.CreateSnapshot(ctx, "mixed")
	if err != nil {
		t.Fatal(err)
	}
	srv2, c2 := start(t, qdrantemu.Options{})
	loc, _ := json.Marshal(map[string]any{"location": srv.URL() + "/collections/mixed/snapshots/" + d.GetName(), "checksum": d.GetChecksum()})
	if code, b, _ := rest(t, "PUT", srv2.URL()+"/collections/mixed/snapshots/recover", "", bytes.NewReader(loc), "application/json"); code != 200 {
		t.Fatalf("recover: %d %s", code, b)
	}
	comparePoints(t, c, c2, "mixed", 2)
	info2, _ := c2.GetCollectionInfo(ctx, "mixed")
	if !proto.Equal(info.GetConfig(), info2.GetConfig()) {
		t.Fatalf("config after recover:\n%v\nwant\n%v", info2.GetConfig(), info.GetConfig())
	}
}

// Strict mode is kept and, when enabled, an upsert above
// upsert_max_batchsize is refused with Qdrant's message.
func TestStrictModeUpsertLimit(t *testing.T) {
	_, c := start(t, qdrantemu.Options{})
	ctx := context.Background()
	err := c.CreateCollection(ctx, &qdrant.CreateCollection{CollectionName: "strict",
		VectorsConfig:    qdrant.NewVectorsConfig(&qdrant.VectorParams{Size: 2, Distance: qdrant.Distance_Dot}),
		StrictModeConfig: &qdrant.StrictModeConfig{Enabled: qdrant.PtrOf(true), UpsertMaxBatchsize: qdrant.PtrOf(uint64(2))}})
	if err != nil {
		t.Fatal(err)
	}
	var pts []*qdrant.PointStruct
	for i := 0; i < 3; i++ {
		pts = append(pts, &qdrant.PointStruct{Id: qdrant.NewIDNum(uint64(i)), Vectors: qdrant.NewVectorsDense([]float32{1, 2})})
	}
	_, err = c.Upsert(ctx, &qdrant.UpsertPoints{CollectionName: "strict", Wait: qdrant.PtrOf(true), Points: pts})
	st := grpcStatus(err)
	if st.Code() != codes.InvalidArgument || st.Message() != `Bad request: Limit exceeded 3 > 2 for "upsert limit". Help: Reduce the "upsert limit" parameter to or below 2.` {
		t.Fatalf("%v %q", st.Code(), st.Message())
	}
	if _, err := c.Upsert(ctx, &qdrant.UpsertPoints{CollectionName: "strict", Wait: qdrant.PtrOf(true), Points: pts[:2]}); err != nil {
		t.Fatal(err)
	}
}
