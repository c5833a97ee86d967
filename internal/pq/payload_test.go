package pq

import (
	"bytes"
	"io"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"testing"

	"github.com/parquet-go/parquet-go"
	"github.com/snappipe/snappipe/internal/fixtures"
	"github.com/snappipe/snappipe/internal/sample"
	"github.com/snappipe/snappipe/pipeline"
)

// typedPages counts the columns payloadBothWays read by typed pages.
var typedPages int

// payloadBothWays reads every row's payload as a map (Row.Payload) and as
// columns (Row.PayloadTo, blocks of 7 rows, strings in one buffer per
// block) and fails on the first row where they differ.
func payloadBothWays(t *testing.T, pf *File, sel Selection) int {
	t.Helper()
	n := 0
	// From the start, and from rows a resume would start at (inside a
	// page, inside later row groups).
	for _, start := range []int64{0, 37, pf.NumRows()/2 + 3} {
		if start > 0 && start >= pf.NumRows() {
			continue
		}
		rows := payloadFrom(t, pf, sel, start)
		if start == 0 {
			n = rows
		} else if int64(rows) != pf.NumRows()-start {
			t.Fatalf("from %d: %d rows, want %d", start, rows, pf.NumRows()-start)
		}
	}
	return n
}

func payloadFrom(t *testing.T, pf *File, sel Selection, start int64) int {
	t.Helper()
	maps, err := pf.NewReader(sel, start)
	if err != nil {
		t.Fatal(err)
	}
	csel := sel
	csel.PayloadColumns = true // flat scalar columns by typed pages
	cols, err := pf.NewReader(csel, start)
	if err != nil {
		t.Fatal(err)
	}
	typedPages += len(cols.flatCols)
	// And n rows at a time, column by column (ReadPayloads), as apply
	// reads a payload-only source.
	blocks, err := pf.NewReader(csel, start)
	if err != nil {
		t.Fatal(err)
	}
	if !blocks.PayloadOnly() {
		t.Fatal("a payload selection is not PayloadOnly")
	}
	defer maps.Close()
	defer cols.Close()
	defer blocks.Close()
	var b, bb pipeline.PayloadBuilder
	rows := 0
	for {
		bb.Reset(blocks.PayloadKeys(), 7)
		got, berr := blocks.ReadPayloads(7, &bb)
		if berr != nil && berr != io.EOF {
			t.Fatalf("row %d: ReadPayloads: %v", start+int64(rows), berr)
		}
		if berr == io.EOF && got != 0 {
			t.Fatalf("ReadPayloads returned io.EOF with %d rows", got)
		}
		byBlock := bb.Finish()
		b.Reset(cols.PayloadKeys(), 7)
		var want []map[string]any
		var err error
		for len(want) < 7 {
			var m, c Row
			if err = maps.Next(&m); err != nil {
				break
			}
			c.PayloadTo = &b
			if err := cols.Next(&c); err != nil {
				t.Fatalf("row %d: columns: %v", start+int64(rows+len(want)), err)
			}
			if c.Payload != nil {
				t.Fatal("Next built a map although PayloadTo was set")
			}
			want = append(want, m.Payload)
		}
		blk := b.Finish()
		if blk.Len() != len(want) && len(blk.Keys) > 0 {
			t.Fatalf("block has %d rows, want %d", blk.Len(), len(want))
		}
		if got != len(want) {
			t.Fatalf("row %d: ReadPayloads read %d rows, Next %d", start+int64(rows), got, len(want))
		}
		for i, w := range want {
			if got := blk.Row(i); !sameValues(got, w) {
				t.Fatalf("row %d:\ncolumns %#v\n    map %#v", start+int64(rows+i), got, w)
			}
			if got := byBlock.Row(i); !sameValues(got, w) {
				t.Fatalf("row %d:\nReadPayloads %#v\n         map %#v", start+int64(rows+i), got, w)
			}
		}
		rows += len(want)
		if err == io.EOF {
			return rows
		}
		if err != nil {
			t.Fatal(err)
		}
	}
}

// payloadColumns are the columns that can be payload (lists of lists and
// of structs cannot).
func payloadColumns(t *testing.T, pf *File) []string {
	var keep []string
	for _, c := range pf.Columns() {
		if r, err := pf.NewReader(Selection{Payload: []string{c}}, 0); err == nil {
			r.Close()
			keep = append(keep, c)
		}
	}
	if len(keep) < 2 {
		t.Fatalf("only %v readable as payload", keep)
	}
	return keep
}

// sameValues is reflect.DeepEqual with NaN equal to NaN.
func sameValues(a, b map[string]any) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		w, ok := b[k]
		if !ok {
			return false
		}
		if s, ok := pipeline.ScalarOf(w); ok { // as the sink sends it (a uint64 beyond int64 as a double)
			w = s.Plain()
		}
		if x, ok := v.(float64); ok && math.IsNaN(x) {
			if y, ok := w.(float64); ok && math.IsNaN(y) {
				continue
			}
		}
		if !reflect.DeepEqual(v, w) {
			return false
		}
	}
	return true
}

// The column path (what apply uses) gives every row the payload the map
// path gives: files written by pyarrow, clip-retrieval, img2dataset and
// parquet-go, with nulls, nested groups and lists, float16, timestamps,
// dates, decimals, unsigned and UUID columns.
func TestPayloadColumnsMatchMaps(t *testing.T) {
	files := []string{"../../testdata/sample/metadata_0000.parquet", "../../testdata/vectors/mixed.parquet"}
	dc, _ := filepath.Glob("../../testdata/datacomp_small/*.parquet")
	files = append(files, dc...)
	files = append(files, "../../testdata/vectors/cases.parquet")
	for _, p := range files {
		t.Run(filepath.Base(p), func(t *testing.T) {
			pf := openFile(t, p)
			if n := payloadBothWays(t, pf, Selection{Payload: payloadColumns(t, pf)}); n == 0 {
				t.Fatal("no rows")
			}
		})
	}
	for _, rel := range []string{"real/metadata_0.parquet", "real/img2dataset/test_1000.parquet", "laionlike/metadata_laionlike_1000.parquet"} {
		t.Run(rel, func(t *testing.T) {
			if _, err := os.Stat(fixtures.Dir(t)); err != nil {
				t.Skip(err)
			}
			pf := openFile(t, fixture(t, rel))
			payloadBothWays(t, pf, Selection{Payload: payloadColumns(t, pf)})
		})
	}
	t.Cleanup(func() {
		if typedPages < 20 {
			t.Errorf("only %d columns were read by typed pages", typedPages)
		}
	})
	t.Run("types", func(t *testing.T) {
		type row struct {
			S   string   `parquet:"s,optional"`
			I8  int8     `parquet:"i8"`
			U32 uint32   `parquet:"u32"`
			U64 uint64   `parquet:"u64"`
			F   float32  `parquet:"f"`
			D   *float64 `parquet:"d,optional"`
			B   bool     `parquet:"b"`
			Raw []byte   `parquet:"raw"`
			TS  int64    `parquet:"ts,timestamp(millisecond)"`
			Day int32    `parquet:"day,date"`
			Tag []string `parquet:"tag,list"`
		}
		var rows []row
		for i := 0; i < 40; i++ {
			r := row{S: string(rune('a' + i%26)), I8: int8(-i), U32: math.MaxUint32 - uint32(i), U64: math.MaxUint64 - uint64(i), F: float32(i) / 3,
				B: i%2 == 0, Raw: []byte{0xff, byte(i)}, TS: int64(i) * 1e9, Day: int32(i), Tag: []string{"x", string(rune('a' + i%5))}}
			if i%3 == 0 {
				d := float64(i) * 1.5
				r.D = &d
			}
			if i%7 == 0 {
				r.Raw = []byte("text")
			}
			rows = append(rows, r)
		}
		var buf bytes.Buffer
		w := parquet.NewGenericWriter[row](&buf, parquet.MaxRowsPerRowGroup(9))
		if _, err := w.Write(rows); err != nil {
			t.Fatal(err)
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		pf, err := Open(bytes.NewReader(buf.Bytes()), int64(buf.Len()), "types")
		if err != nil {
			t.Fatal(err)
		}
		if n := payloadBothWays(t, pf, Selection{AllPayload: true}); n != 40 {
			t.Fatalf("%d rows", n)
		}
	})
}

// Vectors and payload from one file (the Hugging Face layout), read as
// apply reads them — the first row on its own (Open's row for the
// widths), then blocks whose flat payload columns are read ahead and
// whose vectors and other columns Next fills — give what the map path
// gives, across row groups and from resume points.
func TestReadAheadWithVectors(t *testing.T) {
	dir := t.TempDir()
	if err := sample.Generate(sample.Options{Rows: 300, Dim: 8, Seed: 5, RowGroupRows: 64, Out: dir, Embedded: true}); err != nil {
		t.Fatal(err)
	}
	pf := openFile(t, filepath.Join(dir, "data.parquet"))
	sel := Selection{Vectors: []string{"image", "text"}, AllPayload: true, Exclude: []string{"image", "text"}}
	for _, start := range []int64{0, 37, 150, 299} {
		maps, err := pf.NewReader(sel, start)
		if err != nil {
			t.Fatal(err)
		}
		csel := sel
		csel.PayloadColumns = true
		cols, err := pf.NewReader(csel, start)
		if err != nil {
			t.Fatal(err)
		}
		if !cols.HasFlatPayload() {
			t.Fatal("no flat payload columns")
		}
		var first, b pipeline.PayloadBuilder
		first.Reset(cols.PayloadKeys(), 1)
		rows := 0
		check := func(blk *pipeline.PayloadBlock, i int, c Row) {
			t.Helper()
			var m Row
			if err := maps.Next(&m); err != nil {
				t.Fatalf("row %d: map path: %v", start+int64(rows), err)
			}
			if got := blk.Row(i); !sameValues(got, m.Payload) {
				t.Fatalf("row %d:\nread ahead %#v\n       map %#v", start+int64(rows), got, m.Payload)
			}
			if !reflect.DeepEqual(c.Vectors, m.Vectors) {
				t.Fatalf("row %d: vectors %v, map path %v", start+int64(rows), c.Vectors, m.Vectors)
			}
			rows++
		}
		c := Row{PayloadTo: &first}
		if err := cols.Next(&c); err != nil {
			t.Fatal(err)
		}
		check(first.Finish(), 0, c)
		for {
			b.Reset(cols.PayloadKeys(), 7)
			n, err := cols.ReadAhead(7, &b)
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
			if _, err := cols.ReadAhead(7, &b); err == nil {
				t.Fatal("a second ReadAhead before Next took the rows read ahead was accepted")
			}
			var got []Row
			for j := 0; j < n; j++ {
				c := Row{PayloadTo: &b}
				if err := cols.Next(&c); err != nil {
					t.Fatalf("row %d: %v", start+int64(rows+j), err)
				}
				got = append(got, Row{Vectors: map[string][]float32{"image": slices.Clone(c.Vectors["image"]), "text": slices.Clone(c.Vectors["text"])}})
			}
			blk := b.Finish()
			for j := range got {
				check(blk, j, got[j])
			}
		}
		if want := pf.NumRows() - start; int64(rows) != want {
			t.Fatalf("from %d: %d rows, want %d", start, rows, want)
		}
		maps.Close()
		cols.Close()
	}
}
