package finite

import (
	"encoding/binary"
	"math"
	"math/rand/v2"
	"testing"
)

// Every special value at every position of the AVX2 range and the tail,
// several lengths, and the first of two.
func TestFirst(t *testing.T) {
	bad := []float32{float32(math.NaN()), float32(math.Inf(1)), float32(math.Inf(-1)),
		math.Float32frombits(0x7F800001), math.Float32frombits(0xFFC00000)}
	good := []float32{0, -0, 1, -1, math.MaxFloat32, -math.MaxFloat32, math.SmallestNonzeroFloat32, math.Float32frombits(0x7F7FFFFF)}
	for _, n := range []int{0, 1, 7, 15, 16, 17, 40, 100} {
		data := make([]float32, n)
		for i := range data {
			data[i] = good[i%len(good)]
		}
		if got := First(data); got != -1 {
			t.Fatalf("n=%d all finite: got %d", n, got)
		}
		for pos := 0; pos < n; pos++ {
			for _, b := range bad {
				d := append([]float32(nil), data...)
				d[pos] = b
				if got := First(d); got != pos {
					t.Fatalf("n=%d %v at %d: got %d", n, b, pos, got)
				}
				if pos+3 < n {
					d[pos+3] = b
					if got := First(d); got != pos {
						t.Fatalf("n=%d two bad from %d: got %d", n, pos, got)
					}
				}
			}
		}
	}
	if !useAVX2 {
		t.Log("no AVX2: only the portable path was checked")
	}
}

func BenchmarkFirst(b *testing.B) {
	data := make([]float32, 256*768)
	for i := range data {
		data[i] = float32(i%1000)/999 - 0.5
	}
	b.SetBytes(int64(4 * len(data)))
	for b.Loop() {
		if First(data) != -1 {
			b.Fatal("finite data reported")
		}
	}
}

// FirstLE finds what First finds in the same values as little-endian
// bytes, at any alignment, and so does its portable loop.
func TestFirstLE(t *testing.T) {
	r := rand.New(rand.NewPCG(21, 22))
	for k := 0; k < 300; k++ {
		v := make([]float32, r.IntN(100))
		for i := range v {
			v[i] = float32(r.NormFloat64())
		}
		if len(v) > 0 && r.IntN(2) == 0 {
			v[r.IntN(len(v))] = []float32{float32(math.NaN()), float32(math.Inf(1)), float32(math.Inf(-1))}[r.IntN(3)]
		}
		shift := r.IntN(4)
		b := make([]byte, shift, shift+4*len(v))
		for _, f := range v {
			b = binary.LittleEndian.AppendUint32(b, math.Float32bits(f))
		}
		want := First(v)
		if got := FirstLE(b[shift:]); got != want {
			t.Fatalf("case %d (offset %d): FirstLE %d, First %d", k, shift, got, want)
		}
		if got := firstLEPortable(b[shift:]); got != want {
			t.Fatalf("case %d: the portable loop %d, First %d", k, got, want)
		}
	}
}
