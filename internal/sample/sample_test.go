package sample

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"testing"

	"github.com/parquet-go/parquet-go"
	"github.com/parquet-go/parquet-go/encoding/thrift"
	"github.com/parquet-go/parquet-go/format"
	"github.com/snappipe/snappipe/internal/pq"
	"github.com/snappipe/snappipe/internal/testkit"
)

// With FullPrecision, the float32 .npy files hold exactly data.parquet's
// vector rows (the bench compares the two readers on the same bytes), and
// those differ from the float16 .npy rows.
func TestFullPrecisionNpyMatchesParquet(t *testing.T) {
	dir := t.TempDir()
	const rows, dim = 37, 5
	if err := Generate(Options{Rows: rows, Dim: dim, Seed: 7, RowGroupRows: 10, Out: dir, Embedded: true, FullPrecision: true}); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(filepath.Join(dir, "data.parquet"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	st, _ := f.Stat()
	pf, err := pq.Open(f, st.Size(), "data.parquet")
	if err != nil {
		t.Fatal(err)
	}
	r, err := pf.NewReader(pq.Selection{Vectors: []string{"image", "text"}}, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	want := map[string][]float32{}
	for i := 0; i < rows; i++ {
		var row pq.Row
		if err := r.Next(&row); err != nil {
			t.Fatal(err)
		}
		for c, v := range row.Vectors {
			want[c] = append(want[c], v...)
		}
	}
	for _, c := range []struct{ col, f32, f16 string }{{"image", "img_emb_f32.npy", "img_emb_0000.npy"}, {"text", "text_emb_f32.npy", "text_emb_0000.npy"}} {
		full := slices.Concat(testkit.NpyRows(t, filepath.Join(dir, c.f32))...)
		half := slices.Concat(testkit.NpyRows(t, filepath.Join(dir, c.f16))...)
		if len(full) != rows*dim || len(half) != rows*dim {
			t.Fatalf("%s: %d values, %s: %d, want %d", c.f32, len(full), c.f16, len(half), rows*dim)
		}
		differ := 0
		for i, x := range want[c.col] {
			if full[i] != x {
				t.Fatalf("%s value %d: npy %v, parquet %v", c.f32, i, full[i], x)
			}
			if half[i] != x {
				differ++
			}
		}
		if differ == 0 {
			t.Errorf("%s: the float16 rows equal the full-precision ones", c.f16)
		}
	}
}

// With Pyarrow, data.parquet has pyarrow's default layout (no page CRC,
// data page v1, no page index) and, read by parquet-go and by snappipe's
// reader from any row, exactly the rows of the parquet-go layout.
func TestPyarrowLayout(t *testing.T) {
	const rows, dim = 700, 40
	dirs := map[bool]string{}
	for _, py := range []bool{false, true} {
		dirs[py] = t.TempDir()
		if err := Generate(Options{Rows: rows, Dim: dim, Seed: 3, RowGroupRows: 300, Out: dirs[py], Embedded: true, FullPrecision: true, Pyarrow: py}); err != nil {
			t.Fatal(err)
		}
	}
	b, err := os.ReadFile(filepath.Join(dirs[true], "data.parquet"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dirs[true], "data.parquet-go.tmp")); !os.IsNotExist(err) {
		t.Fatalf("the intermediate file is left: %v", err)
	}
	pf, err := parquet.OpenFile(bytes.NewReader(b), int64(len(b)))
	if err != nil {
		t.Fatal(err)
	}
	pages := 0
	for _, rg := range pf.Metadata().RowGroups {
		for _, cc := range rg.Columns {
			if cc.OffsetIndexOffset != 0 || cc.ColumnIndexOffset != 0 {
				t.Fatal("a page index is left")
			}
			m := cc.MetaData
			off := m.DataPageOffset
			if m.DictionaryPageOffset > 0 {
				off = min(off, m.DictionaryPageOffset)
			}
			for end := off + m.TotalCompressedSize; off < end; pages++ {
				r := bytes.NewReader(b[off:end])
				var h format.PageHeader
				if err := thrift.NewDecoder((&thrift.CompactProtocol{}).NewReader(r)).Decode(&h); err != nil {
					t.Fatalf("page header at %d: %v", off, err)
				}
				if h.CRC != 0 || h.DataPageHeaderV2.Valid {
					t.Fatalf("page at %d: CRC %x, v2 %v", off, h.CRC, h.DataPageHeaderV2.Valid)
				}
				off += int64(len(b[off:end])-r.Len()) + int64(h.CompressedPageSize)
			}
			if off != m.DataPageOffset+m.TotalCompressedSize && m.DictionaryPageOffset == 0 {
				t.Fatalf("pages end at %d, the chunk at %d", off, m.DataPageOffset+m.TotalCompressedSize)
			}
		}
	}
	if pages < 10 {
		t.Fatalf("%d pages: not the layout the test is for", pages)
	}
	// parquet-go reads every row as written.
	read := func(dir string) []Embedded {
		f, err := os.Open(filepath.Join(dir, "data.parquet"))
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		got, err := parquet.Read[Embedded](f, func() int64 { st, _ := f.Stat(); return st.Size() }())
		if err != nil {
			t.Fatal(err)
		}
		return got
	}
	want, got := read(dirs[false]), read(dirs[true])
	if len(got) != rows || !reflect.DeepEqual(got, want) {
		t.Fatalf("%d rows, want %d, equal %v", len(got), rows, reflect.DeepEqual(got, want))
	}
	// snappipe's reader, from a row inside the second row group.
	spf, err := pq.Open(bytes.NewReader(b), int64(len(b)), "data.parquet")
	if err != nil {
		t.Fatal(err)
	}
	r, err := spf.NewReader(pq.Selection{Vectors: []string{"image", "text"}, Payload: []string{"caption"}}, 450)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	for i := 450; i < rows; i++ {
		var row pq.Row
		if err := r.Next(&row); err != nil {
			t.Fatalf("row %d: %v", i, err)
		}
		if !slices.Equal(row.Vectors["image"], want[i].Image) || !slices.Equal(row.Vectors["text"], want[i].Text) || fmt.Sprint(row.Payload["caption"]) != *want[i].Caption {
			t.Fatalf("row %d differs", i)
		}
	}
}
