package half

import (
	"encoding/binary"
	"math"
	"testing"

	"github.com/x448/float16"
)

// Every one of the 65536 float16 bit patterns, through the fast path and
// the table, at every tail length and an odd source offset, equals
// x448/float16's conversion (NaN stays NaN).
func TestEveryBitPattern(t *testing.T) {
	src := make([]byte, 1+2*65536)
	for i := 0; i < 65536; i++ {
		binary.LittleEndian.PutUint16(src[1+2*i:], uint16(i))
	}
	check := func(name string, dst []float32, first int) {
		t.Helper()
		for i, got := range dst {
			want := float16.Frombits(uint16(first + i)).Float32()
			if math.IsNaN(float64(want)) {
				if !math.IsNaN(float64(got)) {
					t.Fatalf("%s: %#04x: got %v, want NaN", name, first+i, got)
				}
				continue
			}
			if math.Float32bits(got) != math.Float32bits(want) {
				t.Fatalf("%s: %#04x: got %v (%#08x), want %v (%#08x)", name, first+i, got, math.Float32bits(got), want, math.Float32bits(want))
			}
		}
	}
	dst := make([]float32, 65536)
	LittleEndian(dst, src[1:]) // unaligned source
	check("all", dst, 0)
	for _, n := range []int{0, 1, 7, 31, 32, 33, 63, 64, 100, 769} {
		d := make([]float32, n)
		LittleEndian(d, src[1+2*1000:])
		check("tail", d, 1000)
	}
	be := make([]byte, 2*65536)
	for i := 0; i < 65536; i++ {
		binary.BigEndian.PutUint16(be[2*i:], uint16(i))
	}
	BigEndian(dst, be)
	check("big-endian", dst, 0)
	if !useF16C {
		t.Log("no F16C on this machine: only the table path was checked")
	}
}

func TestShortSourcePanics(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Fatal("a source shorter than 2*len(dst) was accepted")
		}
	}()
	LittleEndian(make([]float32, 64), make([]byte, 127))
}

// benchBlock is one 256-row block of 768-d float16 rows and its float32
// destination.
func benchBlock(b *testing.B) (src []byte, dst []float32) {
	src = make([]byte, 2*256*768)
	for i := range src {
		src[i] = byte(i * 7)
	}
	b.SetBytes(int64(len(src)))
	return src, make([]float32, 256*768)
}

func BenchmarkLittleEndian(b *testing.B) {
	src, dst := benchBlock(b)
	for b.Loop() {
		LittleEndian(dst, src)
	}
}

func BenchmarkTable(b *testing.B) {
	src, dst := benchBlock(b)
	for b.Loop() {
		for i := range dst {
			dst[i] = table[uint16(src[2*i])|uint16(src[2*i+1])<<8]
		}
	}
}
