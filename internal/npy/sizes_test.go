package npy

import (
	"bytes"
	"fmt"
	"math"
	"math/big"
	"math/rand/v2"
	"testing"
)

// Every size computed from a header is either exact or an error: over
// shapes drawn near the overflow edges for every dtype, a header that
// parses has RowBytes, DataSize and DataOffset+DataSize equal to the
// arbitrary-precision products, all within int64.
func TestHeaderSizesAreExactOrAnError(t *testing.T) {
	r := rand.New(rand.NewPCG(11, 12))
	edges := []int64{0, 1, 2, 3, 767, 768, 65536, 1 << 31, 1<<32 + 1, 1 << 40, 1 << 61, 1<<62 + 1, math.MaxInt64 / 8, math.MaxInt64 / 4, math.MaxInt64/2 + 1, math.MaxInt64}
	pick := func() int64 {
		switch r.IntN(3) {
		case 0:
			return edges[r.IntN(len(edges))]
		case 1:
			e := edges[r.IntN(len(edges))]
			return max(0, e+int64(r.IntN(5))-2)
		default:
			return r.Int64N(math.MaxInt64)
		}
	}
	parsed := 0
	for i := 0; i < 20000; i++ {
		descr := []string{"<f2", "<f4", "<f8", ">f4"}[r.IntN(4)]
		rows, width := pick(), pick()
		var b bytes.Buffer
		dict := fmt.Sprintf("{'descr': '%s', 'fortran_order': False, 'shape': (%d, %d), }", descr, rows, width)
		b.WriteString("\x93NUMPY\x01\x00")
		b.WriteByte(byte(len(dict) + 1))
		b.WriteByte(0)
		b.WriteString(dict + "\n")
		h, err := ReadHeader(&b)
		if err != nil {
			continue
		}
		parsed++
		item := big.NewInt(int64(h.ItemSize))
		rowBytes := new(big.Int).Mul(big.NewInt(width), item)
		data := new(big.Int).Mul(rowBytes, big.NewInt(rows))
		total := new(big.Int).Add(data, big.NewInt(h.DataOffset))
		if !total.IsInt64() || h.RowBytes() != rowBytes.Int64() || h.DataSize() != data.Int64() || h.DataOffset+h.DataSize() != total.Int64() || h.Width() != int(width) {
			t.Fatalf("shape (%d, %d) %s: row bytes %d, data %d, offset %d; exact %v, %v, %v", rows, width, descr, h.RowBytes(), h.DataSize(), h.DataOffset, rowBytes, data, total)
		}
	}
	if parsed < 1000 {
		t.Fatalf("only %d of 20000 headers parsed: the property was barely exercised", parsed)
	}
}
