package pipeline

import (
	"encoding/binary"
	"math"
	"slices"
	"testing"
)

// Runs: rows added in parts (adjacent ones joined, others kept apart)
// read back by row, by value and whole.
func TestRuns(t *testing.T) {
	const w = 3
	var want []float32
	buf := make([]byte, 0, 4*w*10)
	row := func(k int) []byte {
		from := len(buf)
		for j := range w {
			f := float32(k*10 + j)
			want = append(want, f)
			buf = binary.LittleEndian.AppendUint32(buf, math.Float32bits(f))
		}
		return buf[from:]
	}
	r := &Runs{Width: w}
	r.Add(row(0))
	r.Add(row(1)) // follows row 0 in buf: joined
	other := binary.LittleEndian.AppendUint32(nil, math.Float32bits(20))
	other = binary.LittleEndian.AppendUint32(other, math.Float32bits(21))
	other = binary.LittleEndian.AppendUint32(other, math.Float32bits(22))
	want = append(want, 20, 21, 22)
	r.Add(other)
	r.Add(nil)
	if len(r.Parts) != 2 || r.Rows() != 3 {
		t.Fatalf("%d parts, %d rows; want 2 and 3", len(r.Parts), r.Rows())
	}
	if !slices.Equal(r.Floats(), want) {
		t.Fatalf("Floats %v, want %v", r.Floats(), want)
	}
	for k := range want {
		if got := r.Value(k); got != want[k] {
			t.Fatalf("Value(%d) = %v, want %v", k, got, want[k])
		}
	}
	nv := NamedVector{Name: "v", Width: w, Runs: r}
	if nv.Rows() != 3 || !slices.Equal(nv.Point(2), want[6:9]) {
		t.Fatalf("NamedVector: %d rows, point 2 %v", nv.Rows(), nv.Point(2))
	}
}
