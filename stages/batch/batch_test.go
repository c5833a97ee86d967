package batch_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	_ "github.com/snappipe/snappipe/formats/all"
	"github.com/snappipe/snappipe/pipeline"
	"github.com/snappipe/snappipe/pipeline/config"
	"github.com/snappipe/snappipe/pipeline/stagetest"
	"github.com/snappipe/snappipe/stages/batch"
)

func cfg(t *testing.T, extra string) *config.Config {
	t.Helper()
	c, err := config.Load("p.yaml", []byte(`version: 1
name: b
collection: { name: C, vectors: { a: { size: 2, distance: Dot }, b: { size: 1, distance: Dot } } }
sources: { x: { path: x.npy }, m: { path: m.parquet } }
points:
  id: { column: key }
  vectors: { a: x, b: { source: m, column: emb } }
  payload: { source: m }
upload: { batch_size: 3 }
snapshot: { destination: out }
`+extra), t.TempDir(), config.LoadOptions{Lookup: func(string) (string, bool) { return "", false }})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// blocks of rows [start, start+n) for the array source x and the table m.
func blocks(start int64, n int) (*pipeline.RowBlock, *pipeline.RowBlock) {
	x := &pipeline.RowBlock{Source: "x", Start: start, N: n, Vectors: map[string][]float32{"": make([]float32, 2*n)}}
	m := &pipeline.RowBlock{Source: "m", Start: start, N: n, Vectors: map[string][]float32{"emb": make([]float32, n)}}
	var rows []map[string]any
	for i := 0; i < n; i++ {
		r := float32(start) + float32(i)
		x.Vectors[""][2*i], x.Vectors[""][2*i+1] = r, -r
		m.Vectors["emb"][i] = 10 * r
		rows = append(rows, map[string]any{"key": fmt.Sprint(r)})
		m.IDs = append(m.IDs, pipeline.PointID{Num: 100 + uint64(start) + uint64(i)})
	}
	m.Payload = pipeline.PayloadFromRows(rows)
	return x, m
}

func inputs(total int64, rowsX, rowsM int64) map[string][]pipeline.Message {
	in := map[string][]pipeline.Message{
		"decode.x": {&pipeline.SourceHeader{Source: "x", Rows: rowsX, Widths: map[string]int{"": 2}}},
		"decode.m": {&pipeline.SourceHeader{Source: "m", Rows: rowsM, Widths: map[string]int{"emb": 1}}},
	}
	for s := int64(0); s < total; s += 3 {
		x, m := blocks(s, int(min(3, total-s)))
		in["decode.x"] = append(in["decode.x"], x)
		in["decode.m"] = append(in["decode.m"], m)
	}
	return in
}

func run(t *testing.T, rt *pipeline.Runtime, in map[string][]pipeline.Message) ([]pipeline.Message, error) {
	t.Helper()
	st, err := batch.New(&pipeline.Node{ID: "batch", Kind: pipeline.KindBatch}, rt)
	if err != nil {
		t.Fatal(err)
	}
	return stagetest.Run(context.Background(), "batch", batch.Ports, st, in)
}

// The plan comes first, then columnar batches sharing the blocks' memory:
// ids from the payload source, named vectors sorted by name, payloads.
func TestBatchJoinsSources(t *testing.T) {
	rt, _ := stagetest.Runtime(t, cfg(t, ""), nil)
	out, err := run(t, rt, inputs(7, 7, 7))
	if err != nil {
		t.Fatal(err)
	}
	if p, ok := out[0].(*pipeline.BatchPlan); !ok || p.Rows != 7 || len(out) != 4 {
		t.Fatalf("out %v", out)
	}
	for k, m := range out[1:] {
		b := m.(*pipeline.Batch)
		if b.Seq != int64(k) || b.Start != int64(3*k) || b.N != min(3, 7-3*k) {
			t.Fatalf("batch %d: seq %d start %d n %d", k, b.Seq, b.Start, b.N)
		}
		if len(b.Vectors) != 2 || b.Vectors[0].Name != "a" || b.Vectors[0].Width != 2 || b.Vectors[1].Name != "b" || len(b.Vectors[1].Data) != b.N {
			t.Fatalf("vectors %+v", b.Vectors)
		}
		for i := 0; i < b.N; i++ {
			r := float32(b.Start) + float32(i)
			if b.Vectors[0].Data[2*i] != r || b.Vectors[0].Data[2*i+1] != -r || b.Vectors[1].Data[i] != 10*r {
				t.Fatalf("row %v: vectors %v %v", r, b.Vectors[0].Data, b.Vectors[1].Data)
			}
			if b.ID(i).Num != 100+uint64(b.Start)+uint64(i) || b.Payload.Row(i)["key"] != fmt.Sprint(r) {
				t.Fatalf("row %v: id %v payload %v", r, b.ID(i), b.Payload.Row(i))
			}
		}
	}
}

// Batches acknowledged before a restart are not sent again.
func TestBatchSkipsAcknowledged(t *testing.T) {
	rt, _ := stagetest.Runtime(t, cfg(t, ""), func(s *pipeline.State) {
		s.Upsert = pipeline.UpsertState{BatchSize: 3, Rows: 7, Watermark: 1, Above: []int64{2}}
	})
	// decode resumes at row 3 (the watermark); batch 2 was acknowledged too.
	in := inputs(7, 7, 7)
	for k := range in {
		in[k] = append(in[k][:1], in[k][2:]...)
	}
	out, err := run(t, rt, in)
	if err != nil {
		t.Fatal(err)
	}
	if len(out) != 2 || out[1].(*pipeline.Batch).Seq != 1 {
		t.Fatalf("sent %v", out)
	}
}

// Row counts and widths are checked before any batch.
func TestBatchRefusesMisalignedSources(t *testing.T) {
	rt, _ := stagetest.Runtime(t, cfg(t, ""), nil)
	out, err := run(t, rt, inputs(7, 7, 8))
	if err == nil || !strings.Contains(err.Error(), "sources are not aligned: row counts differ (m 8, x 7)") || len(out) != 0 {
		t.Fatalf("misaligned: %v, %v", out, err)
	}
	in := inputs(3, 3, 3)
	in["decode.x"][0].(*pipeline.SourceHeader).Widths[""] = 5
	if _, err := run(t, rt, in); err == nil || !strings.Contains(err.Error(), `vector "a": source x () has width 5, collection.vectors.a.size is 2`) {
		t.Fatalf("width: %v", err)
	}
}

func TestTotalRowsUnderLimit(t *testing.T) {
	c := cfg(t, "")
	lim := int64(5)
	c.Points.Limit = &lim
	h := func(rows int64) map[string]*pipeline.SourceHeader {
		return map[string]*pipeline.SourceHeader{"x": {Source: "x", Rows: rows}, "m": {Source: "m", Rows: 9}}
	}
	if n, err := batch.TotalRows(c, h(5)); err != nil || n != 5 {
		t.Fatalf("exactly the limit: %d %v", n, err)
	}
	if _, err := batch.TotalRows(c, h(4)); err == nil || !strings.Contains(err.Error(), "source x has 4 rows, fewer than points.limit 5") {
		t.Fatalf("below the limit: %v", err)
	}
	// Every source short of the limit is named at once.
	both := map[string]*pipeline.SourceHeader{"x": {Source: "x", Rows: 4}, "m": {Source: "m", Rows: 3}}
	if _, err := batch.TotalRows(c, both); err == nil || err.Error() != "sources hold fewer rows than points.limit 5: m has 3, x has 4" {
		t.Fatalf("two below the limit: %v", err)
	}
}

// Sources with no rows at all are an error, not "0 points written" and an
// empty snapshot.
func TestNoRowsIsAnError(t *testing.T) {
	rt, _ := stagetest.Runtime(t, cfg(t, ""), nil)
	out, err := run(t, rt, inputs(0, 0, 0))
	if err == nil || !strings.Contains(err.Error(), "the sources hold no rows (m 0, x 0): nothing to load") || len(out) != 0 {
		t.Fatalf("empty: %v, %v", out, err)
	}
}
