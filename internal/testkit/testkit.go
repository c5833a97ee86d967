// Package testkit holds helpers shared by snappipe's tests: reading source
// files back as the values apply must have written, and comparing vectors
// bit for bit.
package testkit

import (
	"io"
	"math"
	"os"
	"testing"

	"github.com/qdrant/go-client/qdrant"
	"github.com/snappipe/snappipe/internal/npy"
	"github.com/snappipe/snappipe/internal/pq"
)

// NpyRows reads a whole (test-sized) .npy file as float32 rows.
func NpyRows(t testing.TB, path string) [][]float32 {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	h, err := npy.ReadHeader(f)
	if err != nil {
		t.Fatal(err)
	}
	flat := make([]float32, h.Rows()*int64(h.Width()))
	if err := npy.NewReader(f, h).ReadRows(0, int(h.Rows()), flat); err != nil {
		t.Fatal(err)
	}
	out := make([][]float32, h.Rows())
	for i := range out {
		out[i] = flat[i*h.Width() : (i+1)*h.Width()]
	}
	return out
}

// ParquetRows reads every row of a Parquet file as payload values.
func ParquetRows(t testing.TB, path string) []map[string]*qdrant.Value {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	st, _ := f.Stat()
	pf, err := pq.Open(f, st.Size(), path)
	if err != nil {
		t.Fatal(err)
	}
	r, err := pf.NewReader(pq.Selection{AllPayload: true}, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	var out []map[string]*qdrant.Value
	for {
		var row pq.Row
		if err := r.Next(&row); err == io.EOF {
			return out
		} else if err != nil {
			t.Fatal(err)
		}
		out = append(out, row.Payload)
	}
}

// VectorOf returns a retrieved point's named dense vector (new or
// deprecated field).
func VectorOf(p *qdrant.RetrievedPoint, name string) []float32 {
	v := p.GetVectors().GetVectors().GetVectors()[name]
	if d := v.GetDense(); d != nil {
		return d.GetData()
	}
	return v.GetData()
}

// EqualF32 compares bit patterns.
func EqualF32(a, b []float32) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if math.Float32bits(a[i]) != math.Float32bits(b[i]) {
			return false
		}
	}
	return true
}
