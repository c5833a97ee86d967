// Package npy is the format plugin for NumPy .npy arrays (2-D, float16,
// float32 or float64, C or Fortran order): one vector per row.
package npy

import (
	"bytes"
	"fmt"
	"io"

	"github.com/snappipe/snappipe/formats/rowio"
	inpy "github.com/snappipe/snappipe/internal/npy"
	"github.com/snappipe/snappipe/pipeline"
	"github.com/snappipe/snappipe/pipeline/config"
)

// Format is the npy format.
type Format struct{}

func init() { pipeline.RegisterFormat(Format{}) }

func (Format) Name() string                   { return "npy" }
func (Format) Extensions() []string           { return []string{".npy"} }
func (Format) Table() bool                    { return false }
func (Format) Options() []config.FormatOption { return nil }
func (Format) Prefixable() bool               { return true }

// DeclaredSize is the header plus the data the header's shape declares.
func (Format) DeclaredSize(head []byte) int64 {
	h, err := inpy.ReadHeader(bytes.NewReader(head))
	if err != nil {
		return -1
	}
	return h.DataOffset + h.DataSize()
}

var _ pipeline.SizeDeclarer = Format{}

// Probe parses the header (the first few KiB).
func (Format) Probe(r io.ReaderAt, size, avail int64, src *config.Source, name string) (pipeline.FormatFile, error) {
	h, err := inpy.ReadHeader(io.NewSectionReader(r, 0, avail))
	if err != nil {
		return nil, err
	}
	return &File{H: h, R: r, Avail: avail}, nil
}

// File is a parsed .npy file whose first Avail bytes are readable in R.
type File struct {
	H     *inpy.Header
	R     io.ReaderAt
	Avail int64
}

func (f *File) Describe() string  { return f.H.String() }
func (f *File) Rows() int64       { return f.H.Rows() }
func (f *File) Columns() []string { return nil }

// PrefixBytes is the header plus n rows (the whole file in Fortran order,
// where each column spans the file).
func (f *File) PrefixBytes(n int64) int64 {
	if f.H.Fortran {
		return f.H.DataOffset + f.H.DataSize()
	}
	return f.H.DataOffset + min(max(n, 0), f.H.Rows())*f.H.RowBytes()
}

// Open checks the rows up to end are present (a row-limit prefix is
// enough) and reads rows by offset.
func (f *File) Open(_ pipeline.Selection, start, end int64) (pipeline.RowReader, error) {
	if f.Avail < f.PrefixBytes(end) {
		return nil, fmt.Errorf("file is truncated: header %s needs %d bytes, file has %d", f.H, f.H.DataOffset+f.H.DataSize(), f.Avail)
	}
	return rowio.NPY(inpy.NewReader(f.R, f.H), nil), nil
}
