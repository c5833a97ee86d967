package rowio

import (
	"runtime"
	"testing"

	"github.com/snappipe/snappipe/pipeline"
)

// Blocks of many files (one Array each, as a shard set opens them) reuse
// the same buffers once released: the bytes allocated do not grow with
// the number of files. (Each file had its own pool before, and a finished
// file's buffers stayed until the collector cleared them.)
func TestBuffersSharedAcrossFiles(t *testing.T) {
	const files, blocks, rows, width = 60, 4, 64, 256
	read := func(half bool) uint64 {
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		for f := 0; f < files; f++ {
			a := &Array{Width: width, ReadRows: func(start int64, n int, dst []float32) error {
				for i := range dst {
					dst[i] = float32(start)
				}
				return nil
			}}
			if half {
				a.ReadHalf = func(start int64, n int, dst []byte) error {
					for i := range dst {
						dst[i] = byte(start)
					}
					return nil
				}
			}
			for b := 0; b < blocks; b++ {
				blk := &pipeline.RowBlock{Start: int64(b * rows), N: rows}
				if err := a.Read(blk); err != nil {
					t.Fatal(err)
				}
				if half && blk.Half[""][5] != byte(b*rows) || !half && blk.Vectors[""][5] != float32(b*rows) {
					t.Fatalf("block %d: wrong contents", b)
				}
				blk.Release()
			}
		}
		runtime.ReadMemStats(&after)
		return after.TotalAlloc - before.TotalAlloc
	}
	for _, half := range []bool{false, true} {
		buf := uint64(rows * width * 4)
		if half {
			buf /= 2
		}
		// Without sharing, every file allocates at least one buffer.
		if got := read(half); got > files*buf/3 {
			t.Errorf("half=%v: %d files allocated %d bytes, %d buffers' worth", half, files, got, got/buf)
		}
	}
}
