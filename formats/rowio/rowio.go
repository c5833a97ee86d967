// Package rowio holds what array format plugins share: a RowReader over
// fixed-width float32 rows that reuses its block buffers once a block is
// released, and a forward-only io.ReaderAt over a stream.
package rowio

import (
	"fmt"
	"io"

	"github.com/snappipe/snappipe/internal/bufpool"
	inpy "github.com/snappipe/snappipe/internal/npy"
	"github.com/snappipe/snappipe/pipeline"
)

// Array reads fixed-width rows through ReadRows.
type Array struct {
	Width int
	// ReadRows decodes rows [start, start+n) into dst (n*Width values).
	ReadRows func(start int64, n int, dst []float32) error
	// ReadHalf, if set, copies rows [start, start+n) of little-endian
	// float16 into dst (2*n*Width bytes) unconverted: Read then keeps the
	// block as float16 (RowBlock.Half), half the memory, and the sink
	// converts while it encodes, instead of writing float32 here that it
	// would read and copy again.
	ReadHalf func(start int64, n int, dst []byte) error
	// Closer, if set, is closed by Close.
	Closer io.Closer
}

// NPY is the Array of a NumPy array's rows: little-endian float16 in C
// order is handed on unconverted (ReadHalf), anything else as float32.
func NPY(rd *inpy.Reader, closer io.Closer) *Array {
	a := &Array{Width: rd.Header().Width(), ReadRows: rd.ReadRows, Closer: closer}
	if rd.Header().HalfLE() {
		a.ReadHalf = rd.ReadHalfRows
	}
	return a
}

// Widths is {"": Width}: an array holds one vector per row.
func (a *Array) Widths() map[string]int { return map[string]int{"": a.Width} }

// Read fills blk's vectors. The buffer returns to a pool shared by every
// file when the block is released, so a long file, or thousands of shards,
// allocate a bounded set of buffers.
func (a *Array) Read(blk *pipeline.RowBlock) error {
	if a.ReadHalf != nil {
		h, err := read(blk, bufpool.Bytes, 2*blk.N*a.Width, a.ReadHalf)
		if err == nil {
			blk.Half = map[string][]byte{"": h}
		}
		return err
	}
	f, err := read(blk, bufpool.Floats, blk.N*a.Width, a.ReadRows)
	if err == nil {
		blk.Vectors = map[string][]float32{"": f}
	}
	return err
}

// read fills a buffer of n values from l with blk's rows; the block hands
// it back when released.
func read[T any](blk *pipeline.RowBlock, l bufpool.List[T], n int, rows func(start int64, n int, dst []T) error) ([]T, error) {
	bp := l.Get(n)
	if err := rows(blk.Start, blk.N, *bp); err != nil {
		l.Put(bp)
		return nil, err
	}
	blk.Release = func() { l.Put(bp) }
	return *bp, nil
}

// Close closes Closer.
func (a *Array) Close() error {
	if a.Closer != nil {
		return a.Closer.Close()
	}
	return nil
}

// Forward is an io.ReaderAt over a stream that is read once, in order:
// ReadAt may skip forward (the skipped bytes are read and dropped) but
// never go back. Deflated archive members are read through it.
type Forward struct {
	R   io.Reader
	pos int64
}

// ReadAt reads len(p) bytes at off, which must not be before the end of
// the previous read.
func (f *Forward) ReadAt(p []byte, off int64) (int, error) {
	if off < f.pos {
		return 0, fmt.Errorf("forward-only reader: offset %d is behind %d", off, f.pos)
	}
	if off > f.pos {
		n, err := io.CopyN(io.Discard, f.R, off-f.pos)
		f.pos += n
		if err != nil {
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return 0, err
		}
	}
	n, err := io.ReadFull(f.R, p)
	f.pos += int64(n)
	if err == io.ErrUnexpectedEOF && n == 0 {
		err = io.EOF
	}
	return n, err
}
