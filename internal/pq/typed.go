package pq

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"unsafe"

	"github.com/parquet-go/parquet-go"
	"github.com/parquet-go/parquet-go/encoding"

	"github.com/snappipe/snappipe/internal/finite"
	"github.com/snappipe/snappipe/pipeline"
)

// typedCursor reads a list<float|double> column (maximum repetition level
// 1) page by page as typed slices: the page's repetition and definition
// levels and its float32 or float64 values, copied to a row's vector in
// runs, with no parquet.Value per element. Dictionary-encoded pages are
// decoded through their dictionary.
type typedCursor struct {
	pageReader
	reps, defs []byte
	f32        []float32
	f64        []float64
	li, vi     int // next level, next non-null value

	// own, when set, reads the chunk's pages instead of parquet-go
	// (chunkPages). A page of whole rows of width w leaves them in raw
	// (rawRows rows of little-endian floats, copied straight to the
	// block) but its last, which goes through the levels like any other
	// row: it may go on in the next page.
	own       *chunkPages
	w, maxDef int
	// raw holds the bytes of rawRows whole rows, in segments (one,
	// unless the page was decoded as segments); rowBuf a row gathered
	// from two of them.
	raw     [][]byte
	rawRows int
	rowBuf  []byte
	// page is the page being read (own): its buffers are held until the
	// next is read. lend says blocks may borrow raw's rows from them
	// (readRowsLent): not when raw is the cursor's own (a
	// dictionary-indexed page's values looked up).
	page    ownPage
	lend    bool
	pattern []byte // a row's repetition levels (readRows's)
	defBuf  []byte // a row's definition levels, all maxDef
	f32Buf  []float32
	// dictVals holds a dictionary-indexed page's values looked up (raw
	// points into it); idx its indexes.
	dictVals []float32
	idx      []int32
}

// fill makes sure a level (or a raw row) is available, reading pages as
// needed.
func (c *typedCursor) fill() error {
	if c.own != nil {
		return c.fillOwn()
	}
	for c.li >= len(c.defs) {
		p, err := c.nextPage()
		if err != nil {
			return err
		}
		c.reps, c.defs, c.li, c.vi = p.RepetitionLevels(), p.DefinitionLevels(), 0, 0
		if len(c.reps) != len(c.defs) {
			return errNotFloat // a list column has both levels per value
		}
		c.f32, c.f64 = nil, nil
		data := p.Data()
		switch data.Kind() {
		case encoding.Float:
			c.f32 = data.Float()
		case encoding.Double:
			c.f64 = data.Double()
		default:
			d := p.Dictionary()
			if d == nil || data.Kind() != encoding.Int32 {
				return errNotFloat
			}
			idx, dv := data.Int32(), d.Page().Data()
			var ok bool
			switch dv.Kind() {
			case encoding.Float:
				c.f32, ok = lookup(idx, dv.Float())
			case encoding.Double:
				c.f64, ok = lookup(idx, dv.Double())
			}
			if !ok {
				return errNotFloat
			}
		}
	}
	return nil
}

// fillOwn is fill for a chunk read by chunkPages.
func (c *typedCursor) fillOwn() error {
	for c.rawRows == 0 && c.li >= len(c.defs) {
		c.page.release()
		c.lend = false
		p, err := c.own.next()
		if err != nil {
			return err
		}
		c.page = p
		c.li, c.vi, c.f64 = 0, 0, nil
		rows := uniformRows(&p, c.w, c.maxDef)
		if p.indexed || rows == 0 {
			c.own.flatten(&p)
		}
		if p.indexed {
			// Dictionary indexes (the first pages of a pyarrow chunk,
			// before its dictionary grew too large): looked up, then
			// raw like any page's values.
			n := p.n
			if rows == 0 {
				if c.reps, c.defs, err = expand(&p, c.maxDef, nil, nil); err != nil {
					return fmt.Errorf("%w: levels: %v", errCorruptPage, err)
				}
				n = 0
				for _, d := range c.defs {
					if int(d) == c.maxDef {
						n++
					}
				}
			}
			if c.f32Buf, c.idx, err = c.own.lookup(c.f32Buf[:0], &p, n, c.idx); err != nil {
				return err
			}
			if rows == 0 || !littleEndian {
				c.raw, c.rawRows, c.f32 = c.raw[:0], 0, c.f32Buf
				if rows > 0 {
					c.reps, c.defs, err = expand(&p, c.maxDef, nil, nil)
					if err != nil {
						return fmt.Errorf("%w: levels: %v", errCorruptPage, err)
					}
				}
				continue
			}
			p.vals = unsafe.Slice((*byte)(unsafe.Pointer(unsafe.SliceData(c.f32Buf))), 4*len(c.f32Buf))
			c.dictVals, c.f32Buf = c.f32Buf, c.dictVals[:0] // the last row is copied out of them below
		}
		if rows > 0 {
			if n := p.valLen(); n < 4*p.n {
				return fmt.Errorf("%w: %d levels, %d bytes of values", errCorruptPage, p.n, n)
			}
			c.raw, c.rawRows, c.lend = cutSegs(c.raw[:0], &p, 4*(rows-1)*c.w), rows-1, !p.indexed
			// The last row, as levels: one 0 then ones, all defined.
			if len(c.defBuf) != c.w || c.defBuf[0] != byte(c.maxDef) {
				c.defBuf = bytes.Repeat([]byte{byte(c.maxDef)}, c.w)
			}
			c.reps, c.defs = c.pattern, c.defBuf
			c.rowBuf = p.valBytes(c.rowBuf[:0], 4*(rows-1)*c.w, 4*c.w)
			c.f32Buf = appendRaw(c.f32Buf[:0], c.rowBuf)
			c.f32 = c.f32Buf
			continue
		}
		// Anything else: the levels expanded, the values decoded; the
		// level checks name what is wrong.
		c.raw, c.rawRows = c.raw[:0], 0
		reps, defs, err := expand(&p, c.maxDef, nil, nil)
		if err != nil {
			return fmt.Errorf("%w: levels: %v", errCorruptPage, err)
		}
		c.reps, c.defs = reps, defs
		c.f32Buf = appendRaw(c.f32Buf[:0], p.vals[:len(p.vals)&^3])
		c.f32 = c.f32Buf
	}
	return nil
}

// appendRaw appends the little-endian float32 values in raw to dst.
func appendRaw(dst []float32, raw []byte) []float32 {
	n, l := len(raw)/4, len(dst)
	dst = slices.Grow(dst, n)[:l+n]
	if littleEndian {
		copy(unsafe.Slice((*byte)(unsafe.Pointer(unsafe.SliceData(dst[l:]))), 4*n), raw)
		return dst
	}
	for i := range n {
		dst[l+i] = math.Float32frombits(binary.LittleEndian.Uint32(raw[4*i:]))
	}
	return dst
}

var littleEndian = binary.NativeEndian.Uint16([]byte{1, 0}) == 1

// cutSegs appends to dst the page's first n bytes of values as segments.
func cutSegs(dst [][]byte, p *ownPage, n int) [][]byte {
	if p.segs == nil {
		return append(dst, p.vals[:n])
	}
	for _, s := range p.segs {
		if n == 0 {
			break
		}
		k := min(n, len(s))
		dst, n = append(dst, s[:k]), n-k
	}
	return dst
}

// rawTake takes up to k whole raw rows that are contiguous (at least
// one, unless the next row is split between two segments: 0 then).
func (c *typedCursor) rawTake(k int) ([]byte, int) {
	rb := 4 * c.w
	for len(c.raw) > 0 && len(c.raw[0]) == 0 {
		c.raw = c.raw[1:]
	}
	if len(c.raw) == 0 || rb == 0 {
		return nil, 0
	}
	n := min(k, len(c.raw[0])/rb, c.rawRows)
	part := c.raw[0][:n*rb]
	c.raw[0] = c.raw[0][n*rb:]
	c.rawRows -= n
	return part, n
}

// rawRow takes the next raw row, gathered into rowBuf when it is split
// between segments.
func (c *typedCursor) rawRow() []byte {
	if part, n := c.rawTake(1); n == 1 {
		return part
	}
	rb := 4 * c.w
	c.rowBuf = c.rowBuf[:0]
	for len(c.rowBuf) < rb && len(c.raw) > 0 {
		k := min(rb-len(c.rowBuf), len(c.raw[0]))
		c.rowBuf = append(c.rowBuf, c.raw[0][:k]...)
		if c.raw[0] = c.raw[0][k:]; len(c.raw[0]) == 0 {
			c.raw = c.raw[1:]
		}
	}
	c.rawRows--
	return c.rowBuf
}

// nextFloats appends the next row's vector to dst. dRep is the definition
// level of a list with an element, maxDef that of a non-null element.
func (c *typedCursor) nextFloats(dst []float32, dRep, maxDef int) ([]float32, error) {
	if err := c.fill(); err != nil {
		return dst, err
	}
	if c.rawRows > 0 {
		return appendRaw(dst, c.rawRow()), nil
	}
	if int(c.defs[c.li]) < dRep {
		return dst, errNullVector
	}
	for first := true; ; first = false {
		start := c.li
		if !first && c.reps[start] == 0 {
			return dst, nil
		}
		end := len(c.reps)
		if i := bytes.IndexByte(c.reps[start+1:], 0); i >= 0 {
			end = start + 1 + i
		}
		if defs := c.defs[start:end]; !allEqual(defs, byte(maxDef)) {
			for _, d := range defs {
				if int(d) < maxDef {
					return dst, errNullElement
				}
			}
		}
		n := end - start
		if c.vi+n > len(c.f32)+len(c.f64) {
			return dst, errNotFloat // levels promise more values than the page holds
		}
		if c.f32 != nil {
			dst = append(dst, c.f32[c.vi:c.vi+n]...)
		} else {
			for _, v := range c.f64[c.vi : c.vi+n] {
				dst = append(dst, float32(v))
			}
		}
		c.li, c.vi = end, c.vi+n
		if c.li < len(c.defs) {
			return dst, nil // the next level starts the next row
		}
		// The row may go on in the next page (data page v1 allows it).
		if err := c.fill(); err != nil {
			if err == io.EOF {
				return dst, nil
			}
			return dst, err
		}
	}
}

// allEqual reports whether every byte of b is v, 32 bytes a step.
func allEqual(b []byte, v byte) bool {
	w := uint64(v) * 0x0101010101010101
	i := 0
	for ; i+32 <= len(b); i += 32 {
		x := b[i : i+32 : i+32]
		if (binary.LittleEndian.Uint64(x)^w)|(binary.LittleEndian.Uint64(x[8:])^w)|
			(binary.LittleEndian.Uint64(x[16:])^w)|(binary.LittleEndian.Uint64(x[24:])^w) != 0 {
			return false
		}
	}
	for ; i < len(b); i++ {
		if b[i] != v {
			return false
		}
	}
	return true
}

// lookup decodes dictionary indexes; false if one is out of range.
func lookup[T any](idx []int32, dict []T) ([]T, bool) {
	out := make([]T, len(idx))
	for i, k := range idx {
		if k < 0 || int(k) >= len(dict) {
			return nil, false
		}
		out[i] = dict[k]
	}
	return out, true
}

// pageReader reads a column chunk page by page, holding the page in use
// until the next is read (the typed cursors read the page's slices in
// place).
type pageReader struct {
	pages parquet.Pages
	page  parquet.Page
	eof   bool
}

// nextPage releases the page done with and reads the next; at the end it
// returns io.EOF, then and after.
func (pr *pageReader) nextPage() (parquet.Page, error) {
	if pr.eof {
		return nil, io.EOF
	}
	if pr.page != nil {
		parquet.Release(pr.page)
		pr.page = nil
	}
	p, err := pr.pages.ReadPage()
	if err == io.EOF {
		pr.eof = true
	}
	if err != nil {
		return nil, err
	}
	pr.page = p
	return p, nil
}

// close releases the cursor's page and page reader.
func (c *typedCursor) close() {
	c.page.release()
	c.raw, c.rawRows, c.lend = nil, 0, false
	c.reps, c.defs, c.li = nil, nil, 0
	c.pageReader.close()
}

func (pr *pageReader) close() {
	if pr.page != nil {
		parquet.Release(pr.page)
		pr.page = nil
	}
	if pr.pages != nil {
		pr.pages.Close()
	}
}

// widthError is a row whose vector has another number of values than
// the rows before it.
type widthError struct{ n, want int }

func (e *widthError) Error() string {
	return fmt.Sprintf("%d values, earlier rows have %d", e.n, e.want)
}

// readRows appends m rows of w values each to dst. The whole rows a page
// holds are taken as one run: checked (every row's repetition levels are
// one 0 then w-1 ones, pattern; every definition level is maxDef) and
// copied at once. A row a run does not take — the last of a page, which
// may go on in the next, or one that fails the check — is read by
// nextFloats, which says what is wrong with it. It returns the rows
// appended, all m unless it fails, and the index in dst of the first NaN
// or ±Inf it appended (-1 if none): each piece is looked at as it is
// copied, while it is in the cache, instead of in a pass of its own over
// the block.
func (c *typedCursor) readRows(dst []float32, m, w, dRep, maxDef int, pattern []byte) ([]float32, int, int, error) {
	done, bad := 0, -1
	check := func(from int) {
		if bad < 0 {
			if i := finite.First(dst[from:]); i >= 0 {
				bad = from + i
			}
		}
	}
	c.w, c.maxDef, c.pattern = w, maxDef, pattern
	for done < m {
		if err := c.fill(); err != nil {
			return dst, done, bad, err
		}
		if c.rawRows > 0 {
			// In pieces of at most checkRows rows, each checked while
			// it is in the cache.
			from := len(dst)
			part, k := c.rawTake(min(m-done, max(checkRows/max(w, 1), 1)))
			if k == 0 {
				part, k = c.rawRow(), 1
			}
			dst = appendRaw(dst, part)
			check(from)
			done += k
			continue
		}
		// Rows that end before the page does: the level after the run is
		// in this page, and the next row (or run) starts there.
		k := min(m-done, (len(c.defs)-c.li-1)/w)
		if w > 0 && k > 0 && c.vi+k*w <= len(c.f32)+len(c.f64) {
			reps := c.reps[c.li : c.li+k*w]
			ok := allEqual(c.defs[c.li:c.li+k*w], byte(maxDef))
			for j := 0; ok && j < k; j++ {
				ok = bytes.Equal(reps[j*w:(j+1)*w], pattern)
			}
			if ok && c.reps[c.li+k*w] == 0 {
				from := len(dst)
				if c.f32 != nil {
					dst = append(dst, c.f32[c.vi:c.vi+k*w]...)
				} else {
					for _, v := range c.f64[c.vi : c.vi+k*w] {
						dst = append(dst, float32(v))
					}
				}
				check(from)
				c.li, c.vi, done = c.li+k*w, c.vi+k*w, done+k
				continue
			}
		}
		n := len(dst)
		var err error
		if dst, err = c.nextFloats(dst, dRep, maxDef); err != nil {
			return dst, done, bad, err
		}
		if len(dst)-n != w {
			return dst, done, bad, &widthError{len(dst) - n, w}
		}
		check(n)
		done++
	}
	return dst, done, bad, nil
}

// readRowsLent reads m rows of w values each, as readRows does, for a
// block that borrows its rows (pipeline.Runs): the whole rows a page
// holds are added to runs as they are in the page's buffer, which keep
// is given to hold until the block is released, instead of being copied.
// Any other row (a page's last, which may go on in the next page; the
// rows of a dictionary-indexed page or of a page read by parquet-go) is
// copied to own, the block's buffer, which has room for every row of the
// block (it is never grown: runs point into it). It returns the rows read
// and the index among the values it added of the first NaN or ±Inf (-1 if
// none).
func (c *typedCursor) readRowsLent(runs *pipeline.Runs, own *[]byte, m, w, dRep, maxDef int, pattern []byte, keep func(*pageMem)) (int, int, error) {
	done, bad := 0, -1
	c.w, c.maxDef, c.pattern = w, maxDef, pattern
	for done < m {
		if err := c.fill(); err != nil {
			return done, bad, err
		}
		if c.rawRows > 0 && c.lend {
			if part, k := c.rawTake(m - done); k > 0 {
				if bad < 0 {
					if i := finite.FirstLE(part); i >= 0 {
						bad = done*w + i
					}
				}
				if c.page.inBody {
					keep(c.page.body)
				}
				keep(c.page.out)
				runs.Add(part)
				done += k
				continue
			}
			// A row split between two segments: copied below.
		}
		// Copied: the raw rows the cursor owns, or the rows ending in
		// this page (at least one), by readRows, into own's room.
		k := 1
		if c.rawRows > 0 && !c.lend {
			k = c.rawRows
		} else if c.rawRows == 0 && c.li < len(c.defs) {
			k = max(1, (len(c.defs)-c.li-1)/max(w, 1))
		}
		k = min(k, m-done)
		from := len(*own)
		if cap(*own)-from < 4*k*w {
			return done, bad, errors.New("internal: a block's buffer is too small for its rows")
		}
		room := unsafe.Slice((*float32)(unsafe.Pointer(unsafe.SliceData((*own)[from:cap(*own)]))), (cap(*own)-from)/4)
		got, n, b, err := c.readRows(room[:0], k, w, dRep, maxDef, pattern)
		if len(got) > 0 && unsafe.SliceData(got) != unsafe.SliceData(room) {
			return done, bad, errors.New("internal: a block's buffer grew")
		}
		if bad < 0 && b >= 0 {
			bad = done*w + b
		}
		*own = (*own)[:from+4*n*w]
		runs.Add((*own)[from:])
		done += n
		if err != nil {
			return done, bad, err
		}
	}
	return done, bad, nil
}

// checkRows is about how many values readRows copies before it looks
// for NaN/±Inf in them: 128 KiB, well inside a core's L2.
const checkRows = 32 << 10
