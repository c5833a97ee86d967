package upsert_test

import (
	"context"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/qdrant/go-client/qdrant"
	_ "github.com/snappipe/snappipe/formats/all"
	"github.com/snappipe/snappipe/internal/qdrantemu"
	"github.com/snappipe/snappipe/internal/testkit"
	"github.com/snappipe/snappipe/pipeline"
	"github.com/snappipe/snappipe/pipeline/config"
	"github.com/snappipe/snappipe/pipeline/stagetest"
	"github.com/snappipe/snappipe/stages/upsert"
)

func setup(t *testing.T, onExists string, seed func(*pipeline.State)) (*qdrantemu.Server, *qdrant.Client, *pipeline.Runtime, *pipeline.StateFile) {
	t.Helper()
	return setupWith(t, qdrantemu.Options{}, `version: 1
name: u
qdrant: { timeout: 5s }
collection:
  name: U
  on_exists: `+onExists+`
  vectors: { a: { size: 2, distance: Dot } }
  shard_number: 3
  payload_indexes: { k: keyword }
sources: { s: { path: s.npy } }
points: { vectors: { a: s } }
upload: { batch_size: 2, parallel: 2 }
snapshot: { destination: out }
`, seed)
}

// setupWith starts an emulator with opts and a runtime of the config yml.
func setupWith(t *testing.T, opts qdrantemu.Options, yml string, seed func(*pipeline.State)) (*qdrantemu.Server, *qdrant.Client, *pipeline.Runtime, *pipeline.StateFile) {
	t.Helper()
	srv, c := testkit.Emulator(t, opts)
	cfg, err := config.Load("p.yaml", []byte(yml), t.TempDir(), config.LoadOptions{Lookup: func(string) (string, bool) { return "", false }})
	if err != nil {
		t.Fatal(err)
	}
	rt, sf := stagetest.Runtime(t, cfg, seed)
	rt.Qdrant = c
	return srv, c, rt, sf
}

func batches(rows int) []pipeline.Message {
	out := []pipeline.Message{&pipeline.BatchPlan{Rows: int64(rows)}}
	for s := 0; s < rows; s += 2 {
		n := min(2, rows-s)
		b := &pipeline.Batch{Seq: int64(s / 2), Start: int64(s), N: n, Vectors: []pipeline.NamedVector{{Name: "a", Width: 2, Data: make([]float32, 2*n)}}}
		pl := make([]map[string]any, n)
		for i := 0; i < n; i++ {
			b.Vectors[0].Data[2*i] = float32(s + i)
			pl[i] = map[string]any{"k": "v", "n": int64(s + i), "nested": map[string]any{"l": []any{true, nil, 1.5}}}
		}
		b.Payload = pipeline.PayloadFromRows(pl)
		out = append(out, b)
	}
	return out
}

func run(t *testing.T, rt *pipeline.Runtime, in []pipeline.Message) ([]pipeline.Message, error) {
	t.Helper()
	st, err := upsert.New(&pipeline.Node{ID: "upsert", Kind: pipeline.KindUpsert}, rt)
	if err != nil {
		t.Fatal(err)
	}
	return stagetest.Run(context.Background(), "upsert", upsert.Ports, st, map[string][]pipeline.Message{"batch": in})
}

// The stage creates the collection as configured, writes every batch with
// wait=true, records the acknowledged batches and says it is done.
func TestUpsertWritesAndRecords(t *testing.T) {
	srv, c, rt, sf := setup(t, "fail", nil)
	out, err := run(t, rt, batches(5))
	if err != nil {
		t.Fatal(err)
	}
	if d, ok := out[0].(*pipeline.UpsertDone); !ok || len(out) != 1 || d.Points != 5 {
		t.Fatalf("emitted %v", out)
	}
	pts := testkit.ScrollAll(t, c, "U")
	if len(pts) != 5 {
		t.Fatalf("%d points", len(pts))
	}
	for i, p := range pts {
		want := map[string]*qdrant.Value{"k": qdrant.NewValueString("v"), "n": qdrant.NewValueInt(int64(i)),
			"nested": qdrant.NewValueStruct(&qdrant.Struct{Fields: map[string]*qdrant.Value{"l": qdrant.NewValueFromList(qdrant.NewValueBool(true), qdrant.NewValueNull(), qdrant.NewValueDouble(1.5))}})}
		if p.GetId().GetNum() != uint64(i) || testkit.VectorOf(p, "a")[0] != float32(i) || !testkit.EqualPayload(p.GetPayload(), want) {
			t.Fatalf("point %d: %v", i, p)
		}
	}
	info, _ := c.GetCollectionInfo(context.Background(), "U")
	if info.GetConfig().GetParams().GetShardNumber() != 3 || info.GetPayloadSchema()["k"].GetDataType() != qdrant.PayloadSchemaType_Keyword {
		t.Fatalf("collection %v", info)
	}
	st := sf.Snapshot()
	if !st.Upsert.Done || st.Upsert.AckedCount() != 3 || st.Upsert.Rows != 5 || !st.Collection.Ready {
		t.Fatalf("checkpoint %+v %+v", st.Upsert, st.Collection)
	}
	for _, op := range srv.OpsOf("upsert") {
		if !op.Wait {
			t.Fatal("an upsert without wait")
		}
	}
	// Everything acknowledged: a later run sends nothing and says done.
	before := len(srv.OpsOf("upsert"))
	rt.SetCheckpoint(sf)
	out, err = run(t, rt, batches(5)[:1])
	if err != nil || len(out) != 1 || len(srv.OpsOf("upsert")) != before {
		t.Fatalf("second run: %v %v, %d upserts", out, err, len(srv.OpsOf("upsert"))-before)
	}
}

// on_exists: fail refuses an existing collection; a recorded collection
// that disappeared asks for --full-refresh.
func TestUpsertCollectionRules(t *testing.T) {
	_, c, rt, _ := setup(t, "fail", nil)
	c.CreateCollection(context.Background(), &qdrant.CreateCollection{CollectionName: "U", VectorsConfig: qdrant.NewVectorsConfig(&qdrant.VectorParams{Size: 2, Distance: qdrant.Distance_Dot})})
	if _, err := run(t, rt, batches(2)); err == nil || !strings.Contains(err.Error(), "already exists (collection.on_exists: fail)") {
		t.Fatalf("fail: %v", err)
	}
	_, _, rt2, _ := setup(t, "reuse", func(s *pipeline.State) { s.Collection.Ready = true })
	if _, err := run(t, rt2, batches(2)); err == nil || !strings.Contains(err.Error(), "was deleted since the last run recorded it") {
		t.Fatalf("deleted: %v", err)
	}
	_, c3, rt3, _ := setup(t, "reuse", nil)
	c3.CreateCollection(context.Background(), &qdrant.CreateCollection{CollectionName: "U", VectorsConfig: qdrant.NewVectorsConfigMap(map[string]*qdrant.VectorParams{"a": {Size: 3, Distance: qdrant.Distance_Dot}})})
	if _, err := run(t, rt3, batches(2)); err == nil || !strings.Contains(err.Error(), `vector "a" size 3 != 2`) {
		t.Fatalf("reuse mismatch: %v", err)
	}
}

// A server error that is not transient fails at once, naming the batch.
func TestUpsertFailsFastOnBadInput(t *testing.T) {
	_, _, rt, _ := setup(t, "fail", nil)
	in := batches(4)
	in[2].(*pipeline.Batch).Vectors[0].Width = 1 // a vector of the wrong size
	in[2].(*pipeline.Batch).Vectors[0].Data = in[2].(*pipeline.Batch).Vectors[0].Data[:2]
	_, err := run(t, rt, in)
	if err == nil || !strings.Contains(err.Error(), "upsert batch 1 (rows 2-3)") || !strings.Contains(err.Error(), "InvalidArgument") {
		t.Fatalf("err = %v", err)
	}
}

// float32 vectors of 1 KiB and more are sent from the batch's own memory
// (wire.Hold): a batch goes back to its pool only after it is acknowledged
// and gRPC has written every request sent from it, retries included.
// Each batch's release overwrites its vectors, as the next block read into
// a reused buffer would: a request still being written then would store
// those values (and the race detector would see the write).
func TestUpsertSendsVectorsFromTheBatch(t *testing.T) {
	srv, c, rt, _ := setupWith(t, qdrantemu.Options{Faults: qdrantemu.Faults{FailRate: 0.3, Seed: 7}}, `version: 1
name: u
qdrant: { timeout: 5s }
collection:
  name: W
  on_exists: fail
  vectors: { a: { size: 768, distance: Dot }, b: { size: 300, distance: Dot } }
sources: { s: { path: s.npy } }
points: { vectors: { a: s, b: s } }
upload: { batch_size: 8, parallel: 3, max_attempts: 20 }
snapshot: { destination: out }
`, nil)
	const rows = 200
	value := func(row, k, j int) float32 { return float32(row*1000+k*800+j) + 0.5 }
	in := []pipeline.Message{&pipeline.BatchPlan{Rows: rows}}
	var released atomic.Int64
	for s := 0; s < rows; s += 8 {
		b := &pipeline.Batch{Seq: int64(s / 8), Start: int64(s), N: 8}
		for k, w := range []int{768, 300} {
			v := pipeline.NamedVector{Name: []string{"a", "b"}[k], Width: w, Data: make([]float32, 8*w)}
			for i := range 8 {
				for j := range w {
					v.Data[i*w+j] = value(s+i, k, j)
				}
			}
			b.Vectors = append(b.Vectors, v)
		}
		b.Release = func() {
			for _, v := range b.Vectors {
				for i := range v.Data {
					v.Data[i] = -1
				}
			}
			released.Add(1)
		}
		in = append(in, b)
	}
	st, err := upsert.New(&pipeline.Node{ID: "upsert", Kind: pipeline.KindUpsert}, rt)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := stagetest.Run(context.Background(), "upsert", upsert.Ports, st, map[string][]pipeline.Message{"batch": in}); err != nil {
		t.Fatal(err)
	}
	if n := len(srv.OpsOf("upsert")); n <= rows/8 {
		t.Fatalf("%d upserts: no retry was exercised", n)
	}
	pts := testkit.ScrollAll(t, c, "W")
	if len(pts) != rows {
		t.Fatalf("%d points, want %d", len(pts), rows)
	}
	for _, p := range pts {
		row := int(p.GetId().GetNum())
		for k, name := range []string{"a", "b"} {
			got := testkit.VectorOf(p, name)
			if len(got) != []int{768, 300}[k] {
				t.Fatalf("point %d: %s has %d values", row, name, len(got))
			}
			for j, f := range got {
				if f != value(row, k, j) {
					t.Fatalf("point %d: %s[%d] = %v, want %v", row, name, j, f, value(row, k, j))
				}
			}
		}
	}
	// Every batch was released (gRPC freed every request), once.
	if n := released.Load(); n != rows/8 {
		t.Fatalf("%d of %d batches released", n, rows/8)
	}
}
