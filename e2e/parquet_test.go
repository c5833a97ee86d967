package e2e_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/parquet-go/parquet-go"
	"github.com/qdrant/go-client/qdrant"
	"github.com/snappipe/snappipe/internal/qdrantemu"
	"github.com/snappipe/snappipe/internal/sample"
	"github.com/snappipe/snappipe/pipeline"
	"github.com/snappipe/snappipe/stages/all"
	"google.golang.org/protobuf/proto"
)

// 768-d float32 list columns: the upsert sends them from the batches'
// memory (wire.Hold), so this also checks those bytes end to end.
func TestVectorsInsideParquet(t *testing.T) {
	data := t.TempDir()
	if err := sample.Generate(sample.Options{Rows: 500, Dim: 768, Seed: 3, RowGroupRows: 128, Out: data, Embedded: true}); err != nil {
		t.Fatal(err)
	}
	e := newEnv(t, qdrantemu.Options{})
	cfg := e.load(t, t.TempDir(), fmt.Sprintf(`version: 1
name: embedded
qdrant: { url: "${QDRANT_URL}", grpc_port: "${QDRANT_GRPC_PORT}" }
collection:
  name: emb
  vectors:
    image: { size: 768, distance: Cosine }
    text:  { size: 768, distance: Dot }
sources:
  data: { path: "%s/data.parquet" }
points:
  id: { column: key }
  vectors:
    image: { source: data, column: image }
    text:  { source: data, column: text }
  payload: { source: data, exclude: [image, text] }
upload: { batch_size: 50 }
snapshot: { destination: out }
`, data))
	sum, err := e.apply(t, cfg, pipeline.ApplyOptions{})
	if err != nil {
		t.Fatal(err)
	}
	// The same generator wrote the .npy files and metadata: compare.
	img := npyRows(t, filepath.Join(data, "img_emb_0000.npy"))
	txt := npyRows(t, filepath.Join(data, "text_emb_0000.npy"))
	meta := parquetRows(t, filepath.Join(data, "metadata_0000.parquet"))
	pts := e.scroll(t, "emb")
	if len(pts) != 500 {
		t.Fatalf("%d points", len(pts))
	}
	for i, p := range pts {
		if !equalF32(vectorOf(p, "image"), img[i]) || !equalF32(vectorOf(p, "text"), txt[i]) {
			t.Fatalf("point %d: vectors differ", i)
		}
		if !proto.Equal(&qdrant.Struct{Fields: p.GetPayload()}, &qdrant.Struct{Fields: meta[i]}) {
			t.Fatalf("point %d: payload %v", i, p.GetPayload())
		}
	}
	checkSnapshot(t, e, sum, "emb")

	// A width mismatch is caught before any upsert.
	e2 := newEnv(t, qdrantemu.Options{})
	bad := e2.load(t, t.TempDir(), strings.Replace(strings.Replace(cfgText(t, cfg), "size: 768, distance: Dot", "size: 64, distance: Dot", 1), "${QDRANT_URL}", e2.vars["QDRANT_URL"], 1))
	_, err = e2.apply(t, bad, pipeline.ApplyOptions{})
	if err == nil || !strings.Contains(err.Error(), `vector "text": source data (parquet, 500 rows in 4 row groups, 17 columns) has width 768, collection.vectors.text.size is 64`) {
		t.Fatalf("width mismatch: %v", err)
	}
	if e2.srv.Stats().UpsertCalls != 0 {
		t.Fatal("upserts sent despite the width mismatch")
	}
}

func cfgText(t *testing.T, cfg interface{ Resolve(string) string }) string {
	b, err := os.ReadFile(cfg.Resolve("pipeline.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// Nested is a row with every payload shape the reader supports.
type Nested struct {
	ID    int64    `parquet:"id"`
	Name  *string  `parquet:"name,optional"`
	Score float32  `parquet:"score"`
	Flag  *bool    `parquet:"flag,optional"`
	Tags  []string `parquet:"tags,list"`
	Nums  []int32  `parquet:"nums"` // bare repeated
	Info  *struct {
		Lat  float64 `parquet:"lat"`
		Note *string `parquet:"note,optional"`
	} `parquet:"info,optional"`
	Vec []float64 `parquet:"vec,list"`
}

func TestNestedPayload(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "n.parquet")
	f, _ := os.Create(p)
	w := parquet.NewGenericWriter[Nested](f)
	s := func(v string) *string { return &v }
	b := true
	rows := []Nested{
		{ID: 7, Name: s("åß✓"), Score: 0.1, Flag: &b, Tags: []string{"a", "b"}, Nums: []int32{1, 2, 3},
			Info: &struct {
				Lat  float64 `parquet:"lat"`
				Note *string `parquet:"note,optional"`
			}{Lat: 52.5, Note: s("n")}, Vec: []float64{1, 2, 3}},
		{ID: 8, Score: -2.5, Tags: []string{}, Vec: []float64{4, 5, 6}},
	}
	if _, err := w.Write(rows); err != nil {
		t.Fatal(err)
	}
	w.Close()
	f.Close()
	e := newEnv(t, qdrantemu.Options{})
	cfg := e.load(t, dir, `version: 1
name: nested
qdrant: { url: "${QDRANT_URL}", grpc_port: "${QDRANT_GRPC_PORT}" }
collection:
  name: nested
  vectors: { v: { size: 3, distance: Euclid } }
sources:
  n: { path: n.parquet }
points:
  id: { column: id }
  vectors: { v: { source: n, column: vec } }
  payload: { source: n, exclude: [vec] }
snapshot: { destination: out }
`)
	if _, err := e.apply(t, cfg, pipeline.ApplyOptions{}); err != nil {
		t.Fatal(err)
	}
	pts, err := e.client.Get(context.Background(), &qdrant.GetPoints{CollectionName: "nested", Ids: []*qdrant.PointId{qdrant.NewIDNum(7), qdrant.NewIDNum(8)},
		WithPayload: qdrant.NewWithPayload(true), WithVectors: qdrant.NewWithVectors(true)})
	if err != nil || len(pts) != 2 {
		t.Fatalf("%v %v", pts, err)
	}
	want7 := map[string]*qdrant.Value{
		"id": qdrant.NewValueInt(7), "name": qdrant.NewValueString("åß✓"), "score": qdrant.NewValueDouble(float64(float32(0.1))),
		"flag": qdrant.NewValueBool(true), "tags": qdrant.NewValueFromList(qdrant.NewValueString("a"), qdrant.NewValueString("b")),
		"nums": qdrant.NewValueFromList(qdrant.NewValueInt(1), qdrant.NewValueInt(2), qdrant.NewValueInt(3)),
		"info": qdrant.NewValueStruct(&qdrant.Struct{Fields: map[string]*qdrant.Value{"lat": qdrant.NewValueDouble(52.5), "note": qdrant.NewValueString("n")}}),
	}
	want8 := map[string]*qdrant.Value{
		"id": qdrant.NewValueInt(8), "name": qdrant.NewValueNull(), "score": qdrant.NewValueDouble(-2.5), "flag": qdrant.NewValueNull(),
		"tags": qdrant.NewValueFromList(), "nums": qdrant.NewValueFromList(), "info": qdrant.NewValueNull(),
	}
	for i, want := range []map[string]*qdrant.Value{want7, want8} {
		if !proto.Equal(&qdrant.Struct{Fields: pts[i].GetPayload()}, &qdrant.Struct{Fields: want}) {
			t.Errorf("point %d payload:\n got %v\nwant %v", i, pts[i].GetPayload(), want)
		}
	}
	if v := vectorOf(pts[1], "v"); len(v) != 3 || v[0] != 4 || v[2] != 6 {
		t.Errorf("vector %v", v)
	}
}

// Vectors in Parquet list columns as pyarrow writes Hugging Face datasets
// (data page v1, no CRCs, several row groups): a run interrupted after
// two batches and run again resumes inside a row group (parquet-go's
// pages for that group's rest, snappipe's own page reader for the next
// ones) and every point is exact.
func TestHuggingFaceLayoutInterruptedAndResumed(t *testing.T) {
	data := t.TempDir()
	if err := sample.Generate(sample.Options{Rows: 400, Dim: 96, Seed: 9, RowGroupRows: 128, Out: data, Embedded: true, FullPrecision: true, Pyarrow: true}); err != nil {
		t.Fatal(err)
	}
	e := newEnv(t, qdrantemu.Options{Faults: qdrantemu.Faults{UpsertDelay: 20 * time.Millisecond}})
	dir := t.TempDir()
	cfg := e.load(t, dir, fmt.Sprintf(`version: 1
name: hf
qdrant: { url: "${QDRANT_URL}", grpc_port: "${QDRANT_GRPC_PORT}" }
collection:
  name: hf
  vectors:
    image: { size: 96, distance: Cosine }
    text:  { size: 96, distance: Cosine }
sources:
  data: { path: "%s/data.parquet" }
points:
  vectors:
    image: { source: data, column: image }
    text:  { source: data, column: text }
  payload: { source: data, exclude: [image, text] }
upload: { batch_size: 50, parallel: 1 }
snapshot: { destination: out }
`, data))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	first := &progressLog{onUpsert: func(done int64) {
		if done >= 100 {
			cancel()
		}
	}}
	if _, err := pipeline.Apply(ctx, cfg, all.Registry(), pipeline.ApplyOptions{StateDir: filepath.Join(dir, ".snappipe"), Events: first}); !errors.Is(err, context.Canceled) {
		t.Fatalf("first run: %v", err)
	}
	sum, err := e.apply(t, cfg, pipeline.ApplyOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if sum.PointsWritten < 50 || sum.PointsWritten > 300 {
		t.Fatalf("the second run wrote %d points: not a resume inside the file", sum.PointsWritten)
	}
	img := npyRows(t, filepath.Join(data, "img_emb_f32.npy"))
	txt := npyRows(t, filepath.Join(data, "text_emb_f32.npy"))
	checkPoints(t, e, "hf", 400, img, txt, parquetRows(t, filepath.Join(data, "metadata_0000.parquet")))
	checkSnapshot(t, e, sum, "hf")
}
