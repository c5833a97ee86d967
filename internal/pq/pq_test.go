package pq

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"strings"
	"testing"

	"github.com/parquet-go/parquet-go"
	"github.com/snappipe/snappipe/internal/fixtures"
)

func fixture(t *testing.T, rel string) string {
	t.Helper()
	return fixtures.Path(t, rel)
}

func openFile(t *testing.T, p string) *File {
	t.Helper()
	f, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	st, _ := f.Stat()
	pf, err := Open(f, st.Size(), p)
	if err != nil {
		t.Fatal(err)
	}
	return pf
}

// jsonOf renders a payload value as JSON decoding would (numbers as
// float64) for comparison with JSON.
func jsonOf(v any) any {
	if i, ok := v.(int64); ok {
		return float64(i)
	}
	return v
}

func TestLaionLikeMetadata(t *testing.T) {
	p := fixture(t, "laionlike/metadata_laionlike_1000.parquet")
	var expect struct {
		Rows          int            `json:"rows"`
		Nulls         map[string]int `json:"nulls"`
		Empty         map[string]int `json:"empty_strings"`
		SimilaritySum float64        `json:"similarity_sum"`
		First         map[string]any `json:"first"`
		LastRow       map[string]any `json:"last"`
	}
	b, err := os.ReadFile(p + ".expect.json")
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &expect); err != nil {
		t.Fatal(err)
	}
	pf := openFile(t, p)
	if pf.NumRows() != int64(expect.Rows) {
		t.Fatalf("rows %d", pf.NumRows())
	}
	r, err := pf.NewReader(Selection{AllPayload: true, ID: "key"}, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	nulls := map[string]int{}
	empty := 0
	sum := 0.0
	var rows []Row
	for {
		var row Row
		if err := r.Next(&row); err == io.EOF {
			break
		} else if err != nil {
			t.Fatal(err)
		}
		for k, v := range row.Payload {
			if v == nil {
				nulls[k]++
			}
		}
		if c, ok := row.Payload["caption"].(string); ok && c == "" {
			empty++
		}
		sim, _ := row.Payload["similarity"].(float64)
		sum += sim
		rows = append(rows, row)
	}
	if len(rows) != expect.Rows {
		t.Fatalf("read %d rows", len(rows))
	}
	for k, n := range expect.Nulls {
		if nulls[k] != n {
			t.Errorf("nulls[%s] = %d, want %d", k, nulls[k], n)
		}
	}
	if empty != expect.Empty["caption"] {
		t.Errorf("empty captions %d, want %d", empty, expect.Empty["caption"])
	}
	if math.Abs(sum-expect.SimilaritySum) > 1e-9 {
		t.Errorf("similarity sum %v, want %v", sum, expect.SimilaritySum)
	}
	for _, c := range []struct {
		row  Row
		want map[string]any
	}{{rows[0], expect.First}, {rows[len(rows)-1], expect.LastRow}} {
		if len(c.row.Payload) != len(c.want) {
			t.Errorf("payload has %d keys, want %d", len(c.row.Payload), len(c.want))
		}
		for k, w := range c.want {
			if got := jsonOf(c.row.Payload[k]); got != w {
				t.Errorf("%s = %#v, want %#v", k, got, w)
			}
		}
	}
	if rows[0].ID.Num != 0 || rows[len(rows)-1].ID.Num != 1110 {
		t.Errorf("ids %v %v", rows[0].ID, rows[len(rows)-1].ID)
	}
	// Start in the middle (crossing row groups) and get the same rows.
	r2, err := pf.NewReader(Selection{Payload: []string{"key", "similarity"}}, 777)
	if err != nil {
		t.Fatal(err)
	}
	defer r2.Close()
	for i := 777; i < 1000; i++ {
		var row Row
		if err := r2.Next(&row); err != nil {
			t.Fatal(i, err)
		}
		if row.Payload["key"] != rows[i].Payload["key"] || len(row.Payload) != 2 {
			t.Fatalf("row %d after seek: %v", i, row.Payload)
		}
	}
}

func TestRealClipRetrievalMetadata(t *testing.T) {
	pf := openFile(t, fixture(t, "real/metadata_0.parquet"))
	r, err := pf.NewReader(Selection{AllPayload: true}, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	n := 0
	for {
		var row Row
		if err := r.Next(&row); err == io.EOF {
			break
		} else if err != nil {
			t.Fatal(err)
		}
		if row.Payload["image_path"] == nil || row.Payload["image_path"] == "" {
			t.Fatalf("row %d: %v", n, row.Payload)
		}
		n++
	}
	if n != 9 {
		t.Fatalf("rows %d", n)
	}
}

// TestImg2datasetFixture reads a real img2dataset output (pandas-written:
// URL, TEXT and the pandas index column) and checks every row against
// parquet-go's own generic reader, not through this package's conversion.
func TestImg2datasetFixture(t *testing.T) {
	p := fixture(t, "real/img2dataset/test_1000.parquet")
	pf := openFile(t, p)
	if got := strings.Join(pf.Columns(), ","); got != "URL,TEXT,__index_level_0__" {
		t.Fatalf("columns: %s", got)
	}
	type rec struct {
		URL   *string `parquet:"URL,optional"`
		TEXT  *string `parquet:"TEXT,optional"`
		Index *int64  `parquet:"__index_level_0__,optional"`
	}
	f, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	gr := parquet.NewGenericReader[rec](f)
	want := make([]rec, gr.NumRows())
	if n, err := gr.Read(want); n != len(want) || (err != nil && err != io.EOF) {
		t.Fatalf("generic reader: %d rows, %v", n, err)
	}
	if len(want) != 1000 {
		t.Fatalf("%d rows, want 1000", len(want))
	}
	r, err := pf.NewReader(Selection{AllPayload: true}, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	str := func(s *string) any {
		if s == nil {
			return nil
		}
		return *s
	}
	for i, w := range want {
		var row Row
		if err := r.Next(&row); err != nil {
			t.Fatalf("row %d: %v", i, err)
		}
		if w.Index == nil {
			t.Fatalf("row %d: null pandas index", i)
		}
		exp := map[string]any{"URL": str(w.URL), "TEXT": str(w.TEXT), "__index_level_0__": *w.Index}
		if len(row.Payload) != len(exp) {
			t.Fatalf("row %d: payload %v", i, row.Payload)
		}
		for k, v := range exp {
			if row.Payload[k] != v {
				t.Fatalf("row %d: %s = %v, want %v", i, k, row.Payload[k], v)
			}
		}
	}
	var extra Row
	if err := r.Next(&extra); err != io.EOF {
		t.Fatalf("after the last row: %v", err)
	}
}

type vecRow struct {
	Key string    `parquet:"key"`
	Vec []float32 `parquet:"vec,list,optional"`
}

func TestVectorColumnFastPathMatchesGeneric(t *testing.T) {
	var buf bytes.Buffer
	w := parquet.NewGenericWriter[vecRow](&buf, parquet.MaxRowsPerRowGroup(7), parquet.PageBufferSize(256))
	var rows []vecRow
	for i := 0; i < 50; i++ {
		v := make([]float32, 5)
		for j := range v {
			v[j] = float32(i*10 + j)
		}
		rows = append(rows, vecRow{Key: fmt.Sprint(i), Vec: v})
	}
	rows = append(rows, vecRow{Key: "null"}) // a null list ends the file
	w.Write(rows)
	w.Close()
	pf, err := Open(bytes.NewReader(buf.Bytes()), int64(buf.Len()), "v")
	if err != nil {
		t.Fatal(err)
	}
	fast, errFast := readVecs(t, pf, Selection{Vectors: []string{"vec"}}, 3)
	slow, errSlow := readVecs(t, pf, Selection{Vectors: []string{"vec"}, AllPayload: true}, 3)
	if len(fast) != 47 || len(slow) != 47 {
		t.Fatalf("rows %d %d", len(fast), len(slow))
	}
	for i := range fast {
		if fmt.Sprint(fast[i]) != fmt.Sprint(slow[i]) || fast[i][0] != float32((i+3)*10) {
			t.Fatalf("row %d: %v vs %v", i+3, fast[i], slow[i])
		}
	}
	for _, err := range []error{errFast, errSlow} {
		if err == nil || !strings.Contains(err.Error(), `vector column "vec" is null or empty`) {
			t.Fatalf("null list: %v", err)
		}
	}
}
