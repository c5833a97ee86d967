package npy

import (
	"bytes"
	"math/rand/v2"
	"testing"
)

// BenchmarkReadRowsF16 decodes 256-row blocks of a 768-d float16 array
// (LAION's layout); SetBytes makes go test print the rate in MB/s.
func BenchmarkReadRowsF16(b *testing.B) {
	const rows, width, block = 4096, 768, 256
	var buf bytes.Buffer
	WriteHeader(&buf, "<f2", rows, width)
	data := make([]byte, rows*width*2)
	r := rand.New(rand.NewPCG(1, 2))
	for i := range data {
		data[i] = byte(r.Uint32() & 0x3b) // finite halves
	}
	buf.Write(data)
	ra := bytes.NewReader(buf.Bytes())
	h, err := ReadHeader(bytes.NewReader(buf.Bytes()))
	if err != nil {
		b.Fatal(err)
	}
	rd := NewReader(ra, h)
	dst := make([]float32, block*width)
	b.SetBytes(block * width * 2)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if err := rd.ReadRows(int64((i*block)%(rows-block)), block, dst); err != nil {
			b.Fatal(err)
		}
	}
}
