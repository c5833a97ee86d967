// Package texmex holds the format plugins for the TEXMEX vector files of
// SIFT1M, GIST1M and BIGANN: each record is a little-endian int32
// dimension followed by that many float32 values (fvecs) or uint8 values
// (bvecs, widened to float32). Every record has the dimension of the
// first; a file whose size is not a whole number of records is refused
// when it is probed (before anything is sent), and a record whose dimension
// differs fails with its index before its batch is sent.
package texmex

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"unsafe"

	"github.com/snappipe/snappipe/formats/rowio"
	"github.com/snappipe/snappipe/pipeline"
	"github.com/snappipe/snappipe/pipeline/config"
)

// MaxDim is the largest dimension accepted (Qdrant's vector size limit).
const MaxDim = 65536

// Format is fvecs (float32) or bvecs (uint8).
type Format struct {
	name string
	elem int // bytes per value
}

// Fvecs and Bvecs are the two formats.
var (
	Fvecs = Format{name: "fvecs", elem: 4}
	Bvecs = Format{name: "bvecs", elem: 1}
)

func init() {
	pipeline.RegisterFormat(Fvecs)
	pipeline.RegisterFormat(Bvecs)
}

func (f Format) Name() string                 { return f.name }
func (f Format) Extensions() []string         { return []string{"." + f.name} }
func (Format) Table() bool                    { return false }
func (Format) Options() []config.FormatOption { return nil }
func (Format) Prefixable() bool               { return true }

// Probe reads the first record's dimension and checks the file size.
func (f Format) Probe(r io.ReaderAt, size, avail int64, _ *config.Source, _ string) (pipeline.FormatFile, error) {
	if size == 0 {
		return &File{f: f, r: r, avail: avail}, nil // no records
	}
	var b [4]byte
	if avail < 4 {
		return nil, fmt.Errorf("%s: file is truncated: %d bytes, a record needs at least 4", f.name, avail)
	}
	if _, err := r.ReadAt(b[:], 0); err != nil {
		return nil, fmt.Errorf("%s: reading record 0: %w", f.name, err)
	}
	d := int32(binary.LittleEndian.Uint32(b[:]))
	if d < 1 || d > MaxDim {
		return nil, fmt.Errorf("%s: record 0 has dimension %d (expected 1..%d): not a %s file?", f.name, d, MaxDim, f.name)
	}
	rec := 4 + int64(d)*int64(f.elem)
	if size%rec != 0 {
		return nil, fmt.Errorf("%s: size %d is not a whole number of %d-byte records (dimension %d): record %d is cut short after %d bytes",
			f.name, size, rec, d, size/rec, size%rec)
	}
	return &File{f: f, r: r, avail: avail, dim: int(d), rec: rec, rows: size / rec}, nil
}

// File is a probed fvecs/bvecs file.
type File struct {
	f     Format
	r     io.ReaderAt
	avail int64
	dim   int
	rec   int64
	rows  int64
}

func (t *File) Describe() string {
	return fmt.Sprintf("%s, %d records of dimension %d", t.f.name, t.rows, t.dim)
}
func (t *File) Rows() int64       { return t.rows }
func (t *File) Columns() []string { return nil }

// PrefixBytes is n whole records.
func (t *File) PrefixBytes(n int64) int64 { return min(max(n, 0), t.rows) * t.rec }

// Open checks the records up to end are present and reads them by offset.
func (t *File) Open(_ pipeline.Selection, start, end int64) (pipeline.RowReader, error) {
	if need := t.PrefixBytes(end); t.avail < need {
		return nil, fmt.Errorf("%s: file is truncated: %d records need %d bytes, %d present", t.f.name, end, need, t.avail)
	}
	var buf []byte
	read := func(start int64, n int, dst []float32) error {
		size := int(int64(n) * t.rec)
		if cap(buf) < size {
			buf = make([]byte, size)
		}
		b := buf[:size]
		if _, err := t.r.ReadAt(b, start*t.rec); err != nil {
			if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
				return fmt.Errorf("%s: file is truncated in records [%d, %d)", t.f.name, start, start+int64(n))
			}
			return err
		}
		for i := 0; i < n; i++ {
			r := b[int64(i)*t.rec : int64(i+1)*t.rec]
			if d := int32(binary.LittleEndian.Uint32(r)); int(d) != t.dim {
				return fmt.Errorf("%s: record %d has dimension %d, record 0 has %d", t.f.name, start+int64(i), d, t.dim)
			}
			out := dst[i*t.dim : (i+1)*t.dim]
			v := r[4:]
			switch {
			case t.f.elem == 4 && hostLE:
				// Little-endian float32s are this host's: one copy. (v is
				// 4-byte aligned: records are 4 + 4·dim bytes into a
				// buffer from make.)
				copy(out, unsafe.Slice((*float32)(unsafe.Pointer(unsafe.SliceData(v))), t.dim))
			case t.f.elem == 4:
				for j := range out {
					out[j] = math.Float32frombits(binary.LittleEndian.Uint32(v[4*j:]))
				}
			default:
				for j := range out {
					out[j] = float32(v[j])
				}
			}
		}
		return nil
	}
	return &rowio.Array{Width: t.dim, ReadRows: read}, nil
}

// hostLE is whether this machine stores a float32 little-endian, as
// .fvecs files do.
var hostLE = binary.NativeEndian.Uint16([]byte{1, 0}) == 1
