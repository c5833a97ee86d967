package pq

import (
	"bytes"
	"fmt"
	"io"
	"math"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/parquet-go/parquet-go"
	"github.com/snappipe/snappipe/pipeline"
	"github.com/x448/float16"
)

// testdata/vectors/cases.parquet (written by pyarrow, see
// scripts/make_vectors_fixture.py) has one column per way a multivector or
// sparse column can be wrong, wrong in row 2 only.
func openCases(t *testing.T) *File { return openVectors(t, "cases.parquet") }

// openVectors opens a file of testdata/vectors.
func openVectors(t *testing.T, name string) *File {
	t.Helper()
	f, err := os.Open("../../testdata/vectors/" + name)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	st, _ := f.Stat()
	pf, err := Open(f, st.Size(), name)
	if err != nil {
		t.Fatal(err)
	}
	return pf
}

// readAll reads every row of sel, returning the rows and the first error.
func readAll(pf *File, sel Selection) ([]Row, error) {
	r, err := pf.NewReader(sel, 0)
	if err != nil {
		return nil, err
	}
	defer r.Close()
	var out []Row
	for i := 0; i < 4; i++ {
		var row Row
		if err := r.Next(&row); err != nil {
			return out, err
		}
		out = append(out, row)
	}
	return out, nil
}

func TestMultivectorRows(t *testing.T) {
	pf := openCases(t)
	rows, err := readAll(pf, Selection{Multi: []string{"tok_ok"}})
	if err != nil {
		t.Fatal(err)
	}
	if got := rows[2].Multi["tok_ok"]; !slices.Equal(got, []float32{5, 6}) {
		t.Fatalf("row 2 = %v", got)
	}
	if got := rows[3].Multi["tok_ok"]; !slices.Equal(got, []float32{1, 2, 3, 4}) {
		t.Fatalf("row 3 = %v", got)
	}
	for col, want := range map[string]string{
		"tok_zero":           `row 2: multivector column "tok_zero" has no token vectors`,
		"tok_null":           `row 2: multivector column "tok_null" has no token vectors`,
		"tok_empty_token":    `row 2: multivector column "tok_empty_token" token vector 1 is null or empty`,
		"tok_null_token":     `row 2: multivector column "tok_null_token" token vector 1 is null or empty`,
		"tok_width":          `row 2: multivector column "tok_width" token vector 1 has 3 components, the column's first token vector has 2`,
		"tok_null_component": `row 2: multivector column "tok_null_component" token vector 0 has a null component`,
		"flat":               `multivector column "flat" in cases.parquet is`,
	} {
		rows, err := readAll(pf, Selection{Multi: []string{col}})
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v, want %q", col, err, want)
		}
		if col != "flat" && len(rows) != 2 {
			t.Errorf("%s: %d rows read before the error, want 2", col, len(rows))
		}
	}
}

func TestSparseRows(t *testing.T) {
	pf := openCases(t)
	ok := pipeline.SparsePair{Indices: "idx_ok", Values: "val_ok"}
	nulls := pipeline.SparsePair{Indices: "idx_null", Values: "val_null"}
	rows, err := readAll(pf, Selection{Sparse: []pipeline.SparsePair{ok, nulls}})
	if err != nil {
		t.Fatal(err)
	}
	if s := rows[2].Sparse[ok]; !slices.Equal(s.Indices, []uint32{9, 1, 4}) || !slices.Equal(s.Values, []float32{0.9, 0.1, 0.4}) {
		t.Fatalf("row 2 = %+v", s)
	}
	if s := rows[2].Sparse[nulls]; len(s.Indices)+len(s.Values) != 0 {
		t.Fatalf("a null pair is an empty sparse vector, got %+v", s)
	}
	if s := rows[3].Sparse[nulls]; !slices.Equal(s.Indices, []uint32{1, 2}) {
		t.Fatalf("row 3 after a null row = %+v", s)
	}
	for pair, want := range map[pipeline.SparsePair]string{
		{Indices: "idx_neg", Values: "val_ok"}:        `row 2: sparse indices column "idx_neg": index -1 is negative`,
		{Indices: "idx_big", Values: "val_ok"}:        `row 2: sparse indices column "idx_big": index 4294967296 does not fit a sparse dimension`,
		{Indices: "idx_dup", Values: "flat"}:          `row 2: sparse vector: index 3 appears more than once in column "idx_dup"`,
		{Indices: "idx_ok", Values: "val_null"}:       `row 2: sparse vector: indices column "idx_ok" has 3 entries, values column "val_null" has 0`,
		{Indices: "idx_ok", Values: "val_null_elem"}:  `row 2: sparse values column "val_null_elem": element 1 is null`,
		{Indices: "idx_str", Values: "val_ok"}:        `sparse indices column "idx_str" in cases.parquet is`,
		{Indices: "idx_ok", Values: "tok_ok"}:         `sparse values column "tok_ok" in cases.parquet is`,
		{Indices: "idx_ok", Values: "no_such_column"}: `sparse values column "no_such_column" is not in cases.parquet`,
	} {
		_, err := readAll(pf, Selection{Sparse: []pipeline.SparsePair{pair}})
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%v: %v, want %q", pair, err, want)
		}
	}
}

// Multivector and sparse columns never become payload: AllPayload leaves
// them out, and naming one as payload is an error.
func TestVectorColumnsAreNotPayload(t *testing.T) {
	pf := openCases(t)
	pair := pipeline.SparsePair{Indices: "idx_ok", Values: "val_ok"}
	rows, err := readAll(pf, Selection{AllPayload: true, Exclude: []string{"tok_zero", "tok_null", "tok_empty_token", "tok_null_token", "tok_width", "tok_null_component", "idx_neg", "idx_big", "idx_dup", "idx_null", "val_null", "val_null_elem", "idx_str", "score16"},
		Multi: []string{"tok_ok"}, Sparse: []pipeline.SparsePair{pair}})
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := rows[0].Payload["flat"]; !ok || len(rows[0].Payload) != 1 {
		t.Fatalf("payload = %v, want only flat", rows[0].Payload)
	}
	if _, err := readAll(pf, Selection{Payload: []string{"idx_ok"}, Sparse: []pipeline.SparsePair{pair}}); err == nil || !strings.Contains(err.Error(), "cannot also be payload") {
		t.Fatalf("err = %v", err)
	}
}

// The typed page reader (dense vector-only list columns) gives what the
// generic value reader gives, from every start row: on pyarrow's
// dictionary-encoded float and double pages (testdata/vectors) and on
// parquet-go pages of both data page versions, small enough that rows
// spread over many pages.
func TestTypedPagesMatchGeneric(t *testing.T) {
	type src struct {
		name string
		pf   *File
		col  string
	}
	srcs := []src{
		{"arrow float", openVectors(t, "mixed.parquet"), "dense"},
		{"arrow pages v1", openVectors(t, "hf_v1.parquet"), "emb"},
		{"arrow pages v2, dictionary", openVectors(t, "hf_v2_dict.parquet"), "emb"},
	}
	var buf bytes.Buffer
	w := parquet.NewGenericWriter[vecRow64](&buf, parquet.MaxRowsPerRowGroup(30), parquet.PageBufferSize(128))
	for i := 0; i < 90; i++ {
		w.Write([]vecRow64{{Vec: []float64{float64(i) + 0.25, -float64(i), 1e-3 * float64(i)}}})
	}
	w.Close()
	pf64, err := Open(bytes.NewReader(buf.Bytes()), int64(buf.Len()), "v64")
	if err != nil {
		t.Fatal(err)
	}
	srcs = append(srcs, src{"parquet-go double", pf64, "vec"})
	for _, v := range []int{1, 2} {
		var buf bytes.Buffer
		w := parquet.NewGenericWriter[vecRow](&buf, parquet.MaxRowsPerRowGroup(40), parquet.PageBufferSize(64), parquet.DataPageVersion(v))
		for i := 0; i < 100; i++ {
			vec := make([]float32, 1+i%7)
			for j := range vec {
				vec[j] = float32(i*10 + j)
			}
			w.Write([]vecRow{{Key: fmt.Sprint(i), Vec: vec}})
		}
		w.Close()
		pf, err := Open(bytes.NewReader(buf.Bytes()), int64(buf.Len()), "v")
		if err != nil {
			t.Fatal(err)
		}
		srcs = append(srcs, src{fmt.Sprintf("parquet-go page v%d", v), pf, "vec"})
	}
	for _, s := range srcs {
		n := s.pf.NumRows()
		for start := int64(0); start < n; start += 37 {
			typed, err1 := readVecs(t, s.pf, Selection{Vectors: []string{s.col}}, start)
			generic, err2 := readVecs(t, s.pf, Selection{Vectors: []string{s.col}, Payload: []string{s.col}}, start)
			if err1 != nil || err2 != nil || int64(len(typed)) != n-start || fmt.Sprint(typed) != fmt.Sprint(generic) {
				t.Fatalf("%s from %d: %d rows (%v) vs %d (%v)", s.name, start, len(typed), err1, len(generic), err2)
			}
		}
	}
}

type vecRow64 struct {
	Vec []float64 `parquet:"vec,list"`
}

func readVecs(t *testing.T, pf *File, sel Selection, start int64) ([][]float32, error) {
	r, err := pf.NewReader(sel, start)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if len(sel.Payload) == 0 && !sel.AllPayload && len(r.typed)+len(r.typedCols) == 0 {
		t.Fatal("the typed reader is not in use")
	}
	var out [][]float32
	for {
		var row Row
		if err := r.Next(&row); err == io.EOF {
			return out, nil
		} else if err != nil {
			return out, err
		}
		out = append(out, append([]float32(nil), row.Vectors[sel.Vectors[0]]...))
	}
}

// hfEmb is component j of row i's embedding in testdata/vectors/hf_*.parquet
// (scripts/make_pyarrow_pages_fixture.py).
func hfEmb(i, j int) float32 {
	if i == 3 && j < 3 {
		return []float32{math.Float32frombits(1), float32(math.Copysign(0, -1)), math.MaxFloat32}[j]
	}
	return float32((i*131+j*17)%2001-1000) / 64
}

// Files pyarrow wrote with many small pages per column chunk (data page
// v1 with plain values; v2 with page CRCs and dictionary-encoded values)
// are read exactly, bit for bit, from the start, from inside a row group
// and across row groups, with their payload beside.
func TestPyarrowPagedVectors(t *testing.T) {
	for _, name := range []string{"hf_v1.parquet", "hf_v2_dict.parquet", "hf_fixed.parquet"} {
		pf := openVectors(t, name)
		// hf_fixed: the embedding as fixed_size_list<float>[48] (datasets'
		// Sequence with a length), and emb16, the same as halffloat.
		fixed := name == "hf_fixed.parquet"
		vecs := []string{"emb"}
		if fixed {
			vecs = append(vecs, "emb16")
		}
		pages, dict := 0, false
		pp := pf.f.RowGroups()[0].ColumnChunks()[3].Pages()
		for {
			p, err := pp.ReadPage()
			if err != nil {
				break
			}
			pages++
			dict = dict || p.Dictionary() != nil
		}
		pp.Close()
		if pages < 5 || dict != strings.Contains(name, "dict") {
			t.Fatalf("%s: %d pages in the first embedding chunk, dictionary %v: not the layout the test is for", name, pages, dict)
		}
		for _, start := range []int64{0, 1, 149, 150, 151, 299, 399} {
			r, err := pf.NewReader(Selection{Vectors: vecs, Payload: []string{"id", "caption"}}, start)
			if err != nil {
				t.Fatal(err)
			}
			if !r.typedCols[3] {
				t.Fatalf("%s: the embedding is not read by typed pages", name)
			}
			i := int(start)
			for ; ; i++ {
				var row Row
				err := r.Next(&row)
				if err == io.EOF {
					break
				}
				if err != nil {
					t.Fatalf("%s from %d, row %d: %v", name, start, i, err)
				}
				if fmt.Sprintf("%v %v", row.Payload["id"], row.Payload["caption"]) != fmt.Sprintf("%d caption %d", i, i%37) {
					t.Fatalf("%s from %d, row %d: payload %v", name, start, i, row.Payload)
				}
				v := row.Vectors["emb"]
				if len(v) != 48 {
					t.Fatalf("%s from %d, row %d: %d values", name, start, i, len(v))
				}
				for j, x := range v {
					if math.Float32bits(x) != math.Float32bits(hfEmb(i, j)) {
						t.Fatalf("%s from %d, row %d, component %d: %v, want %v", name, start, i, j, x, hfEmb(i, j))
					}
				}
				if fixed {
					h := row.Vectors["emb16"]
					if len(h) != 48 {
						t.Fatalf("%s from %d, row %d: emb16 has %d values", name, start, i, len(h))
					}
					for j, x := range h {
						want := float16.Fromfloat32(max(-65504, min(65504, hfEmb(i, j)))).Float32()
						if math.Float32bits(x) != math.Float32bits(want) {
							t.Fatalf("%s from %d, row %d, emb16[%d]: %v, want %v", name, start, i, j, x, want)
						}
					}
				}
			}
			r.Close()
			if i != 400 {
				t.Fatalf("%s from %d: ended at row %d", name, start, i)
			}
		}
	}
}

// A float16 scalar column (FLOAT16, which parquet-go's schema nodes do not
// carry) is payload as numbers, not as their two bytes.
func TestFloat16PayloadColumn(t *testing.T) {
	pf := openCases(t)
	rows, err := readAll(pf, Selection{Payload: []string{"score16"}})
	if err != nil {
		t.Fatal(err)
	}
	var got []any
	for _, r := range rows {
		got = append(got, r.Payload["score16"])
	}
	if fmt.Sprint(got) != fmt.Sprint([]any{0.5, -2.0, nil, 65504.0}) {
		t.Fatalf("score16 = %v", got)
	}
}

type vecRowNullable struct {
	Vec []*float32 `parquet:"vec,list"`
}

// A null element of a list<float> vector is refused by the typed reader
// wherever it sits: in the first 32 levels, after them (the word-at-a-time
// check), in a row's tail, and in a vector that spans pages.
func TestTypedNullElementRefused(t *testing.T) {
	for _, c := range []struct{ width, row, pos int }{{70, 3, 0}, {70, 3, 40}, {70, 5, 69}, {7, 2, 6}, {300, 1, 150}} {
		var buf bytes.Buffer
		w := parquet.NewGenericWriter[vecRowNullable](&buf, parquet.PageBufferSize(256))
		for i := 0; i < 8; i++ {
			vec := make([]*float32, c.width)
			for j := range vec {
				f := float32(i*1000 + j)
				vec[j] = &f
			}
			if i == c.row {
				vec[c.pos] = nil
			}
			w.Write([]vecRowNullable{{Vec: vec}})
		}
		w.Close()
		pf, err := Open(bytes.NewReader(buf.Bytes()), int64(buf.Len()), "nullable")
		if err != nil {
			t.Fatal(err)
		}
		rows, err := readVecs(t, pf, Selection{Vectors: []string{"vec"}}, 0)
		want := fmt.Sprintf("row %d: vector column %q has a null element", c.row, "vec")
		if err == nil || err.Error() != want || len(rows) != c.row {
			t.Fatalf("%+v: %d rows, err %v; want %q after %d rows", c, len(rows), err, want, c.row)
		}
	}
}
