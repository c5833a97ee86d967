package texmex

import (
	"bytes"
	"encoding/binary"
	"math"
	"testing"

	"github.com/snappipe/snappipe/pipeline"
)

// BenchmarkFvecsRead reads 256-record blocks of a 960-d (GIST-like)
// .fvecs file held in memory.
func BenchmarkFvecsRead(b *testing.B) {
	const rows, dim = 4096, 960
	var buf bytes.Buffer
	for i := 0; i < rows; i++ {
		binary.Write(&buf, binary.LittleEndian, int32(dim))
		for j := 0; j < dim; j++ {
			binary.Write(&buf, binary.LittleEndian, math.Float32bits(float32(i*j)))
		}
	}
	data := buf.Bytes()
	ff, err := pipeline.FormatByName("fvecs").Probe(bytes.NewReader(data), int64(len(data)), int64(len(data)), nil, "x.fvecs")
	if err != nil {
		b.Fatal(err)
	}
	rr, err := ff.Open(pipeline.Selection{}, 0, rows)
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(256 * dim * 4))
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		blk := &pipeline.RowBlock{Start: int64((i * 256) % (rows - 256)), N: 256}
		if err := rr.Read(blk); err != nil {
			b.Fatal(err)
		}
		blk.Done()
	}
}
