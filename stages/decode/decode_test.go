package decode_test

import (
	"context"
	"encoding/binary"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/parquet-go/parquet-go"
	_ "github.com/snappipe/snappipe/formats/all"
	"github.com/snappipe/snappipe/internal/npy"
	"github.com/snappipe/snappipe/internal/sample"
	"github.com/snappipe/snappipe/pipeline"
	"github.com/snappipe/snappipe/pipeline/config"
	"github.com/snappipe/snappipe/pipeline/stagetest"
	"github.com/snappipe/snappipe/stages/decode"
	"github.com/x448/float16"
)

// writeNpy writes rows×w little-endian float32 with value(i,j) = i*1000+j.
func writeNpy(t *testing.T, path string, rows, w int) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := npy.WriteHeader(f, "<f4", int64(rows), w); err != nil {
		t.Fatal(err)
	}
	b := make([]byte, 4)
	for i := 0; i < rows; i++ {
		for j := 0; j < w; j++ {
			v := float32(i*1000 + j)
			binary.LittleEndian.PutUint32(b, math.Float32bits(v))
			f.Write(b)
		}
	}
}

func load(t *testing.T, dir, extra string) *config.Config {
	t.Helper()
	cfg, err := config.Load("p.yaml", []byte(`version: 1
name: d
collection: { name: C, vectors: { v: { size: 3, distance: Dot } } }
sources: { s: { path: s.npy } }
points: { vectors: { v: s } }
upload: { batch_size: 4 }
snapshot: { destination: out }
`+extra), dir, config.LoadOptions{Lookup: func(string) (string, bool) { return "", false }})
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

func node(src string) *pipeline.Node {
	return &pipeline.Node{ID: "decode." + src, Kind: pipeline.KindDecode, Source: src}
}

func run(t *testing.T, rt *pipeline.Runtime, inputs map[string][]pipeline.Message) ([]pipeline.Message, error) {
	t.Helper()
	st, err := decode.New(node("s"), rt)
	if err != nil {
		t.Fatal(err)
	}
	return stagetest.Run(context.Background(), "decode.s", decode.Ports, st, inputs)
}

// rowsOf checks the blocks and returns the first value of each row.
func rowsOf(t *testing.T, msgs []pipeline.Message) (hdr *pipeline.SourceHeader, firsts []float32) {
	t.Helper()
	for i, m := range msgs {
		switch v := m.(type) {
		case *pipeline.SourceHeader:
			if i != 0 {
				t.Fatal("header not first")
			}
			hdr = v
		case *pipeline.RowBlock:
			vec := v.Vectors[""]
			if len(vec) != v.N*3 {
				t.Fatalf("block %d has %d values for %d rows", v.Start, len(vec), v.N)
			}
			for r := 0; r < v.N; r++ {
				if vec[r*3+2] != vec[r*3]+2 {
					t.Fatalf("row %d: %v", v.Start+int64(r), vec[r*3:r*3+3])
				}
				firsts = append(firsts, vec[r*3])
			}
			if v.Release != nil {
				v.Release()
			}
		default:
			t.Fatalf("unexpected %T", m)
		}
	}
	return hdr, firsts
}

func TestDecodeLocalNpyInBatchAlignedBlocks(t *testing.T) {
	dir := t.TempDir()
	writeNpy(t, filepath.Join(dir, "s.npy"), 10, 3)
	rt, _ := stagetest.Runtime(t, load(t, dir, ""), nil)
	msgs, err := run(t, rt, nil)
	if err != nil {
		t.Fatal(err)
	}
	hdr, firsts := rowsOf(t, msgs)
	if hdr.Rows != 10 || hdr.Widths[""] != 3 || len(msgs) != 1+3 { // blocks of 4, 4, 2
		t.Fatalf("header %+v, %d messages", hdr, len(msgs))
	}
	if fmt.Sprint(firsts) != "[0 1000 2000 3000 4000 5000 6000 7000 8000 9000]" {
		t.Fatalf("rows %v", firsts)
	}
}

// A resumed run starts at the first unacknowledged batch; a limit stops
// early.
func TestDecodeResumesAndLimits(t *testing.T) {
	dir := t.TempDir()
	writeNpy(t, filepath.Join(dir, "s.npy"), 10, 3)
	rt, _ := stagetest.Runtime(t, load(t, dir, ""), func(s *pipeline.State) {
		s.Upsert = pipeline.UpsertState{BatchSize: 4, Rows: 10, Watermark: 1, Above: []int64{2}}
	})
	_, firsts := rowsOf(t, must(run(t, rt, nil)))
	if fmt.Sprint(firsts) != "[4000 5000 6000 7000 8000 9000]" {
		t.Fatalf("resumed rows %v", firsts)
	}
	cfg := load(t, dir, "")
	lim := int64(5)
	cfg.Points.Limit = &lim
	rt2, _ := stagetest.Runtime(t, cfg, nil)
	_, firsts = rowsOf(t, must(run(t, rt2, nil)))
	if fmt.Sprint(firsts) != "[0 1000 2000 3000 4000]" {
		t.Fatalf("limited rows %v", firsts)
	}
	// Everything loaded: the header comes from the checkpoint and the file
	// is not opened (it is gone here).
	os.Remove(filepath.Join(dir, "s.npy"))
	rt3, _ := stagetest.Runtime(t, load(t, dir, ""), func(s *pipeline.State) {
		s.Upsert = pipeline.UpsertState{BatchSize: 4, Rows: 10, Watermark: 3, Done: true}
	})
	msgs := must(run(t, rt3, nil))
	if h, ok := msgs[0].(*pipeline.SourceHeader); !ok || len(msgs) != 1 || h.Rows != 10 || h.Widths[""] != 3 {
		t.Fatalf("loaded: %v", msgs)
	}
}

// A row-limit prefix (FileReady with FullSize) is read as the file's
// start; a prefix too short for the rows is an error naming the source.
func TestDecodePrefixFile(t *testing.T) {
	dir := t.TempDir()
	writeNpy(t, filepath.Join(dir, "s.npy"), 10, 3)
	b, _ := os.ReadFile(filepath.Join(dir, "s.npy"))
	head := filepath.Join(dir, "head")
	os.WriteFile(head, b[:128+3*12], 0o644) // header + 3 rows
	cfg := load(t, dir, "")
	lim := int64(3)
	cfg.Points.Limit = &lim
	rt, _ := stagetest.Runtime(t, cfg, nil)
	fr := &pipeline.FileReady{Source: "s", Path: head, Size: 128 + 36, FullSize: int64(len(b))}
	hdr, firsts := rowsOf(t, must(run(t, rt, map[string][]pipeline.Message{"download.s": {fr}})))
	if hdr.Rows != 10 || fmt.Sprint(firsts) != "[0 1000 2000]" {
		t.Fatalf("prefix: %+v %v", hdr, firsts)
	}
	lim = 4
	_, err := run(t, rt, map[string][]pipeline.Message{"download.s": {fr}})
	if err == nil || !strings.Contains(err.Error(), "source s (") || !strings.Contains(err.Error(), "file is truncated") {
		t.Fatalf("short prefix: %v", err)
	}
}

// A message of the wrong type is an error, not a panic; an input that ends
// without a file is an internal error.
func TestDecodeWrongInput(t *testing.T) {
	dir := t.TempDir()
	writeNpy(t, filepath.Join(dir, "s.npy"), 2, 3)
	rt, _ := stagetest.Runtime(t, load(t, dir, ""), nil)
	_, err := run(t, rt, map[string][]pipeline.Message{"download.s": {&pipeline.UpsertDone{}}})
	if err == nil || !strings.Contains(err.Error(), "expected *pipeline.FileReady") {
		t.Fatalf("wrong type: %v", err)
	}
	_, err = run(t, rt, map[string][]pipeline.Message{"download.s": {}})
	if err == nil || !strings.Contains(err.Error(), "ended without a file") {
		t.Fatalf("no file: %v", err)
	}
}

func must(m []pipeline.Message, err error) []pipeline.Message {
	if err != nil {
		panic(err)
	}
	return m
}

// A Parquet table source supplies the selected vector column, the payload
// and the ids; a row count that is a whole number of batches gives no
// empty trailing block.
func TestDecodeParquetTable(t *testing.T) {
	dir := t.TempDir()
	if err := sample.Generate(sample.Options{Rows: 12, Dim: 3, Seed: 4, Out: dir, Embedded: true}); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load("p.yaml", []byte(`version: 1
name: d
collection: { name: C, vectors: { v: { size: 3, distance: Dot } } }
sources: { s: { path: data.parquet } }
points:
  id: { column: key }
  vectors: { v: { source: s, column: image } }
  payload: { source: s, include: [key, caption] }
upload: { batch_size: 4 }
snapshot: { destination: out }
`), dir, config.LoadOptions{Lookup: func(string) (string, bool) { return "", false }})
	if err != nil {
		t.Fatal(err)
	}
	rt, _ := stagetest.Runtime(t, cfg, nil)
	msgs := must(run(t, rt, nil))
	if len(msgs) != 1+3 {
		t.Fatalf("%d messages, want a header and 3 blocks", len(msgs))
	}
	hdr := msgs[0].(*pipeline.SourceHeader)
	if hdr.Rows != 12 || hdr.Widths["image"] != 3 || len(hdr.Widths) != 1 {
		t.Fatalf("header %+v", hdr)
	}
	row := 0
	err = sample.Each(12, 3, 4, func(i int, m sample.Meta, img, _ []float32) error {
		blk := msgs[1+i/4].(*pipeline.RowBlock)
		j := i % 4
		if got := blk.Vectors["image"][j*3 : j*3+3]; fmt.Sprint(got) != fmt.Sprint(img) {
			return fmt.Errorf("row %d: image %v, want %v", i, got, img)
		}
		if pl := blk.Payload.Row(j); pl["key"] != *m.Key || len(pl) != 2 {
			return fmt.Errorf("row %d: payload %v", i, pl)
		}
		if blk.IDs[j] != (pipeline.PointID{Num: uint64(i)}) {
			return fmt.Errorf("row %d: id %v", i, blk.IDs[j])
		}
		if _, text := blk.Vectors["text"]; text {
			return fmt.Errorf("row %d: an unselected vector column was read", i)
		}
		row++
		return nil
	})
	if err != nil || row != 12 {
		t.Fatal(err)
	}
}

// A file whose width is wrong and huge (a sparse 5 GB .npy declaring
// 4 194 304 floats a row) fails on the width before a block is allocated.
func TestWrongHugeWidthFailsBeforeAllocating(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "s.npy")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	const rows, width = 300, 4 << 20
	if err := npy.WriteHeader(f, "<f4", rows, width); err != nil {
		t.Fatal(err)
	}
	st, _ := f.Stat()
	if err := f.Truncate(st.Size() + rows*width*4); err != nil {
		t.Skip("no sparse files here:", err)
	}
	f.Close()
	rt, _ := stagetest.Runtime(t, load(t, dir, ""), nil)
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	msgs, err := run(t, rt, nil)
	runtime.ReadMemStats(&after)
	if err == nil || !strings.Contains(err.Error(), "has width 4194304, collection.vectors.v.size is 3") {
		t.Fatalf("err = %v", err)
	}
	if len(msgs) != 0 {
		t.Fatalf("emitted %d messages", len(msgs))
	}
	if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 8<<20 {
		t.Fatalf("allocated %d bytes before refusing the width", alloc)
	}
}

// NaN and ±Inf components fail the run with the source and row, unless
// points.allow_non_finite is set.
// Both for float32 and for float16 files (whose blocks stay float16 until
// the sink encodes them).
func TestNonFiniteVectorsRefused(t *testing.T) {
	for _, c := range []struct {
		descr string
		bad   float32
	}{{"<f4", float32(math.NaN())}, {"<f4", float32(math.Inf(1))}, {"<f4", float32(math.Inf(-1))},
		{"<f2", float32(math.NaN())}, {"<f2", float32(math.Inf(1))}, {"<f2", float32(math.Inf(-1))}} {
		bad := c.bad
		dir := t.TempDir()
		f, err := os.Create(filepath.Join(dir, "s.npy"))
		if err != nil {
			t.Fatal(err)
		}
		npy.WriteHeader(f, c.descr, 10, 3)
		for i := range 30 {
			v := float32(i)
			if i == 7*3+2 {
				v = bad
			}
			if c.descr == "<f2" {
				f.Write(binary.LittleEndian.AppendUint16(nil, float16.Fromfloat32(v).Bits()))
			} else {
				f.Write(binary.LittleEndian.AppendUint32(nil, math.Float32bits(v)))
			}
		}
		f.Close()
		rt, _ := stagetest.Runtime(t, load(t, dir, ""), nil)
		_, err = run(t, rt, nil)
		want := fmt.Sprintf("row 7: vector component 2 is %v (points.allow_non_finite", bad)
		if math.IsNaN(float64(bad)) {
			want = "row 7: vector component 2 is NaN (points.allow_non_finite"
		}
		if err == nil || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), "source s (") {
			t.Fatalf("%s %v: err = %v", c.descr, bad, err)
		}
		c := load(t, dir, "")
		c.Points.AllowNonFinite = true
		rt, _ = stagetest.Runtime(t, c, nil)
		if msgs, err := run(t, rt, nil); err != nil || len(msgs) != 4 {
			t.Fatalf("opted in: %d messages, %v", len(msgs), err)
		}
	}
}

// A Parquet list column's NaN/±Inf, which the reader finds as it copies
// (RowBlock.NonFinite), fails the run the same way, naming the column,
// row and component; points.allow_non_finite lets it through.
func TestNonFiniteParquetVectorsRefused(t *testing.T) {
	type row struct {
		Vec []float32 `parquet:"vec,list"`
	}
	for _, bad := range []float32{float32(math.NaN()), float32(math.Inf(-1))} {
		dir := t.TempDir()
		f, err := os.Create(filepath.Join(dir, "data.parquet"))
		if err != nil {
			t.Fatal(err)
		}
		w := parquet.NewGenericWriter[row](f)
		for i := 0; i < 10; i++ {
			v := []float32{float32(i), 1, 2}
			if i == 6 {
				v[1] = bad
			}
			w.Write([]row{{Vec: v}})
		}
		w.Close()
		f.Close()
		yaml := `version: 1
name: d
collection: { name: C, vectors: { v: { size: 3, distance: Dot } } }
sources: { s: { path: data.parquet } }
points:
  vectors: { v: { source: s, column: vec } }
upload: { batch_size: 4 }
snapshot: { destination: out }
`
		for _, allow := range []bool{false, true} {
			cfg, err := config.Load("p.yaml", []byte(yaml), dir, config.LoadOptions{Lookup: func(string) (string, bool) { return "", false }})
			if err != nil {
				t.Fatal(err)
			}
			cfg.Points.AllowNonFinite = allow
			rt, _ := stagetest.Runtime(t, cfg, nil)
			msgs, err := run(t, rt, nil)
			want := fmt.Sprintf(`column "vec", row 6: vector component 1 is %s (points.allow_non_finite`, map[bool]string{true: "NaN", false: "-Inf"}[bad != bad])
			if allow && (err != nil || len(msgs) != 4) || !allow && (err == nil || !strings.Contains(err.Error(), want)) {
				t.Fatalf("%v, allow %v: %d messages, err %v; want %q", bad, allow, len(msgs), err, want)
			}
		}
	}
}
