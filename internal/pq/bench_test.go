package pq

import (
	"bytes"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/snappipe/snappipe/internal/sample"
	"github.com/snappipe/snappipe/pipeline"
)

// benchRows generates o with gensample's generator, then reads the file
// named file with sel b.N times, each row through next, and reports rows/s.
func benchRows(b *testing.B, o sample.Options, file string, sel Selection, next func(r *Reader, row *Row) error) {
	o.Out = b.TempDir()
	if err := sample.Generate(o); err != nil {
		b.Fatal(err)
	}
	data, err := os.ReadFile(filepath.Join(o.Out, file))
	if err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	rows := 0
	for i := 0; i < b.N; i++ {
		pf, err := Open(bytes.NewReader(data), int64(len(data)), file)
		if err != nil {
			b.Fatal(err)
		}
		r, err := pf.NewReader(sel, 0)
		if err != nil {
			b.Fatal(err)
		}
		var row Row
		for {
			if err := next(r, &row); err == io.EOF {
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

// BenchmarkLaionRows streams every column of a 20 000-row LAION-like
// metadata file into payload blocks of 256 rows, as apply reads it.
func BenchmarkLaionRows(b *testing.B) {
	var pb pipeline.PayloadBuilder
	n := 0
	benchRows(b, sample.Options{Rows: 20000, Dim: 4, Seed: 1}, "metadata_0000.parquet", Selection{AllPayload: true, PayloadColumns: true},
		func(r *Reader, row *Row) error {
			if n%256 == 0 {
				pb.Finish()
				pb.Reset(r.PayloadKeys(), 256)
			}
			n++
			row.PayloadTo = &pb
			return r.Next(row)
		})
}

// BenchmarkVectorColumns reads two 768-d list<float> columns (the Hugging
// Face layout) of 5 000 rows as vectors only.
func BenchmarkVectorColumns(b *testing.B) {
	benchRows(b, sample.Options{Rows: 5000, Dim: 768, Seed: 1, Embedded: true}, "data.parquet", Selection{Vectors: []string{"image", "text"}},
		func(r *Reader, row *Row) error { return r.Next(row) })
}
