package pq

import (
	"bytes"
	"io"
	"testing"

	"github.com/snappipe/snappipe/internal/sample"
	"os"
	"path/filepath"
)

// BenchmarkLaionRows streams every column of a 20 000-row LAION-like
// metadata file into payload values; it reports rows/s.
func BenchmarkLaionRows(b *testing.B) {
	dir := b.TempDir()
	if err := sample.Generate(sample.Options{Rows: 20000, Dim: 4, Seed: 1, Out: dir}); err != nil {
		b.Fatal(err)
	}
	data, err := os.ReadFile(filepath.Join(dir, "metadata_0000.parquet"))
	if err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	rows := 0
	for i := 0; i < b.N; i++ {
		pf, err := Open(bytes.NewReader(data), int64(len(data)), "m")
		if err != nil {
			b.Fatal(err)
		}
		r, err := pf.NewReader(Selection{AllPayload: true}, 0)
		if err != nil {
			b.Fatal(err)
		}
		for {
			var row Row
			if err := r.Next(&row); err == io.EOF {
				break
			} else if err != nil {
				b.Fatal(err)
			}
			rows++
		}
		r.Close()
	}
	b.ReportMetric(float64(rows)/b.Elapsed().Seconds(), "rows/s")
}

// BenchmarkVectorColumns reads two 768-d list<float> columns (the Hugging
// Face layout) of 5 000 rows as vectors only; it reports rows/s.
func BenchmarkVectorColumns(b *testing.B) {
	dir := b.TempDir()
	if err := sample.Generate(sample.Options{Rows: 5000, Dim: 768, Seed: 1, Out: dir, Embedded: true}); err != nil {
		b.Fatal(err)
	}
	data, err := os.ReadFile(filepath.Join(dir, "data.parquet"))
	if err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	rows := 0
	for i := 0; i < b.N; i++ {
		pf, err := Open(bytes.NewReader(data), int64(len(data)), "d")
		if err != nil {
			b.Fatal(err)
		}
		r, err := pf.NewReader(Selection{Vectors: []string{"image", "text"}}, 0)
		if err != nil {
			b.Fatal(err)
		}
		var row Row
		for {
			if err := r.Next(&row); err == io.EOF {
				break
			} else if err != nil {
				b.Fatal(err)
			}
			rows++
		}
		r.Close()
	}
	b.ReportMetric(float64(rows)/b.Elapsed().Seconds(), "rows/s")
}
