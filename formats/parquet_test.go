package formats_test

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/klauspost/compress/snappy"
	"github.com/parquet-go/parquet-go"
	"github.com/parquet-go/parquet-go/format"

	"github.com/snappipe/snappipe/internal/finite"
	"github.com/snappipe/snappipe/internal/pq"
	"github.com/snappipe/snappipe/pipeline"
	"github.com/snappipe/snappipe/pipeline/config"
)

// hfEmb is component j of row i's embedding in testdata/vectors/hf_*.parquet
// (scripts/make_pyarrow_pages_fixture.py).
func hfEmb(i, j int) float32 {
	if i == 3 && j < 3 {
		return []float32{math.Float32frombits(1), float32(math.Copysign(0, -1)), math.MaxFloat32}[j]
	}
	return float32((i*131+j*17)%2001-1000) / 64
}

// The format plugin reads a block's list<float> vectors column by column,
// a page's rows at once: files pyarrow wrote with many small pages (data
// page v1; v2 with CRCs and a dictionary) give every value bit for bit,
// from any start row, in blocks of any size (one row, a few, more than a
// page, the whole file), alone, with payload read ahead beside them, and
// with an id column that Next reads row by row.
func TestParquetBlocksOfPagedVectors(t *testing.T) {
	sels := map[string]pipeline.Selection{
		"vectors":         {Vectors: []string{"emb"}},
		"vectors+payload": {Vectors: []string{"emb"}, Payload: []string{"id", "caption"}},
		"vectors+id":      {Vectors: []string{"emb"}, ID: "id", Payload: []string{"caption"}},
	}
	for _, name := range []string{"hf_v1.parquet", "hf_v2_dict.parquet"} {
		ff, err := probe(t, "parquet", filepath.Join("..", "testdata", "vectors", name), nil)
		if err != nil {
			t.Fatal(err)
		}
		for sn, sel := range sels {
			for _, start := range []int64{0, 1, 149, 150, 151, 299, 399} {
				for _, bs := range []int{1, 7, 64, 400} {
					where := fmt.Sprintf("%s %s from %d in blocks of %d", name, sn, start, bs)
					rr, err := ff.Open(sel, start, 400)
					if err != nil {
						t.Fatalf("%s: %v", where, err)
					}
					for s := start; s < 400; s += int64(bs) {
						blk := &pipeline.RowBlock{Start: s, N: int(min(int64(bs), 400-s))}
						if err := rr.Read(blk); err != nil {
							t.Fatalf("%s, block at %d: %v", where, s, err)
						}
						v := blk.Floats("emb")
						if len(v) != blk.N*48 {
							t.Fatalf("%s, block at %d: %d values for %d rows", where, s, len(v), blk.N)
						}
						for i := 0; i < blk.N; i++ {
							row := int(s) + i
							for j := 0; j < 48; j++ {
								if math.Float32bits(v[i*48+j]) != math.Float32bits(hfEmb(row, j)) {
									t.Fatalf("%s, row %d component %d: %v, want %v", where, row, j, v[i*48+j], hfEmb(row, j))
								}
							}
							if sel.ID != "" && blk.IDs[i].Num != uint64(row) {
								t.Fatalf("%s, row %d: id %v", where, row, blk.IDs[i])
							}
							if p := blk.Payload; p != nil {
								if got := fmt.Sprint(p.Row(i)["caption"]); got != fmt.Sprintf("caption %d", row%37) {
									t.Fatalf("%s, row %d: payload %v", where, row, p.Row(i))
								}
							}
						}
						blk.Done()
					}
					rr.Close()
				}
			}
		}
	}
}

type vecRowNullable struct {
	Vec []*float32 `parquet:"vec,list"`
}

// A row whose vector is not like the others is named, whether it sits in
// the middle of a page's run of rows, at a page's end or across pages:
// one value more or fewer, a row and the next that hold as many values
// as two rows, a null element, an empty list. The rows before
// it are read (they are in the blocks before).
func TestParquetBadRowInABlock(t *testing.T) {
	const width = 24
	for _, c := range []struct {
		bad      string
		row, pos int
		pageSize int
	}{
		{"longer", 5, 0, 512}, {"longer", 9, 0, 4096}, {"longer", 39, 0, 4096},
		{"shorter", 5, 0, 512}, {"shorter", 17, 0, 4096}, {"shorter", 39, 0, 4096},
		{"split", 9, 0, 4096}, {"split", 30, 0, 4096},
		{"null", 6, 3, 4096}, {"null", 13, 23, 512}, {"empty", 11, 0, 4096}, {"empty", 39, 0, 512},
	} {
		var buf bytes.Buffer
		w := parquet.NewGenericWriter[vecRowNullable](&buf, parquet.PageBufferSize(c.pageSize))
		for i := 0; i < 40; i++ {
			n := width
			if i == c.row {
				n = map[string]int{"longer": width + 1, "shorter": width - 1, "split": width - 1, "empty": 0}[c.bad] + map[bool]int{true: width}[c.bad == "null"]
			}
			if i == c.row+1 && c.bad == "split" {
				n = 1 // with the row before: as many values as two rows
			}
			vec := make([]*float32, n)
			for j := range vec {
				f := float32(i*100 + j)
				vec[j] = &f
			}
			if i == c.row && c.bad == "null" {
				vec[c.pos] = nil
			}
			if _, err := w.Write([]vecRowNullable{{Vec: vec}}); err != nil {
				t.Fatal(err)
			}
		}
		w.Close()
		file := filepath.Join(t.TempDir(), "v.parquet")
		os.WriteFile(file, buf.Bytes(), 0o644)
		ff, err := probe(t, "parquet", file, &config.Source{})
		if err != nil {
			t.Fatal(err)
		}
		rr, err := ff.Open(pipeline.Selection{Vectors: []string{"vec"}}, 0, 40)
		if err != nil {
			t.Fatal(err)
		}
		var got error
		read := 0
		for s := 0; s < 40 && got == nil; s += 8 {
			blk := &pipeline.RowBlock{Start: int64(s), N: 8}
			if got = rr.Read(blk); got == nil {
				for i := 0; i < 8; i++ {
					if v := blk.Floats("vec")[i*width]; v != float32((s+i)*100) {
						t.Fatalf("%+v: row %d starts with %v", c, s+i, v)
					}
				}
				read += 8
			}
			blk.Done()
		}
		rr.Close()
		want := map[string]string{
			"longer":  fmt.Sprintf("row %d: vector column \"vec\" has %d values, earlier rows have %d", c.row, width+1, width),
			"split":   fmt.Sprintf("row %d: vector column \"vec\" has %d values, earlier rows have %d", c.row, width-1, width),
			"shorter": fmt.Sprintf("row %d: vector column \"vec\" has %d values, earlier rows have %d", c.row, width-1, width),
			"null":    fmt.Sprintf("row %d: vector column \"vec\" has a null element", c.row),
			"empty":   fmt.Sprintf("row %d: vector column \"vec\" is null or empty", c.row),
		}[c.bad]
		if got == nil || got.Error() != want || read != c.row/8*8 {
			t.Fatalf("%+v: %d rows read, err %v; want %q after %d rows", c, read, got, want, c.row/8*8)
		}
	}
}

type vecRow struct {
	Vec []float32 `parquet:"vec,list"`
}

// The Parquet reader looks for NaN and ±Inf as it copies a block's
// vectors (RowBlock.NonFinite): what it reports is what a scan of the
// block finds — the first such value, or none — wherever they sit (the
// file's first row, a page's whole rows, a page's last row, a row across
// pages), in data page v1 and v2, in blocks of several sizes.
func TestParquetNonFiniteFoundWhileReading(t *testing.T) {
	rnd := rand.New(rand.NewPCG(5, 6))
	for iter := 0; iter < 40; iter++ {
		const rows = 120
		w := []int{3, 48, 300}[iter%3]
		var buf bytes.Buffer
		opts := []parquet.WriterOption{parquet.PageBufferSize([]int{512, 8192, 1 << 20}[rnd.IntN(3)])}
		if iter%2 == 0 {
			opts = append(opts, parquet.DataPageVersion(1))
		}
		pw := parquet.NewGenericWriter[vecRow](&buf, opts...)
		bad := map[int]float32{}
		for k := 0; k < rnd.IntN(4); k++ {
			bad[rnd.IntN(rows*w)] = []float32{float32(math.NaN()), float32(math.Inf(1)), float32(math.Inf(-1))}[rnd.IntN(3)]
		}
		if iter%5 == 0 {
			bad[rnd.IntN(w)] = float32(math.NaN()) // in the first row
		}
		for i := 0; i < rows; i++ {
			v := make([]float32, w)
			for j := range v {
				v[j] = float32(i*w + j)
				if x, ok := bad[i*w+j]; ok {
					v[j] = x
				}
			}
			pw.Write([]vecRow{{Vec: v}})
		}
		pw.Close()
		file := filepath.Join(t.TempDir(), "v.parquet")
		os.WriteFile(file, buf.Bytes(), 0o644)
		ff, err := probe(t, "parquet", file, nil)
		if err != nil {
			t.Fatal(err)
		}
		bs := []int{1, 7, 64}[rnd.IntN(3)]
		rr, err := ff.Open(pipeline.Selection{Vectors: []string{"vec"}}, 0, rows)
		if err != nil {
			t.Fatal(err)
		}
		for s := 0; s < rows; s += bs {
			blk := &pipeline.RowBlock{Start: int64(s), N: min(bs, rows-s)}
			if err := rr.Read(blk); err != nil {
				t.Fatal(err)
			}
			got, ok := blk.NonFinite["vec"]
			if want := finite.First(blk.Floats("vec")); !ok || got != want {
				t.Fatalf("iteration %d (w %d, bad %v), block at %d of %d: NonFinite %d (%v), a scan finds %d", iter, w, bad, s, bs, got, ok, want)
			}
			blk.Done()
		}
		rr.Close()
	}
}

// fragSnappy writes Snappy as pyarrow's C++ library does: each 64 KiB of
// input compressed on its own (one literal when it does not compress,
// copies where it repeats), all in one block.
type fragSnappy struct{}

func (fragSnappy) String() string                            { return "SNAPPY (64 KiB fragments)" }
func (fragSnappy) CompressionCodec() format.CompressionCodec { return format.Snappy }
func (fragSnappy) Decode(dst, src []byte) ([]byte, error)    { return snappy.Decode(dst[:cap(dst)], src) }
func (fragSnappy) Encode(dst, src []byte) ([]byte, error) {
	dst = binary.AppendUvarint(dst[:0], uint64(len(src)))
	for len(src) > 0 {
		frag := src[:min(len(src), 64<<10)]
		b := snappy.Encode(nil, frag)
		_, k := binary.Uvarint(b)
		dst, src = append(dst, b[k:]...), src[len(frag):]
	}
	return dst, nil
}

// Pages whose Snappy block is many literals (pyarrow's 64 KiB fragments)
// and a few copies (rows that repeat) are read without decompressing
// their literals: rows are borrowed from the bytes read, a row split
// between two literals is gathered. Every value comes back bit for bit,
// while blocks hold their rows (none is given back before the end), with
// payload read ahead (blocks borrow the pages) and with an id read by
// Next (rows copied); once the blocks are released, no page buffer is
// left in use.
func TestParquetVectorsFromSnappyFragments(t *testing.T) {
	const rows, width = 1500, 768
	type row struct {
		ID  int64     `parquet:"id"`
		Emb []float32 `parquet:"emb,list"`
	}
	r := rand.New(rand.NewPCG(5, 6))
	want := make([][]float32, rows)
	for i := range want {
		if i%7 == 3 {
			want[i] = want[i-1] // a repeat: copy elements in the block
			continue
		}
		want[i] = make([]float32, width)
		for j := range want[i] {
			want[i][j] = math.Float32frombits(r.Uint32()&^(0xFF<<23) | uint32(100+r.IntN(50))<<23)
		}
	}
	for _, v1 := range []bool{true, false} {
		var buf bytes.Buffer
		opts := []parquet.WriterOption{parquet.Compression(fragSnappy{}), parquet.PageBufferSize(1 << 20)}
		if v1 {
			opts = append(opts, parquet.DataPageVersion(1))
		}
		w := parquet.NewGenericWriter[row](&buf, opts...)
		for i := range want {
			if _, err := w.Write([]row{{ID: int64(i), Emb: want[i]}}); err != nil {
				t.Fatal(err)
			}
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		path := filepath.Join(t.TempDir(), "frag.parquet")
		if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
		ff, err := probe(t, "parquet", path, nil)
		if err != nil {
			t.Fatal(err)
		}
		for sn, sel := range map[string]pipeline.Selection{
			"borrowed": {Vectors: []string{"emb"}, Payload: []string{"id"}},
			"copied":   {Vectors: []string{"emb"}, ID: "id"},
		} {
			for _, bs := range []int{1, 37, 256, rows} {
				where := fmt.Sprintf("v1 %v, %s, blocks of %d", v1, sn, bs)
				rr, err := ff.Open(sel, 0, rows)
				if err != nil {
					t.Fatal(err)
				}
				var blocks []*pipeline.RowBlock
				for s := 0; s < rows; s += bs {
					blk := &pipeline.RowBlock{Start: int64(s), N: min(bs, rows-s)}
					if err := rr.Read(blk); err != nil {
						t.Fatalf("%s, block at %d: %v", where, s, err)
					}
					blocks = append(blocks, blk)
				}
				rr.Close()
				for _, blk := range blocks {
					got := blk.Floats("emb")
					for i := range blk.N {
						if !slices.Equal(got[i*width:(i+1)*width], want[int(blk.Start)+i]) {
							t.Fatalf("%s: row %d differs", where, int(blk.Start)+i)
						}
					}
					if sn == "borrowed" && bs > 1 && blk.Runs["emb"] == nil {
						t.Fatalf("%s: the block copied its rows", where)
					}
					blk.Done()
				}
				if n := pq.LivePages(); n != 0 {
					t.Fatalf("%s: %d page buffers still in use after every block was released", where, n)
				}
			}
		}
	}
}
