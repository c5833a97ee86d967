package pq

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"math/bits"
	"sync/atomic"

	"github.com/parquet-go/parquet-go"
	"github.com/parquet-go/parquet-go/encoding/rle"
	"github.com/parquet-go/parquet-go/encoding/thrift"
	"github.com/parquet-go/parquet-go/format"

	"github.com/snappipe/snappipe/internal/bufpool"
)

// chunkPages reads the data pages of one list<float> column chunk
// itself, for the typed cursor: the layout Hugging Face datasets have
// (pyarrow's defaults: a dictionary page it gave up on after 1 MiB, then
// PLAIN values; RLE levels, data page v1, Snappy). A page's body is read
// straight into a pooled, reference-counted buffer (pageMem) and handed
// on as its encoded levels and its raw little-endian values (or
// dictionary indexes): no level is expanded and no value is copied, when
// the levels say every row of the page has the block's width
// (uniformRows). A Snappy page that is mostly literals (incompressible
// floats) is not decompressed into a buffer of its own: its values are
// the literals where they were read (snappySegs), and blocks borrow the
// rows from there (Reader.ReadVectorsLent) until they are released.
// Anything else — another encoding, a codec parquet-go lacks, an
// encrypted file, a start inside the chunk — is read by parquet-go's
// pages (ownChunk says which).
type chunkPages struct {
	r        io.ReaderAt
	off, end int64 // the chunk's unread bytes
	codec    format.CompressionCodec
	maxDef   int
	hdr      []byte
	lvl      []byte // a segmented page's levels, gathered
	flat     []byte // a segmented page's values, when flattened
	proto    thrift.CompactProtocol
	reader   thrift.BytesReader
	dict     []float32 // the dictionary page's values, if the chunk has one
	dictRead bool
	// maxPage bounds a page's sizes: the chunk's uncompressed size (its
	// footer's), at most maxPageSize.
	maxPage int64
}

// ownPage is one data page: n levels, its repetition and definition
// levels as stored (RLE/bit-packed hybrid, without v1's length prefix),
// and its values (PLAIN, 4 or 8 bytes each).
type ownPage struct {
	n          int
	reps, defs []byte
	// vals are the values, or, when segs is set instead, the values in
	// segments (a Snappy page decoded without copying its literals).
	vals []byte
	segs [][]byte
	// indexed says vals are dictionary indexes (a bit width byte, then
	// an RLE/bit-packed hybrid stream) into chunkPages.dict.
	indexed bool
	// body holds the page as stored, out (when not nil) the page
	// decompressed, or, for a page decoded as segments, the bytes of its
	// Snappy copy elements: the page's reader holds a reference to each
	// until it is done with the page (release); a block that borrows rows
	// takes one of each that holds its rows (inBody: body does).
	body, out *pageMem
	inBody    bool
}

// release drops the reader's references to the page's buffers.
func (p *ownPage) release() {
	if p.body != nil {
		p.body.unref()
	}
	if p.out != nil {
		p.out.unref()
	}
	p.body, p.out = nil, nil
}

// pageMem is a page's buffer, shared by reference count: the reader of
// the page holds one reference, every block that borrows rows from it
// (pipeline.Runs) one more, and the last release gives it back to
// bufpool.Pages. A block's rows so stay where the page was decompressed:
// they are not copied into the block.
type pageMem struct {
	bp   *[]byte
	refs atomic.Int32
}

func newPageMem(n int) *pageMem {
	m := &pageMem{bp: bufpool.Pages.Get(n)}
	m.refs.Store(1)
	livePages.Add(1)
	return m
}

var livePages atomic.Int64

// LivePages returns how many page buffers are in use (read, or held by
// a block that borrows rows from them): 0 once every reader is closed
// and every block released.
func LivePages() int64 { return livePages.Load() }

func (m *pageMem) ref() { m.refs.Add(1) }

func (m *pageMem) unref() {
	switch n := m.refs.Add(-1); {
	case n == 0:
		bufpool.Pages.Put(m.bp)
		m.bp = nil
		livePages.Add(-1)
	case n < 0:
		panic("pq: page buffer released twice")
	}
}

// maxPageHeader bounds a page header read: real ones are tens of bytes
// (a few hundred with statistics of long strings, which float columns do
// not have).
const maxPageHeader = 64 << 10

// maxPageSize bounds a page's stored and decompressed size, checked
// before either is allocated: a hostile header cannot make a reader ask
// for more (real pages are about 1 MiB).
const maxPageSize = 1 << 30

var errCorruptPage = errors.New("corrupt page")

// snappyMaxRatio bounds how much Snappy can expand its input: its largest
// copy element writes 64 bytes from 3 (21.3×).
const snappyMaxRatio = 22

// useOwnPages turns chunkPages on (tests compare it with parquet-go's
// pages).
var useOwnPages = true

// ownChunk returns the reader of row group rg's leaf column col when the
// chunk is one it reads: float values, PLAIN and RLE encodings
// only (no dictionary), a codec parquet-go has, no encryption, offsets
// inside the file.
//
// prev, if not nil, is the same column's reader of an earlier row group:
// its buffers are reused.
func (f *File) ownChunk(rg, col int, prev *chunkPages) (*chunkPages, bool) {
	md := f.f.Metadata()
	if f.r == nil || md.EncryptionAlgorithm.Value != nil || len(md.FooterSigningKeyMetadata) > 0 || rg >= len(md.RowGroups) || col >= len(md.RowGroups[rg].Columns) {
		return nil, false
	}
	cc := &md.RowGroups[rg].Columns[col]
	m := &cc.MetaData
	if cc.FilePath != "" || cc.CryptoMetadata.Value != nil || len(cc.EncryptedColumnMetadata) > 0 {
		return nil, false
	}
	if m.Type != format.Float {
		return nil, false // double columns are rare: parquet-go's pages
	}
	for _, e := range m.Encoding {
		switch e {
		case format.Plain, format.RLE, format.PlainDictionary, format.RLEDictionary:
		default:
			return nil, false
		}
	}
	switch m.Codec {
	case format.Uncompressed, format.Snappy, format.Gzip, format.Brotli, format.Zstd, format.Lz4Raw:
	default:
		return nil, false
	}
	start := m.DataPageOffset
	if m.DictionaryPageOffset > 0 {
		start = min(start, m.DictionaryPageOffset)
	}
	if start < 4 || m.TotalCompressedSize <= 0 || start > f.size-8 || m.TotalCompressedSize > f.size-8-start {
		return nil, false
	}
	lc, ok := f.f.Schema().Lookup(f.f.Schema().Columns()[col]...)
	if !ok || lc.MaxRepetitionLevel != 1 || lc.MaxDefinitionLevel < 1 {
		return nil, false
	}
	c := &chunkPages{r: f.r, off: start, end: start + m.TotalCompressedSize, codec: m.Codec, maxDef: lc.MaxDefinitionLevel}
	if prev != nil {
		c.hdr, c.dict = prev.hdr, prev.dict[:0]
	}
	c.maxPage = min(maxPageSize, max(m.TotalUncompressedSize, m.TotalCompressedSize))
	c.reader = c.proto.NewReaderFromBytes(nil)
	return c, true
}

// next reads the next data page (io.EOF after the last). The page's
// slices are valid until its release.
func (c *chunkPages) next() (ownPage, error) {
	for {
		if c.off >= c.end {
			return ownPage{}, io.EOF
		}
		h, hlen, err := c.header()
		if err != nil {
			return ownPage{}, err
		}
		size := int64(h.CompressedPageSize)
		if h.CompressedPageSize < 0 || h.UncompressedPageSize < 0 || size > c.end-c.off-int64(hlen) || size > c.maxPage || int64(h.UncompressedPageSize) > c.maxPage {
			return ownPage{}, fmt.Errorf("%w: page sizes %d/%d at offset %d, the chunk has %d bytes left (%d uncompressed in all)", errCorruptPage, h.CompressedPageSize, h.UncompressedPageSize, c.off, c.end-c.off-int64(hlen), c.maxPage)
		}
		if c.codec == format.Snappy && int64(h.UncompressedPageSize) > snappyMaxRatio*size+64 {
			// Snappy cannot expand more than that (a 3-byte copy of 64
			// bytes at most): a header claiming more is corrupt, and is
			// refused before its size is allocated.
			return ownPage{}, fmt.Errorf("%w: the page at offset %d claims %d bytes from %d Snappy-compressed ones", errCorruptPage, c.off, h.UncompressedPageSize, size)
		}
		bm := newPageMem(int(size))
		body := (*bm.bp)[:size]
		if _, err := c.r.ReadAt(body, c.off+int64(hlen)); err != nil {
			bm.unref()
			return ownPage{}, fmt.Errorf("read page at offset %d: %w", c.off, err)
		}
		at := c.off
		c.off += int64(hlen) + size
		if h.CRC != 0 && int32(crc32.ChecksumIEEE(body)) != h.CRC {
			bm.unref()
			return ownPage{}, fmt.Errorf("%w: CRC mismatch in the page at offset %d", errCorruptPage, at)
		}
		var p ownPage
		switch {
		case h.DataPageHeader.Valid:
			p, err = c.v1(&h.DataPageHeader.V, body, int(h.UncompressedPageSize), at)
		case h.DataPageHeaderV2.Valid:
			p, err = c.v2(&h.DataPageHeaderV2.V, body, int(h.UncompressedPageSize), at)
		case h.DictionaryPageHeader.Valid:
			d := &h.DictionaryPageHeader.V
			if c.dictRead || d.NumValues < 0 || (d.Encoding != format.Plain && d.Encoding != format.PlainDictionary) {
				bm.unref()
				return ownPage{}, fmt.Errorf("%w: dictionary page at offset %d: a second one, or encoding %v", errCorruptPage, at, d.Encoding)
			}
			data, out, err := c.decompress(body, int(h.UncompressedPageSize), at)
			if err == nil && int64(len(data)) < 4*int64(d.NumValues) {
				err = fmt.Errorf("%w: dictionary page at offset %d holds %d bytes for %d values", errCorruptPage, at, len(data), d.NumValues)
			}
			if err == nil {
				c.dict, c.dictRead = appendRaw(c.dict[:0], data[:4*int(d.NumValues)]), true
			}
			(&ownPage{body: bm, out: out}).release()
			if err != nil {
				return ownPage{}, err
			}
			continue
		case h.Type == format.IndexPage:
			bm.unref()
			continue
		default:
			bm.unref()
			return ownPage{}, fmt.Errorf("%w: a page of type %v at offset %d in a chunk without a dictionary", errCorruptPage, h.Type, at)
		}
		p.body = bm
		if err != nil {
			p.release()
			return ownPage{}, err
		}
		return p, nil
	}
}

// header decodes the page header at c.off and returns its length.
func (c *chunkPages) header() (format.PageHeader, int, error) {
	for n := int64(256); ; n = maxPageHeader {
		n = min(n, c.end-c.off)
		if cap(c.hdr) < int(n) {
			c.hdr = make([]byte, n)
		}
		b := c.hdr[:n]
		if _, err := c.r.ReadAt(b, c.off); err != nil && err != io.EOF {
			return format.PageHeader{}, 0, fmt.Errorf("read page header at offset %d: %w", c.off, err)
		}
		var h format.PageHeader
		c.reader.ResetBytes(b)
		err := thrift.NewDecoder(c.reader).Decode(&h)
		if err == nil {
			h.DataPageHeader.V.Statistics, h.DataPageHeaderV2.V.Statistics = format.Statistics{}, format.Statistics{} // they alias c.hdr
			return h, c.reader.BytesRead(), nil
		}
		if n >= maxPageHeader || n >= c.end-c.off {
			return format.PageHeader{}, 0, fmt.Errorf("%w: page header at offset %d: %v", errCorruptPage, c.off, err)
		}
	}
}

// decompress returns src decompressed (exactly size bytes) and the
// buffer holding them, a reference the caller releases; for an
// uncompressed chunk, src itself and nil.
func (c *chunkPages) decompress(src []byte, size int, at int64) ([]byte, *pageMem, error) {
	if c.codec == format.Uncompressed {
		if len(src) != size {
			return nil, nil, fmt.Errorf("%w: the page at offset %d has %d bytes, its header says %d", errCorruptPage, at, len(src), size)
		}
		return src, nil, nil
	}
	m := newPageMem(size)
	out, err := parquet.LookupCompressionCodec(c.codec).Decode((*m.bp)[:0], src)
	if err == nil && len(out) != size {
		err = fmt.Errorf("%w: the page at offset %d decompresses to %d bytes, its header says %d", errCorruptPage, at, len(out), size)
	} else if err != nil {
		err = fmt.Errorf("%w: decompress the page at offset %d: %v", errCorruptPage, at, err)
	}
	if err != nil {
		m.unref()
		return nil, nil, err
	}
	if cap(out) > cap(*m.bp) {
		*m.bp = out[:0] // the codec grew it: the bigger one is pooled
	}
	return out, m, nil
}

// decompressSegs is decompress, but a Snappy page that is mostly literals
// (incompressible floats) is decoded as segments (snappySegs): v is not
// nil then (data is nil), and out holds the bytes the block's copy
// elements made, if any. Otherwise data is the page decompressed and out
// the buffer it is in (nil for an uncompressed chunk: data is src).
func (c *chunkPages) decompressSegs(src []byte, size int, at int64) (v *virt, data []byte, out *pageMem, err error) {
	if c.codec == format.Snappy {
		vs, ok, err := snappySegs(src, size, func(n int) []byte {
			out = newPageMem(n)
			return *out.bp
		})
		if err != nil {
			return nil, nil, nil, fmt.Errorf("%w: decompress the page at offset %d: %v", errCorruptPage, at, err)
		}
		if ok {
			return &vs, nil, out, nil
		}
	}
	data, out, err = c.decompress(src, size, at)
	return nil, data, out, err
}

// values says whether a data page's values are PLAIN (false) or
// dictionary indexes (true), or that the encoding is not one the chunk
// can have.
func (c *chunkPages) values(e format.Encoding, at int64) (indexed bool, err error) {
	switch {
	case e == format.Plain:
		return false, nil
	case (e == format.RLEDictionary || e == format.PlainDictionary) && c.dictRead:
		return true, nil
	}
	return false, fmt.Errorf("%w: the page at offset %d has values encoded %v (dictionary page read: %v)", errCorruptPage, at, e, c.dictRead)
}

func (c *chunkPages) v1(h *format.DataPageHeader, body []byte, size int, at int64) (ownPage, error) {
	indexed, err := c.values(h.Encoding, at)
	if err != nil {
		return ownPage{}, err
	}
	if h.RepetitionLevelEncoding != format.RLE || h.DefinitionLevelEncoding != format.RLE || h.NumValues < 0 {
		return ownPage{}, fmt.Errorf("%w: the page at offset %d has encodings %v/%v/%v, the chunk's footer says PLAIN and RLE", errCorruptPage, at, h.Encoding, h.RepetitionLevelEncoding, h.DefinitionLevelEncoding)
	}
	v, data, out, err := c.decompressSegs(body, size, at)
	if err != nil {
		return ownPage{}, err
	}
	p := ownPage{n: int(h.NumValues), indexed: indexed, out: out, inBody: v != nil || out == nil}
	if v != nil {
		// The levels (a few hundred bytes) gathered; the values left
		// where they are.
		off, lv := 0, c.lvl[:0]
		var ends [2]int
		for k := range ends {
			if v.n-off < 4 {
				return p, fmt.Errorf("%w: the levels of the page at offset %d are cut short", errCorruptPage, at)
			}
			var b4 [4]byte
			n := binary.LittleEndian.Uint32(v.gather(b4[:0], off, 4))
			if uint64(n) > uint64(v.n-off-4) {
				return p, fmt.Errorf("%w: the levels of the page at offset %d are cut short", errCorruptPage, at)
			}
			lv = v.gather(lv, off+4, int(n))
			off, ends[k] = off+4+int(n), len(lv)
		}
		c.lvl = lv
		p.reps, p.defs = lv[:ends[0]:ends[0]], lv[ends[0]:ends[1]:ends[1]]
		p.setSegs(v.from(off))
		return p, nil
	}
	for _, lv := range []*[]byte{&p.reps, &p.defs} {
		if len(data) < 4 {
			return p, fmt.Errorf("%w: the levels of the page at offset %d are cut short", errCorruptPage, at)
		}
		n := binary.LittleEndian.Uint32(data)
		if uint64(n) > uint64(len(data)-4) {
			return p, fmt.Errorf("%w: the levels of the page at offset %d are cut short", errCorruptPage, at)
		}
		*lv, data = data[4:4+n], data[4+n:]
	}
	p.vals = data
	return p, nil
}

func (c *chunkPages) v2(h *format.DataPageHeaderV2, body []byte, size int, at int64) (ownPage, error) {
	indexed, err := c.values(h.Encoding, at)
	if err != nil {
		return ownPage{}, err
	}
	rl, dl := int(h.RepetitionLevelsByteLength), int(h.DefinitionLevelsByteLength)
	if h.NumValues < 0 || rl < 0 || dl < 0 || rl+dl > len(body) || rl+dl > size {
		return ownPage{}, fmt.Errorf("%w: the page at offset %d (v2) has encoding %v and level lengths %d/%d of %d bytes", errCorruptPage, at, h.Encoding, rl, dl, len(body))
	}
	p := ownPage{n: int(h.NumValues), reps: body[:rl], defs: body[rl : rl+dl], indexed: indexed, inBody: true}
	p.vals = body[rl+dl:]
	if !h.IsCompressed.Valid || h.IsCompressed.V {
		v, data, out, err := c.decompressSegs(p.vals, size-rl-dl, at)
		if err != nil {
			return ownPage{}, err
		}
		p.out, p.inBody = out, v != nil || out == nil
		if v != nil {
			p.setSegs(v.from(0))
		} else {
			p.vals = data
		}
	}
	return p, nil
}

// setSegs sets the page's values: segs, or vals when there is one.
func (p *ownPage) setSegs(segs [][]byte) {
	p.vals, p.segs = nil, nil
	switch len(segs) {
	case 0:
		p.vals = []byte{}
	case 1:
		p.vals = segs[0]
	default:
		p.segs = segs
	}
}

// valLen is the length of the page's values.
func (p *ownPage) valLen() int {
	n := len(p.vals)
	for _, s := range p.segs {
		n += len(s)
	}
	return n
}

// valBytes appends the values' bytes [off, off+n) to dst.
func (p *ownPage) valBytes(dst []byte, off, n int) []byte {
	if p.segs == nil {
		return append(dst, p.vals[off:off+n]...)
	}
	for _, s := range p.segs {
		if n == 0 {
			break
		}
		if off >= len(s) {
			off -= len(s)
			continue
		}
		k := min(n, len(s)-off)
		dst = append(dst, s[off:off+k]...)
		off, n = 0, n-k
	}
	return dst
}

// flatten makes the page's values one slice (copied into a buffer of
// the chunk's when they are in segments), for the readers that need
// them so: dictionary indexes, pages that are not whole rows.
func (c *chunkPages) flatten(p *ownPage) {
	if p.segs != nil {
		c.flat = p.valBytes(c.flat[:0], 0, p.valLen())
		p.vals, p.segs = c.flat, nil
	}
}

// uniformRows reports how many rows the page holds when its levels say it
// is whole rows of w values each, none null: every repetition level is 0
// at a multiple of w and 1 elsewhere, every definition level is maxDef,
// and the n levels are a multiple of w. It walks the encoded runs, not
// the levels: a run of ones inside a row is checked at once, bit-packed
// ones a byte at a time. 0 when the page is anything else (the caller
// expands the levels then).
func uniformRows(p *ownPage, w, maxDef int) int {
	if w <= 0 || p.n == 0 || p.n%w != 0 || maxDef > 255 {
		return 0
	}
	if !uniformDefs(p.defs, bits.Len(uint(maxDef)), p.n, byte(maxDef)) || !uniformReps(p.reps, p.n, w) {
		return 0
	}
	return p.n / w
}

// run reads the header of the next run of an RLE/bit-packed hybrid
// stream: an RLE run of count levels of one value (in the byte that
// follows), or count groups of 8 bit-packed levels. ok is false when b
// ends or the run is empty.
func run(b []byte) (rest []byte, rle bool, count uint64, ok bool) {
	h, k := binary.Uvarint(b)
	if k <= 0 || h>>1 == 0 {
		return nil, false, 0, false
	}
	return b[k:], h&1 == 0, h >> 1, true
}

// uniformDefs reports whether the first n levels of the stream b (bit
// width bw ≤ 8) are all v.
func uniformDefs(b []byte, bw, n int, v byte) bool {
	if bw < 1 || bw > 8 {
		return false
	}
	var group [8]byte // 8 levels of v, bit-packed
	for i := 0; i < 8; i++ {
		for k := 0; k < bw; k++ {
			if v>>k&1 != 0 {
				bit := i*bw + k
				group[bit/8] |= 1 << (bit % 8)
			}
		}
	}
	for pos := 0; pos < n; {
		var rle, ok bool
		var cnt uint64
		if b, rle, cnt, ok = run(b); !ok {
			return false
		}
		if rle {
			if len(b) < 1 || b[0] != v {
				return false
			}
			b = b[1:]
			pos += int(min(cnt, uint64(n-pos)))
			continue
		}
		if cnt > uint64(len(b)/bw) {
			return false
		}
		packed := b[:int(cnt)*bw]
		b = b[len(packed):]
		for ; len(packed) > 0 && pos < n; packed, pos = packed[bw:], pos+8 {
			if pos+8 <= n {
				if string(packed[:bw]) != string(group[:bw]) {
					return false
				}
				continue
			}
			for i := 0; pos+i < n; i++ { // the last levels; the rest is padding
				bit := i * bw
				x := uint16(packed[bit/8])
				if bit/8+1 < bw {
					x |= uint16(packed[bit/8+1]) << 8
				}
				if byte(x>>(bit%8))&(1<<bw-1) != v {
					return false
				}
			}
		}
	}
	return true
}

// uniformReps reports whether the first n repetition levels (bit width 1)
// of the stream b are 0 at every multiple of w and 1 elsewhere.
func uniformReps(b []byte, n, w int) bool {
	for pos := 0; pos < n; {
		var rle, ok bool
		var cnt uint64
		if b, rle, cnt, ok = run(b); !ok {
			return false
		}
		if rle {
			if len(b) < 1 {
				return false
			}
			k := int(min(cnt, uint64(n-pos)))
			switch v := b[0]; {
			case v == 1 && pos%w != 0 && pos%w+k <= w:
			case v == 0 && pos%w == 0 && (k == 1 || w == 1):
			default:
				return false
			}
			b = b[1:]
			pos += k
			continue
		}
		if cnt > uint64(len(b)) {
			return false
		}
		packed := b[:cnt]
		b = b[cnt:]
		for _, x := range packed {
			if pos >= n {
				break
			}
			if pos%w != 0 && pos%w+8 <= w && pos+8 <= n {
				if x != 0xFF {
					return false
				}
				pos += 8
				continue
			}
			for i := 0; i < 8 && pos < n; i, pos = i+1, pos+1 {
				if want := byte(min(pos%w, 1)); x>>i&1 != want {
					return false
				}
			}
		}
	}
	return true
}

// expand decodes the page's levels into bytes (reps, defs reused).
func expand(p *ownPage, maxDef int, reps, defs []byte) ([]byte, []byte, error) {
	var err error
	if reps, err = (&rle.Encoding{BitWidth: 1}).DecodeLevels(reps[:0], p.reps); err != nil {
		return nil, nil, err
	}
	if defs, err = (&rle.Encoding{BitWidth: bits.Len(uint(maxDef))}).DecodeLevels(defs[:0], p.defs); err != nil {
		return nil, nil, err
	}
	if len(reps) < p.n || len(defs) < p.n {
		return nil, nil, errCorruptPage
	}
	return reps[:p.n], defs[:p.n], nil
}

// lookup appends the page's first n dictionary-indexed values to dst.
func (c *chunkPages) lookup(dst []float32, p *ownPage, n int, idx []int32) ([]float32, []int32, error) {
	if len(p.vals) == 0 || p.vals[0] > 32 {
		return dst, idx, fmt.Errorf("%w: dictionary indexes of bit width %v", errCorruptPage, p.vals[:min(1, len(p.vals))])
	}
	idx, err := (&rle.DictionaryEncoding{}).DecodeInt32(idx[:0], p.vals)
	if err != nil || len(idx) < n {
		return dst, idx, fmt.Errorf("%w: %d dictionary indexes for %d values (%v)", errCorruptPage, len(idx), n, err)
	}
	for _, k := range idx[:n] {
		if k < 0 || int(k) >= len(c.dict) {
			return dst, idx, fmt.Errorf("%w: dictionary index %d of %d values", errCorruptPage, k, len(c.dict))
		}
		dst = append(dst, c.dict[k])
	}
	return dst, idx, nil
}
