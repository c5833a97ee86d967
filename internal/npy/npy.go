// Package npy streams 2-D numeric .npy arrays (NumPy format versions 1, 2
// and 3) as float32 rows without loading the file. It reads float16,
// float32 and float64 in either byte order, C or Fortran order.
package npy

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
	"unsafe"

	"github.com/snappipe/snappipe/internal/half"
)

// Magic starts every .npy file.
const Magic = "\x93NUMPY"

// MaxHeaderLen bounds the header dictionary we accept.
const MaxHeaderLen = 1 << 20

// Header is a parsed .npy header.
type Header struct {
	Major, Minor int
	Descr        string // e.g. "<f2"
	Fortran      bool
	Shape        []int64
	// DataOffset is where the array data starts.
	DataOffset int64
	ItemSize   int
	order      binary.ByteOrder
}

// Rows is the first dimension.
func (h *Header) Rows() int64 { return h.Shape[0] }

// Width is the second dimension (values per row).
func (h *Header) Width() int { return int(h.Shape[1]) }

// RowBytes is the size of one row.
func (h *Header) RowBytes() int64 { return int64(h.Width()) * int64(h.ItemSize) }

// DataSize is the size of the array data.
func (h *Header) DataSize() int64 { return h.Rows() * h.RowBytes() }

func (h *Header) String() string {
	order := "C"
	if h.Fortran {
		order = "Fortran"
	}
	return fmt.Sprintf("npy v%d.%d %s %s-order shape (%d, %d)", h.Major, h.Minor, h.Descr, order, h.Shape[0], h.Shape[1])
}

// ErrNotNpy means the bytes do not start with the .npy magic.
var ErrNotNpy = errors.New("not a .npy file (missing \\x93NUMPY magic)")

// ReadHeader parses the header from the start of r.
func ReadHeader(r io.Reader) (*Header, error) {
	var pre [8]byte
	if _, err := io.ReadFull(r, pre[:]); err != nil {
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return nil, fmt.Errorf("truncated .npy header: %w", ErrNotNpy)
		}
		return nil, err
	}
	if string(pre[:6]) != Magic {
		return nil, ErrNotNpy
	}
	h := &Header{Major: int(pre[6]), Minor: int(pre[7])}
	var hlen int64
	switch h.Major {
	case 1:
		var b [2]byte
		if _, err := io.ReadFull(r, b[:]); err != nil {
			return nil, fmt.Errorf("truncated .npy header: %w", err)
		}
		hlen = int64(binary.LittleEndian.Uint16(b[:]))
		h.DataOffset = 10 + hlen
	case 2, 3:
		var b [4]byte
		if _, err := io.ReadFull(r, b[:]); err != nil {
			return nil, fmt.Errorf("truncated .npy header: %w", err)
		}
		hlen = int64(binary.LittleEndian.Uint32(b[:]))
		h.DataOffset = 12 + hlen
	default:
		return nil, fmt.Errorf("unsupported .npy format version %d.%d (expected 1, 2 or 3)", h.Major, h.Minor)
	}
	if hlen > MaxHeaderLen {
		return nil, fmt.Errorf(".npy header length %d exceeds %d bytes", hlen, MaxHeaderLen)
	}
	buf := make([]byte, hlen)
	if _, err := io.ReadFull(r, buf); err != nil {
		return nil, fmt.Errorf("truncated .npy header: %w", err)
	}
	if err := h.parseDict(string(bytes.TrimRight(buf, " \n\x00"))); err != nil {
		return nil, err
	}
	return h, nil
}

// parseDict parses the Python dict literal of the header.
func (h *Header) parseDict(s string) error {
	s = strings.TrimSpace(s)
	if !strings.HasPrefix(s, "{") || !strings.HasSuffix(s, "}") {
		return fmt.Errorf("malformed .npy header %q: expected a dict", s)
	}
	p := &dictParser{s: s[1 : len(s)-1]}
	seen := map[string]bool{}
	for {
		p.space()
		if p.done() {
			break
		}
		key, err := p.str()
		if err != nil {
			return fmt.Errorf("malformed .npy header: %v", err)
		}
		p.space()
		if !p.eat(':') {
			return fmt.Errorf("malformed .npy header: expected ':' after %q", key)
		}
		p.space()
		switch key {
		case "descr":
			if h.Descr, err = p.str(); err != nil {
				return fmt.Errorf("malformed .npy header descr: %v (structured dtypes are not supported)", err)
			}
		case "fortran_order":
			if h.Fortran, err = p.boolean(); err != nil {
				return fmt.Errorf("malformed .npy header fortran_order: %v", err)
			}
		case "shape":
			if h.Shape, err = p.tuple(); err != nil {
				return fmt.Errorf("malformed .npy header shape: %v", err)
			}
		default:
			return fmt.Errorf("malformed .npy header: unexpected key %q", key)
		}
		seen[key] = true
		p.space()
		if !p.eat(',') {
			p.space()
			if !p.done() {
				return fmt.Errorf("malformed .npy header: expected ',' at %q", p.rest())
			}
		}
	}
	for _, k := range []string{"descr", "fortran_order", "shape"} {
		if !seen[k] {
			return fmt.Errorf("malformed .npy header: missing %q", k)
		}
	}
	if len(h.Shape) != 2 {
		return fmt.Errorf("unsupported .npy shape %v: expected a 2-D array (rows, width)", h.Shape)
	}
	if h.Shape[1] < 1 {
		return fmt.Errorf("unsupported .npy shape %v: width must be at least 1", h.Shape)
	}
	if len(h.Descr) != 3 {
		return fmt.Errorf("unsupported .npy dtype %q: expected <f2, <f4, >f4, <f8 or >f8", h.Descr)
	}
	switch h.Descr[0] {
	case '<', '|', '=':
		h.order = binary.LittleEndian
	case '>':
		h.order = binary.BigEndian
	default:
		return fmt.Errorf("unsupported .npy dtype %q: unknown byte order", h.Descr)
	}
	if h.Descr[1] != 'f' {
		return fmt.Errorf("unsupported .npy dtype %q: only float arrays (f2, f4, f8) hold embeddings", h.Descr)
	}
	switch h.Descr[2] {
	case '2':
		h.ItemSize = 2
	case '4':
		h.ItemSize = 4
	case '8':
		h.ItemSize = 8
	default:
		return fmt.Errorf("unsupported .npy dtype %q: expected f2, f4 or f8", h.Descr)
	}
	// Sizes from the header are checked before any arithmetic uses them:
	// a width whose row bytes overflow, or rows × row bytes past int64.
	if h.Shape[1] > math.MaxInt64/int64(h.ItemSize) || int64(int(h.Shape[1])) != h.Shape[1] {
		return fmt.Errorf("unsupported .npy shape %v: too large", h.Shape)
	}
	// The header is at most a few KiB, so keeping rows × row bytes below
	// MaxInt64 - 2 MiB keeps header (at most MaxHeaderLen + 12 bytes) + data
	// representable too.
	if h.Shape[0] > (math.MaxInt64-(2<<20))/h.RowBytes() {
		return fmt.Errorf("unsupported .npy shape %v: too large", h.Shape)
	}
	return nil
}

type dictParser struct {
	s string
	i int
}

func (p *dictParser) done() bool   { return p.i >= len(p.s) }
func (p *dictParser) rest() string { return p.s[p.i:] }
func (p *dictParser) space() {
	for p.i < len(p.s) && (p.s[p.i] == ' ' || p.s[p.i] == '\n' || p.s[p.i] == '\t') {
		p.i++
	}
}
func (p *dictParser) eat(c byte) bool {
	if p.i < len(p.s) && p.s[p.i] == c {
		p.i++
		return true
	}
	return false
}
func (p *dictParser) str() (string, error) {
	if p.done() || (p.s[p.i] != '\'' && p.s[p.i] != '"') {
		return "", fmt.Errorf("expected a quoted string at %q", p.rest())
	}
	q := p.s[p.i]
	end := strings.IndexByte(p.s[p.i+1:], q)
	if end < 0 {
		return "", errors.New("unterminated string")
	}
	v := p.s[p.i+1 : p.i+1+end]
	p.i += end + 2
	return v, nil
}
func (p *dictParser) boolean() (bool, error) {
	switch {
	case strings.HasPrefix(p.rest(), "True"):
		p.i += 4
		return true, nil
	case strings.HasPrefix(p.rest(), "False"):
		p.i += 5
		return false, nil
	}
	return false, fmt.Errorf("expected True or False at %q", p.rest())
}
func (p *dictParser) tuple() ([]int64, error) {
	if !p.eat('(') {
		return nil, fmt.Errorf("expected '(' at %q", p.rest())
	}
	var out []int64
	for {
		p.space()
		if p.eat(')') {
			return out, nil
		}
		j := p.i
		for j < len(p.s) && p.s[j] >= '0' && p.s[j] <= '9' {
			j++
		}
		if j == p.i {
			return nil, fmt.Errorf("expected a dimension at %q", p.rest())
		}
		n, err := strconv.ParseInt(p.s[p.i:j], 10, 64)
		if err != nil {
			return nil, err
		}
		p.i = j
		// Python may write 123L in old files.
		p.eat('L')
		out = append(out, n)
		p.space()
		if !p.eat(',') {
			p.space()
			if !p.eat(')') {
				return nil, fmt.Errorf("expected ',' or ')' at %q", p.rest())
			}
			return out, nil
		}
	}
}

// F16ToF32 converts float16 bits exactly.
func F16ToF32(bits uint16) float32 { return half.Float32(bits) }

// Reader reads rows of an array at random positions. It is not safe for
// concurrent use.
type Reader struct {
	h   *Header
	ra  io.ReaderAt
	buf []byte
}

// NewReader reads rows from ra, whose header h was parsed beforehand.
func NewReader(ra io.ReaderAt, h *Header) *Reader { return &Reader{h: h, ra: ra} }

// Header returns the parsed header.
func (r *Reader) Header() *Header { return r.h }

// ReadRows decodes rows [start, start+n) into dst (n*width values).
func (r *Reader) ReadRows(start int64, n int, dst []float32) error {
	h := r.h
	w := h.Width()
	if start < 0 || start+int64(n) > h.Rows() {
		return fmt.Errorf("rows [%d, %d) out of range (file has %d rows)", start, start+int64(n), h.Rows())
	}
	if len(dst) < n*w {
		return fmt.Errorf("destination holds %d values, need %d", len(dst), n*w)
	}
	if !h.Fortran && h.ItemSize == 4 && h.order == binary.LittleEndian && hostLE {
		// Little-endian float32 rows are this host's float32s: read them
		// straight into dst. (Through a byte buffer and a conversion loop
		// they cost a third of a float32 .npy run's CPU.)
		b := unsafe.Slice((*byte)(unsafe.Pointer(unsafe.SliceData(dst))), 4*n*w)
		if _, err := r.ra.ReadAt(b, h.DataOffset+start*h.RowBytes()); err != nil {
			return r.short(err, start, n)
		}
		return nil
	}
	if !h.Fortran {
		size := int(int64(n) * h.RowBytes())
		if cap(r.buf) < size {
			r.buf = make([]byte, size)
		}
		b := r.buf[:size]
		if _, err := r.ra.ReadAt(b, h.DataOffset+start*h.RowBytes()); err != nil {
			return r.short(err, start, n)
		}
		r.convert(b, dst[:n*w])
		return nil
	}
	// Fortran order: column j of the whole array is contiguous. Read the n
	// values of each column and scatter them into the rows.
	size := n * h.ItemSize
	if cap(r.buf) < size {
		r.buf = make([]byte, size)
	}
	b := r.buf[:size]
	col := make([]float32, n)
	for j := 0; j < w; j++ {
		off := h.DataOffset + (int64(j)*h.Rows()+start)*int64(h.ItemSize)
		if _, err := r.ra.ReadAt(b, off); err != nil {
			return r.short(err, start, n)
		}
		r.convert(b, col)
		for i := 0; i < n; i++ {
			dst[i*w+j] = col[i]
		}
	}
	return nil
}

// HalfLE reports whether the array is little-endian float16 in C order:
// its rows can be handed on as they are (ReadHalfRows).
func (h *Header) HalfLE() bool {
	return h.ItemSize == 2 && h.order == binary.LittleEndian && !h.Fortran
}

// ReadHalfRows copies rows [start, start+n) of a HalfLE array into dst
// (2*n*width bytes of little-endian float16), unconverted.
func (r *Reader) ReadHalfRows(start int64, n int, dst []byte) error {
	h := r.h
	if !h.HalfLE() {
		return fmt.Errorf("internal: %s is not little-endian float16 in C order", h)
	}
	if start < 0 || start+int64(n) > h.Rows() {
		return fmt.Errorf("rows [%d, %d) out of range (file has %d rows)", start, start+int64(n), h.Rows())
	}
	size := int64(n) * h.RowBytes()
	if int64(len(dst)) < size {
		return fmt.Errorf("destination holds %d bytes, need %d", len(dst), size)
	}
	if _, err := r.ra.ReadAt(dst[:size], h.DataOffset+start*h.RowBytes()); err != nil {
		return r.short(err, start, n)
	}
	return nil
}

func (r *Reader) short(err error, start int64, n int) error {
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return fmt.Errorf("file is truncated: header %s promises %d data bytes, reading rows [%d, %d) hit the end", r.h, r.h.DataSize(), start, start+int64(n))
	}
	return err
}

func (r *Reader) convert(b []byte, dst []float32) {
	h := r.h
	switch h.ItemSize {
	case 2:
		if h.order == binary.LittleEndian {
			half.LittleEndian(dst, b)
		} else {
			half.BigEndian(dst, b)
		}
	case 4:
		if h.order == binary.LittleEndian {
			for i := range dst {
				dst[i] = math.Float32frombits(binary.LittleEndian.Uint32(b[4*i:]))
			}
		} else {
			for i := range dst {
				dst[i] = math.Float32frombits(binary.BigEndian.Uint32(b[4*i:]))
			}
		}
	case 8:
		if h.order == binary.LittleEndian {
			for i := range dst {
				dst[i] = float32(math.Float64frombits(binary.LittleEndian.Uint64(b[8*i:])))
			}
		} else {
			for i := range dst {
				dst[i] = float32(math.Float64frombits(binary.BigEndian.Uint64(b[8*i:])))
			}
		}
	}
}

// hostLE is whether this machine stores a float32 little-endian (the
// order of '<f4' data).
var hostLE = binary.NativeEndian.Uint16([]byte{1, 0}) == 1

// WriteHeader writes a version 1.0 header for a C-order (rows, width) array
// of descr, padded so the data starts on a 64-byte boundary, as NumPy does.
func WriteHeader(w io.Writer, descr string, rows int64, width int) error {
	dict := fmt.Sprintf("{'descr': '%s', 'fortran_order': False, 'shape': (%d, %d), }", descr, rows, width)
	total := 10 + len(dict) + 1
	pad := (64 - total%64) % 64
	dict += strings.Repeat(" ", pad) + "\n"
	var pre [10]byte
	copy(pre[:], Magic)
	pre[6], pre[7] = 1, 0
	binary.LittleEndian.PutUint16(pre[8:], uint16(len(dict)))
	if _, err := w.Write(pre[:]); err != nil {
		return err
	}
	_, err := io.WriteString(w, dict)
	return err
}
