package finite

import (
	"math"
	"math/rand/v2"
	"testing"
)

// allFinite (the portable path) agrees with a plain check for NaN and ±Inf at every position
// and on every length around the 8-value step.
func TestAllFinite(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for n := 0; n < 40; n++ {
		data := make([]float32, n)
		for i := range data {
			data[i] = float32(r.NormFloat64() * 1e30)
		}
		if !allFinite(data) {
			t.Fatalf("n=%d: finite data refused", n)
		}
		for i := 0; i < n; i++ {
			for _, bad := range []float32{float32(math.NaN()), float32(math.Inf(1)), float32(math.Inf(-1))} {
				old := data[i]
				data[i] = bad
				if allFinite(data) {
					t.Fatalf("n=%d: %v at %d not seen", n, bad, i)
				}
				data[i] = old
			}
		}
	}
	big := []float32{math.MaxFloat32, math.MaxFloat32, -math.MaxFloat32}
	if !allFinite(big) {
		t.Fatal("large finite values refused (v-v is 0, never overflows)")
	}
}

func BenchmarkAllFinite(b *testing.B) {
	data := make([]float32, 256*1536)
	for i := range data {
		data[i] = float32(i%97) / 7
	}
	b.SetBytes(int64(4 * len(data)))
	for i := 0; i < b.N; i++ {
		if !allFinite(data) {
			b.Fatal("refused")
		}
	}
}
