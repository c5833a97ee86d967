package pq

import (
	"bytes"
	"io"
	"math"
	"reflect"
	"testing"

	"github.com/parquet-go/parquet-go"
)

type inner struct {
	A *int64 `parquet:"a,optional"`
	B string `parquet:"b"`
}

type nestedRow struct {
	Key   string   `parquet:"key"`
	Tags  []string `parquet:"tags,list,optional"`
	Nums  []int64  `parquet:"nums,list"`
	Inner *inner   `parquet:"inner,optional"`
	Score *float64 `parquet:"score,optional"`
}

func i64(v int64) *int64     { return &v }
func f64(v float64) *float64 { return &v }

// Nulls at every level of nested columns become nil, empty lists empty
// lists, and values keep their types: checked value by value against what
// was written (parquet-go's writer, several small row groups and pages).
func TestNestedNullsAndEmpties(t *testing.T) {
	rows := []nestedRow{
		{Key: "0", Tags: []string{"x", "y"}, Nums: []int64{1, 2, 3}, Inner: &inner{A: i64(7), B: "q"}, Score: f64(0.5)},
		{Key: "1", Tags: nil, Nums: []int64{}, Inner: nil, Score: nil},
		{Key: "2", Tags: []string{}, Nums: []int64{-4}, Inner: &inner{A: nil, B: ""}, Score: f64(-1)},
		{Key: "3", Tags: []string{""}, Nums: nil, Inner: &inner{A: i64(0), B: "é"}, Score: f64(0)},
	}
	var buf bytes.Buffer
	w := parquet.NewGenericWriter[nestedRow](&buf, parquet.MaxRowsPerRowGroup(3), parquet.PageBufferSize(64))
	if _, err := w.Write(rows); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	want := []map[string]any{
		{"key": "0", "tags": []any{"x", "y"}, "nums": []any{int64(1), int64(2), int64(3)}, "inner": map[string]any{"a": int64(7), "b": "q"}, "score": 0.5},
		{"key": "1", "tags": nil, "nums": []any{}, "inner": nil, "score": nil},
		{"key": "2", "tags": []any{}, "nums": []any{int64(-4)}, "inner": map[string]any{"a": nil, "b": ""}, "score": -1.0},
		{"key": "3", "tags": []any{""}, "nums": []any{}, "inner": map[string]any{"a": int64(0), "b": "é"}, "score": 0.0},
	}
	pf, err := Open(bytes.NewReader(buf.Bytes()), int64(buf.Len()), "nested")
	if err != nil {
		t.Fatal(err)
	}
	for start := int64(0); start < 4; start++ { // every start row, across row groups
		r, err := pf.NewReader(Selection{AllPayload: true, ID: "key"}, start)
		if err != nil {
			t.Fatal(err)
		}
		for i := start; i < 4; i++ {
			var row Row
			if err := r.Next(&row); err != nil {
				t.Fatalf("start %d row %d: %v", start, i, err)
			}
			if !reflect.DeepEqual(row.Payload, want[i]) {
				t.Fatalf("start %d row %d:\n got %#v\nwant %#v", start, i, row.Payload, want[i])
			}
			if row.ID.Num != uint64(i) {
				t.Fatalf("row %d id %v", i, row.ID)
			}
		}
		var extra Row
		if err := r.Next(&extra); err != io.EOF {
			t.Fatalf("after the last row: %v", err)
		}
		r.Close()
	}
}

type uidRow struct {
	ID  uint64 `parquet:"id"`
	Val uint64 `parquet:"val"`
}

// Unsigned 64-bit ids at and beyond 2^63 are ids as given (the README
// promises unsigned integers); a payload value beyond int64 stays exact
// until the sink sends it (as a double, Qdrant's integers being int64).
func TestUint64IDsBeyondInt64(t *testing.T) {
	rows := []uidRow{{ID: 1<<63 - 1, Val: 5}, {ID: 1 << 63, Val: 1 << 63}, {ID: math.MaxUint64, Val: 0}}
	var buf bytes.Buffer
	w := parquet.NewGenericWriter[uidRow](&buf)
	w.Write(rows)
	w.Close()
	pf, err := Open(bytes.NewReader(buf.Bytes()), int64(buf.Len()), "u")
	if err != nil {
		t.Fatal(err)
	}
	r, err := pf.NewReader(Selection{AllPayload: true, ID: "id"}, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	for i, want := range rows {
		var row Row
		if err := r.Next(&row); err != nil {
			t.Fatalf("row %d: %v", i, err)
		}
		if row.ID.Num != want.ID || row.ID.UUID != "" {
			t.Fatalf("row %d: id %+v, want %d", i, row.ID, want.ID)
		}
		var got uint64
		switch v := row.Payload["val"].(type) {
		case int64:
			got = uint64(v)
		case uint64:
			got = v
		default:
			t.Fatalf("row %d: val %T", i, v)
		}
		if got != want.Val {
			t.Fatalf("row %d: val %d, want %d", i, got, want.Val)
		}
	}
}
