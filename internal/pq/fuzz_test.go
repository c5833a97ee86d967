package pq

import (
	"bytes"
	"io"
	"reflect"
	"slices"
	"testing"

	"github.com/parquet-go/parquet-go"
	"github.com/snappipe/snappipe/pipeline"
)

type fuzzRow struct {
	ID   uint64    `parquet:"id"`
	Name *string   `parquet:"name,optional"`
	Vec  []float32 `parquet:"vec"`
	Tags []string  `parquet:"tags,list"`
}

func fuzzSeed(tb testing.TB, n int) []byte {
	var b bytes.Buffer
	w := parquet.NewGenericWriter[fuzzRow](&b, parquet.PageBufferSize(256))
	rows := make([]fuzzRow, n)
	for i := range rows {
		s := "row"
		rows[i] = fuzzRow{ID: uint64(i), Name: &s, Vec: []float32{float32(i), 1, 2}, Tags: []string{"a"}}
	}
	if _, err := w.Write(rows); err != nil {
		tb.Fatal(err)
	}
	if err := w.Close(); err != nil {
		tb.Fatal(err)
	}
	return b.Bytes()
}

// FuzzOpen feeds the footer, schema and page path arbitrary bytes: Open
// and reading must return errors, never panic or allocate without bound.
func FuzzOpen(f *testing.F) {
	good := fuzzSeed(f, 20)
	f.Add(good)
	f.Add(good[:len(good)-9])
	f.Add(append([]byte("PAR1"), good[len(good)-64:]...))
	for _, at := range []int{4, 20, len(good) / 2, len(good) - 12} {
		b := bytes.Clone(good)
		b[at] ^= 0xff
		f.Add(b)
	}
	// Vectors as a dictionary-encoded list in data page v1, and as a
	// plain one in v2 with a row across pages: chunkPages's paths.
	for _, v1 := range []bool{true, false} {
		var b bytes.Buffer
		opts := []parquet.WriterOption{parquet.PageBufferSize(256)}
		if v1 {
			opts = append(opts, parquet.DataPageVersion(1))
		}
		w := parquet.NewGenericWriter[vecRowDict](&b, opts...)
		for i := 0; i < 12; i++ {
			vec := make([]*float32, 40)
			for j := range vec {
				x := float32((i + j) % 5)
				vec[j] = &x
			}
			w.Write([]vecRowDict{{Vec: vec}})
		}
		w.Close()
		f.Add(b.Bytes())
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		pf, err := Open(bytes.NewReader(data), int64(len(data)), "fuzz.parquet")
		if err != nil {
			return
		}
		// Vectors read as apply reads them, by chunkPages and by
		// parquet-go's pages: never a panic; the same values when both
		// read the file.
		useOwnPages = false
		want, wantErr, _ := readBlocks(t, pf, "vec", 0, 3)
		useOwnPages = true
		got, gotErr, _ := readBlocks(t, pf, "vec", 0, 3)
		if wantErr == "" && gotErr == "" && !slices.Equal(got, want) && !slices.ContainsFunc(want, func(x float32) bool { return x != x }) {
			t.Fatalf("chunkPages read %d values, parquet-go %d, not the same", len(got), len(want))
		}
		_ = pf.Columns()
		_ = pf.Describe()
		for _, sel := range []Selection{{AllPayload: true}, {Vectors: []string{"vec"}, ID: "id", Payload: []string{"name"}}} {
			// The column path apply uses (PayloadTo) beside the map path:
			// the same rows, the same payloads, the same end.
			r, rc := readerPair(t, pf, sel)
			if r == nil {
				continue
			}
			var b pipeline.PayloadBuilder
			b.Reset(rc.PayloadKeys(), 8)
			for i := 0; i < 1000; i++ {
				var row, crow Row
				crow.PayloadTo = &b
				err, cerr := r.Next(&row), rc.Next(&crow)
				if (err == nil) != (cerr == nil) {
					t.Fatalf("row %d: map path %v, column path %v", i, err, cerr)
				}
				if err != nil {
					if err != io.EOF {
						_ = err.Error()
					}
					break
				}
				if got := b.Finish(); len(got.Keys) > 0 && !sameValues(got.Row(0), row.Payload) {
					t.Fatalf("row %d: columns %v, map %v", i, got.Row(0), row.Payload)
				}
				b.Reset(rc.PayloadKeys(), 8)
			}
			r.Close()
			rc.Close()
			if sel.AllPayload {
				blocksMatchRows(t, pf, sel)
			} else {
				aheadMatchRows(t, pf, sel)
			}
		}
	})
}

// blocksMatchRows reads a payload-only selection three rows at a time by
// ReadPayloads and row by row by Next (the map path): the same payloads
// and the same end, an error on both paths or neither.
func blocksMatchRows(t *testing.T, pf *File, sel Selection) {
	r, rb := readerPair(t, pf, sel)
	if r == nil {
		return
	}
	defer r.Close()
	defer rb.Close()
	if !rb.PayloadOnly() {
		return
	}
	var b pipeline.PayloadBuilder
	for i := 0; i < 1000; i += 3 {
		b.Reset(rb.PayloadKeys(), 3)
		got, berr := rb.ReadPayloads(3, &b)
		blk := b.Finish()
		var err error
		for j := 0; j < 3; j++ {
			var row Row
			if err = r.Next(&row); err != nil {
				if j != got && berr == nil {
					t.Fatalf("row %d: map path %v after %d rows, ReadPayloads read %d", i+j, err, j, got)
				}
				break
			}
			if berr != nil {
				t.Fatalf("row %d: map path read it, ReadPayloads %v", i+j, berr)
			}
			if j >= got {
				t.Fatalf("row %d: map path read it, ReadPayloads stopped after %d", i+j, got)
			}
			if g := blk.Row(j); !sameValues(g, row.Payload) {
				t.Fatalf("row %d: ReadPayloads %v, map %v", i+j, g, row.Payload)
			}
		}
		if err != nil || berr != nil {
			if (err == nil) != (berr == nil) && !(err == io.EOF && got < 3) {
				t.Fatalf("row %d: map path %v, ReadPayloads %v", i, err, berr)
			}
			return
		}
	}
}

func TestParseJSONFloats(t *testing.T) {
	got, err := parseJSONFloats(nil, " [0.5, -2e-3 ,4] ")
	if err != nil || len(got) != 3 || got[0] != 0.5 || got[1] != float32(-2e-3) || got[2] != 4 {
		t.Fatalf("%v %v", got, err)
	}
	for _, bad := range []string{"", "[]", "0.5, 1", "[0.5,]", "[a, 1]", "{\"x\": 1}"} {
		if _, err := parseJSONFloats(nil, bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

// aheadMatchRows reads a selection with vectors and payload as apply does
// — flat payload columns three rows ahead (ReadAhead), then Next for each
// of those rows — and row by row by the map path: the same vectors and
// payloads while both read, and an error on the read-ahead path only
// where the map path also fails within the rows read ahead.
func aheadMatchRows(t *testing.T, pf *File, sel Selection) {
	r, ra := readerPair(t, pf, sel)
	if r == nil {
		return
	}
	defer r.Close()
	defer ra.Close()
	if !ra.HasFlatPayload() {
		return
	}
	var b pipeline.PayloadBuilder
	for i := 0; i < 1000; {
		b.Reset(ra.PayloadKeys(), 3)
		m, aerr := ra.ReadAhead(3, &b)
		if aerr != nil {
			// The map path must fail too within the next three rows
			// (ReadAhead reads the flat columns of up to three rows), or
			// end there.
			for j := 0; j < 3; j++ {
				var row Row
				if err := r.Next(&row); err != nil {
					return
				}
			}
			if aerr != io.EOF {
				t.Fatalf("row %d: ReadAhead %v, the map path read three more rows", i, aerr)
			}
			t.Fatalf("row %d: ReadAhead found the end, the map path read three more rows", i)
		}
		var payloads []map[string]any
		for j := 0; j < m; j++ {
			var row, arow Row
			arow.PayloadTo = &b
			err, aerr := r.Next(&row), ra.Next(&arow)
			if (err == nil) != (aerr == nil) {
				t.Fatalf("row %d: map path %v, read-ahead path %v", i+j, err, aerr)
			}
			if err != nil {
				return
			}
			if !reflect.DeepEqual(row.Vectors, arow.Vectors) || row.ID != arow.ID {
				t.Fatalf("row %d: vectors or id differ", i+j)
			}
			payloads = append(payloads, row.Payload)
		}
		blk := b.Finish()
		for j, want := range payloads {
			if len(blk.Keys) > 0 && !sameValues(blk.Row(j), want) {
				t.Fatalf("row %d: read ahead %v, map %v", i+j, blk.Row(j), want)
			}
		}
		i += m
	}
}

// readerPair opens sel twice from row 0: by the map path and with
// PayloadColumns (the column path apply uses). Both nil when the file
// refuses the selection; a selection the map path takes must open the
// second way too.
func readerPair(t *testing.T, pf *File, sel Selection) (maps, cols *Reader) {
	maps, err := pf.NewReader(sel, 0)
	if err != nil {
		return nil, nil
	}
	csel := sel
	csel.PayloadColumns = true
	cols, err = pf.NewReader(csel, 0)
	if err != nil {
		t.Fatalf("second reader: %v", err)
	}
	return maps, cols
}
