// Package npz is the format plugin for what numpy.savez and
// numpy.savez_compressed write: a zip (zip64 when large) of .npy members,
// stored or deflated. Option array picks the member. A stored member is
// read by offset like an .npy file; a deflated one is streamed through an
// inflater from its start (rows before the first needed are inflated and
// dropped), never loaded whole. The central directory is at the end of the
// archive, so under a row limit a url: source is read in place by HTTP
// Range rather than from a prefix.
package npz

import (
	"archive/zip"
	"bufio"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/snappipe/snappipe/formats/rowio"
	inpy "github.com/snappipe/snappipe/internal/npy"
	"github.com/snappipe/snappipe/pipeline"
	"github.com/snappipe/snappipe/pipeline/config"
)

// Format is the npz format.
type Format struct{}

func init() { pipeline.RegisterFormat(Format{}) }

func (Format) Name() string         { return "npz" }
func (Format) Extensions() []string { return []string{".npz"} }
func (Format) Table() bool          { return false }
func (Format) Options() []config.FormatOption {
	return []config.FormatOption{{Key: "array", Doc: "The array to read: its member name without .npy (np.savez names them by keyword, or arr_0, arr_1...). Required when the archive holds more than one array."}}
}
func (Format) Prefixable() bool { return false }

// maxHeader bounds the .npy header read from a member (numpy writes at most
// a few hundred bytes; version 2/3 headers may hold up to 4 GiB, which no
// real array needs).
const maxHeader = 1 << 20

// Members lists the archive's arrays (for init: one source each).
func (Format) Members(r io.ReaderAt, size int64) (string, []string, error) {
	zr, err := zip.NewReader(r, size)
	if err != nil {
		return "", nil, fmt.Errorf("not a readable npz (zip) archive: %w", err)
	}
	var members []string
	for _, f := range zr.File {
		if n, ok := strings.CutSuffix(f.Name, ".npy"); ok {
			members = append(members, n)
		}
	}
	slices.Sort(members)
	return "array", members, nil
}

var _ pipeline.MemberLister = Format{}

// Probe reads the central directory and the chosen member's .npy header.
func (Format) Probe(r io.ReaderAt, size, avail int64, src *config.Source, name string) (pipeline.FormatFile, error) {
	if avail < size {
		return nil, fmt.Errorf("npz needs the whole archive (its directory is at the end); %d of %d bytes present", avail, size)
	}
	zr, err := zip.NewReader(r, size)
	if err != nil {
		return nil, fmt.Errorf("not a readable npz (zip) archive: %w", err)
	}
	var members []string
	byName := map[string]*zip.File{}
	for _, f := range zr.File {
		if n, ok := strings.CutSuffix(f.Name, ".npy"); ok {
			members = append(members, n)
			byName[n] = f
		}
	}
	slices.Sort(members)
	if len(members) == 0 {
		return nil, errors.New("the npz archive holds no .npy arrays")
	}
	want := src.Option("array")
	switch {
	case want == "" && len(members) > 1:
		return nil, fmt.Errorf("the archive holds %d arrays (%s): choose one with array: NAME", len(members), strings.Join(members, ", "))
	case want == "":
		want = members[0]
	case byName[want] == nil:
		return nil, fmt.Errorf("array %q is not in the archive (arrays: %s)", want, strings.Join(members, ", "))
	}
	zf := byName[want]
	switch zf.Method {
	case zip.Store, zip.Deflate:
	default:
		return nil, fmt.Errorf("array %q: zip method %d is not supported (numpy writes stored or deflated members)", want, zf.Method)
	}
	rc, err := zf.Open()
	if err != nil {
		return nil, fmt.Errorf("array %q: %w", want, err)
	}
	h, err := inpy.ReadHeader(bufio.NewReader(io.LimitReader(rc, maxHeader)))
	rc.Close()
	if err != nil {
		return nil, fmt.Errorf("array %q: %w", want, err)
	}
	if need := h.DataOffset + h.DataSize(); uint64(need) != zf.UncompressedSize64 {
		return nil, fmt.Errorf("array %q: header %s needs %d bytes, the archive says the member has %d", want, h, need, zf.UncompressedSize64)
	}
	f := &File{h: h, zf: zf, member: want, r: r}
	if zf.Method == zip.Store {
		off, err := zf.DataOffset()
		if err != nil {
			return nil, fmt.Errorf("array %q: %w", want, err)
		}
		if off < 0 || off > size || int64(zf.UncompressedSize64) > size-off {
			return nil, fmt.Errorf("array %q: member data [%d, +%d) lies outside the %d-byte archive", want, off, zf.UncompressedSize64, size)
		}
		f.off = off
	} else if h.Fortran {
		return nil, fmt.Errorf("array %q: a compressed Fortran-order array cannot be streamed by rows; save it in C order", want)
	}
	return f, nil
}

// File is one member of an archive.
type File struct {
	h      *inpy.Header
	zf     *zip.File
	member string
	r      io.ReaderAt
	off    int64 // data offset of a stored member
}

func (f *File) Describe() string {
	how := "stored"
	if f.zf.Method == zip.Deflate {
		how = "deflated"
	}
	return fmt.Sprintf("npz array %s (%s): %s", f.member, how, f.h)
}
func (f *File) Rows() int64               { return f.h.Rows() }
func (f *File) Columns() []string         { return nil }
func (f *File) PrefixBytes(n int64) int64 { return -1 }

// Open reads a stored member by offset, a deflated one as a stream.
func (f *File) Open(_ pipeline.Selection, start, end int64) (pipeline.RowReader, error) {
	if f.zf.Method == zip.Store {
		sr := io.NewSectionReader(f.r, f.off, int64(f.zf.UncompressedSize64))
		return rowio.NPY(inpy.NewReader(sr, f.h), nil), nil
	}
	rc, err := f.zf.Open()
	if err != nil {
		return nil, err
	}
	fw := &rowio.Forward{R: bufio.NewReaderSize(rc, 256<<10)}
	return rowio.NPY(inpy.NewReader(fw, f.h), rc), nil
}
