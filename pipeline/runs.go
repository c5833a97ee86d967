package pipeline

import (
	"encoding/binary"
	"math"
	"unsafe"
)

// Runs is a float32 vector column held as runs of whole rows of
// little-endian bytes (the wire's byte order) that a block borrows instead
// of copying them into one buffer: a reader's decoded pages, each run as
// many consecutive rows as a page holds. Rows are in order: run k's rows
// follow run k-1's. The memory belongs to whoever made the block; the
// block's Release gives it back.
type Runs struct {
	Width int      // values per row
	Parts [][]byte // each a whole number of rows, 4*Width bytes each
}

// Add appends the rows in b (a whole number of them), joining b to the
// last run when it starts where that one ends.
func (r *Runs) Add(b []byte) {
	if len(b) == 0 {
		return
	}
	if n := len(r.Parts); n > 0 {
		last := r.Parts[n-1]
		if cap(last) > len(last) && unsafe.SliceData(last[len(last):cap(last)]) == unsafe.SliceData(b) {
			r.Parts[n-1] = last[:len(last)+len(b)]
			return
		}
	}
	r.Parts = append(r.Parts, b)
}

// Rows returns how many rows the runs hold.
func (r *Runs) Rows() int {
	if r.Width <= 0 {
		return 0
	}
	n := 0
	for _, p := range r.Parts {
		n += len(p)
	}
	return n / (4 * r.Width)
}

// Row returns row i's bytes (4*Width of them).
func (r *Runs) Row(i int) []byte {
	rb := 4 * r.Width
	at := i * rb
	for _, p := range r.Parts {
		if at < len(p) {
			return p[at : at+rb : at+rb]
		}
		at -= len(p)
	}
	panic("pipeline: Runs.Row out of range")
}

// Value returns the k-th value of the column (row k/Width).
func (r *Runs) Value(k int) float32 {
	w := max(r.Width, 1)
	return math.Float32frombits(binary.LittleEndian.Uint32(r.Row(k / w)[4*(k%w):]))
}

// Floats returns the rows' values as one float32 slice, a copy (for
// tests and diagnostics; sinks read the runs as they are).
func (r *Runs) Floats() []float32 {
	n := 0
	for _, p := range r.Parts {
		n += len(p) / 4
	}
	out := make([]float32, 0, n)
	for _, p := range r.Parts {
		out = appendLE(out, p)
	}
	return out
}

// appendLE appends the little-endian float32 values in b to dst.
func appendLE(dst []float32, b []byte) []float32 {
	for j := 0; j+4 <= len(b); j += 4 {
		dst = append(dst, math.Float32frombits(binary.LittleEndian.Uint32(b[j:])))
	}
	return dst
}
