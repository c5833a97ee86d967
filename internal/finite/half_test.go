package finite

import (
	"encoding/binary"
	"math"
	"testing"

	"github.com/x448/float16"
)

// FirstHalf finds exactly the NaN and ±Inf patterns, at every
// position of a word and in the tail, and the first of several.
func TestFirstHalf(t *testing.T) {
	for bits := 0; bits < 65536; bits++ {
		f := float16.Frombits(uint16(bits)).Float32()
		bad := math.IsNaN(float64(f)) || math.IsInf(float64(f), 0)
		for _, c := range []struct{ n, step int }{{1, 1}, {4, 3}, {9, 3}, {37, 5}} {
			n := c.n
			for pos := 0; pos < n; pos += c.step {
				h := make([]byte, 2*n)
				for i := 0; i < n; i++ {
					binary.LittleEndian.PutUint16(h[2*i:], 0x3C00) // 1.0
				}
				binary.LittleEndian.PutUint16(h[2*pos:], uint16(bits))
				want := -1
				if bad {
					want = pos
				}
				if got := FirstHalf(h); got != want {
					t.Fatalf("%#04x at %d of %d: got %d, want %d", bits, pos, n, got, want)
				}
			}
		}
	}
	for _, c := range [][3]int{{12, 6, 10}, {40, 17, 30}, {40, 3, 9}} {
		h := make([]byte, 2*c[0])
		binary.LittleEndian.PutUint16(h[2*c[2]:], 0x7C00)
		binary.LittleEndian.PutUint16(h[2*c[1]:], 0xFE00)
		if got := FirstHalf(h); got != c[1] {
			t.Fatalf("%v: got %d, want the first (%d)", c, got, c[1])
		}
	}
}

func BenchmarkFirstHalf(b *testing.B) {
	src := make([]byte, 2*256*768)
	for i := 0; i < len(src); i += 2 {
		binary.LittleEndian.PutUint16(src[i:], float16.Fromfloat32(float32(i%1000)/999-0.5).Bits())
	}
	b.SetBytes(int64(len(src)))
	for b.Loop() {
		if FirstHalf(src) >= 0 {
			b.Fatal("finite data reported")
		}
	}
}
