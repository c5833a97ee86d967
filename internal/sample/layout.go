package sample

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"io"
	"os"

	"github.com/parquet-go/parquet-go"
	"github.com/parquet-go/parquet-go/encoding/thrift"
	"github.com/parquet-go/parquet-go/format"
)

// pyarrowLayout copies the Parquet file in (written by parquet-go) to w
// in the layout pyarrow writes by default, which is what Hugging Face
// datasets are: page headers without a CRC (pyarrow's
// write_page_checksum is off by default; parquet-go always writes one)
// and no page index (write_page_index is off too). The pages themselves
// are copied as they are, so write them as data page v1 to match
// (parquet.DataPageVersion(1)). Offsets and sizes in the footer follow
// the shorter headers.
func pyarrowLayout(in *os.File, w io.Writer) error {
	st, err := in.Stat()
	if err != nil {
		return err
	}
	pf, err := parquet.OpenFile(in, st.Size(), parquet.SkipPageIndex(true), parquet.SkipBloomFilters(true))
	if err != nil {
		return err
	}
	md := *pf.Metadata()
	bw := bufio.NewWriterSize(w, 1<<20)
	var at int64
	write := func(b []byte) error {
		n, err := bw.Write(b)
		at += int64(n)
		return err
	}
	if err := write([]byte("PAR1")); err != nil {
		return err
	}
	proto := &thrift.CompactProtocol{}
	rgs := make([]format.RowGroup, len(md.RowGroups))
	copy(rgs, md.RowGroups)
	md.RowGroups = rgs
	for i := range md.RowGroups {
		rg := &md.RowGroups[i]
		cols := make([]format.ColumnChunk, len(rg.Columns))
		copy(cols, rg.Columns)
		rg.Columns = cols
		rgStart, rgSize := at, int64(0)
		for j := range rg.Columns {
			cc := &rg.Columns[j]
			m := &cc.MetaData
			off := m.DataPageOffset
			if m.DictionaryPageOffset > 0 && m.DictionaryPageOffset < off {
				off = m.DictionaryPageOffset
			}
			end := off + m.TotalCompressedSize
			start := at
			newData, newDict := int64(-1), int64(0)
			for off < end {
				// A header is a few dozen bytes; 64 KiB holds any real one.
				hb := make([]byte, min(64<<10, end-off))
				if _, err := in.ReadAt(hb, off); err != nil && err != io.EOF {
					return err
				}
				r := &countReader{b: hb}
				var h format.PageHeader
				if err := thrift.NewDecoder(proto.NewReader(r)).Decode(&h); err != nil {
					return fmt.Errorf("page header at %d: %w", off, err)
				}
				body := make([]byte, h.CompressedPageSize)
				if _, err := in.ReadAt(body, off+int64(r.n)); err != nil {
					return err
				}
				off += int64(r.n) + int64(h.CompressedPageSize)
				h.CRC = 0
				nh, err := thrift.Marshal(proto, &h)
				if err != nil {
					return err
				}
				if h.Type == format.DictionaryPage {
					newDict = at
				} else if newData < 0 {
					newData = at
				}
				if err := write(nh); err != nil {
					return err
				}
				if err := write(body); err != nil {
					return err
				}
			}
			m.DataPageOffset, m.DictionaryPageOffset = newData, newDict
			m.TotalCompressedSize = at - start
			m.IndexPageOffset = 0
			cc.FileOffset = start
			cc.OffsetIndexOffset, cc.OffsetIndexLength, cc.ColumnIndexOffset, cc.ColumnIndexLength = 0, 0, 0, 0
			rgSize += at - start
		}
		rg.FileOffset, rg.TotalCompressedSize = rgStart, rgSize
	}
	footer, err := thrift.Marshal(proto, &md)
	if err != nil {
		return err
	}
	if err := write(footer); err != nil {
		return err
	}
	if err := write(binary.LittleEndian.AppendUint32(nil, uint32(len(footer)))); err != nil {
		return err
	}
	if err := write([]byte("PAR1")); err != nil {
		return err
	}
	return bw.Flush()
}

// countReader reads b, counting the bytes read.
type countReader struct {
	b []byte
	n int
}

func (r *countReader) Read(p []byte) (int, error) {
	if r.n >= len(r.b) {
		return 0, io.EOF
	}
	k := copy(p, r.b[r.n:])
	r.n += k
	return k, nil
}

func (r *countReader) ReadByte() (byte, error) {
	if r.n >= len(r.b) {
		return 0, io.EOF
	}
	r.n++
	return r.b[r.n-1], nil
}
