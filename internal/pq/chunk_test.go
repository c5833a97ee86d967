package pq

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"math/bits"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"

	"github.com/parquet-go/parquet-go"
	"github.com/parquet-go/parquet-go/encoding/rle"
	"github.com/parquet-go/parquet-go/encoding/thrift"
	"github.com/parquet-go/parquet-go/format"
)

// readBlocks reads every row of pf's column vec from start as
// formats/parquet does (ReadVectorsAhead in runs of up to bs rows), and
// returns the values, the error text and whether a chunk was read by
// chunkPages.
func readBlocks(t *testing.T, pf *File, vec string, start int64, bs int) ([]float32, string, bool) {
	t.Helper()
	r, err := pf.NewReader(Selection{Vectors: []string{vec}}, start)
	if err != nil {
		return nil, err.Error(), false
	}
	defer r.Close()
	var row Row
	if err := r.Next(&row); err != nil {
		return nil, err.Error(), false
	}
	out := slices.Clone(row.Vectors[vec])
	widths := map[string]int{vec: len(out)}
	own := false
	dst := map[string][]float32{}
	for {
		left, err := r.RowsInGroup()
		if errors.Is(err, io.EOF) {
			return out, "", own
		}
		if err != nil {
			return out, err.Error(), own
		}
		for _, tc := range r.typed {
			own = own || tc.own != nil
		}
		m := int(min(int64(bs), left))
		dst[vec] = dst[vec][:0]
		err = r.ReadVectorsAhead(m, dst, widths, nil)
		out = append(out, dst[vec]...)
		if err != nil {
			return out, err.Error(), own
		}
		r.SkipAhead(m)
	}
}

// chunkPages reads what parquet-go's pages read, value for value and
// error for error: pyarrow's files (v1 plain, v2 with CRCs and a
// dictionary, fixed-size lists), parquet-go's with tiny pages (rows that
// span pages) and with bad rows, from the start of the file (where it is
// used) in runs of several sizes.
func TestOwnPagesMatchParquetGo(t *testing.T) {
	type file struct {
		name string
		b    []byte
	}
	var files []file
	for _, n := range []string{"hf_v1.parquet", "hf_v2_dict.parquet", "hf_fixed.parquet"} {
		b, err := os.ReadFile(filepath.Join("../../testdata/vectors", n))
		if err != nil {
			t.Fatal(err)
		}
		files = append(files, file{n, b})
	}
	for _, c := range []struct {
		width, row, pos, n int // pos -1: row has n values
		dict               bool
		v1                 bool
	}{{70, 3, 0, 0, false, false}, {70, 5, 69, 0, true, false}, {7, 2, -1, 8, false, true}, {300, 1, 150, 0, false, true}, {300, 6, -1, 299, true, true}, {16, 9, -1, 16, false, true}, {16, 9, -1, 16, true, false}} {
		var buf bytes.Buffer
		opts := []parquet.WriterOption{parquet.PageBufferSize(512), parquet.MaxRowsPerRowGroup(20)}
		if c.v1 {
			opts = append(opts, parquet.DataPageVersion(1))
		}
		var w interface{ Close() error }
		write := func(vec []*float32) {}
		if c.dict {
			gw := parquet.NewGenericWriter[vecRowDict](&buf, opts...)
			w, write = gw, func(vec []*float32) { gw.Write([]vecRowDict{{Vec: vec}}) }
		} else {
			gw := parquet.NewGenericWriter[vecRowNullable](&buf, opts...)
			w, write = gw, func(vec []*float32) { gw.Write([]vecRowNullable{{Vec: vec}}) }
		}
		for i := 0; i < 50; i++ {
			n := c.width
			if i == c.row && c.pos < 0 {
				n = c.n
			}
			vec := make([]*float32, n)
			for j := range vec {
				f := float32((i*7+j)%11) - 5 // few distinct values: a dictionary holds them
				vec[j] = &f
			}
			if i == c.row && c.pos >= 0 {
				vec[c.pos] = nil
			}
			write(vec)
		}
		w.Close()
		files = append(files, file{fmt.Sprintf("%+v", c), buf.Bytes()})
	}
	for _, f := range files {
		pf, err := Open(bytes.NewReader(f.b), int64(len(f.b)), f.name)
		if err != nil {
			t.Fatal(err)
		}
		vec := "emb"
		if _, ok := byName(pf, "vec"); ok {
			vec = "vec"
		}
		for _, bs := range []int{1, 3, 64, 1000} {
			useOwnPages = false
			want, wantErr, _ := readBlocks(t, pf, vec, 0, bs)
			useOwnPages = true
			got, gotErr, own := readBlocks(t, pf, vec, 0, bs)
			if !own {
				t.Fatalf("%s: chunkPages did not read the file", f.name)
			}
			if gotErr != wantErr || len(got) != len(want) {
				t.Fatalf("%s in runs of %d: %d values, error %q; parquet-go's pages: %d values, %q", f.name, bs, len(got), gotErr, len(want), wantErr)
			}
			for i := range want {
				if math.Float32bits(got[i]) != math.Float32bits(want[i]) {
					t.Fatalf("%s in runs of %d: value %d is %v, want %v", f.name, bs, i, got[i], want[i])
				}
			}
		}
	}
}

type vecRowDict struct {
	Vec []*float32 `parquet:"vec,list,dict"`
}

func byName(pf *File, name string) (int, bool) {
	for i, c := range pf.Columns() {
		if c == name {
			return i, true
		}
	}
	return 0, false
}

// encodeLevels encodes levels (bit width bw) as an RLE/bit-packed hybrid
// stream in one of three ways: parquet-go's encoder, RLE runs only, or
// bit-packed groups only (padded with garbage past the end).
func encodeLevels(t *testing.T, levels []byte, bw int, how int, rnd *rand.Rand) []byte {
	switch how {
	case 0:
		b, err := (&rle.Encoding{BitWidth: bw}).EncodeLevels(nil, levels)
		if err != nil {
			t.Fatal(err)
		}
		return b
	case 1:
		var b []byte
		for i := 0; i < len(levels); {
			j := i
			for j < len(levels) && levels[j] == levels[i] {
				j++
			}
			b = binary.AppendUvarint(b, uint64(j-i)<<1)
			b = append(b, levels[i])
			i = j
		}
		return b
	}
	groups := (len(levels) + 7) / 8
	b := binary.AppendUvarint(nil, uint64(groups)<<1|1)
	packed := make([]byte, groups*bw)
	for i := 0; i < groups*8; i++ {
		v := byte(rnd.IntN(1 << bw)) // padding
		if i < len(levels) {
			v = levels[i]
		}
		for k := 0; k < bw; k++ {
			if v>>k&1 != 0 {
				bit := i*bw + k
				packed[bit/8] |= 1 << (bit % 8)
			}
		}
	}
	return append(b, packed...)
}

// uniformRows accepts exactly the pages whose levels are whole rows of w
// values, none null, whatever the encoding of the levels: random pages,
// most of them uniform, some with one level changed.
func TestUniformRows(t *testing.T) {
	rnd := rand.New(rand.NewPCG(1, 2))
	for iter := 0; iter < 3000; iter++ {
		w := []int{1, 2, 3, 7, 8, 9, 16, 17, 64, 100}[rnd.IntN(10)]
		maxDef := 1 + rnd.IntN(3)
		rows := 1 + rnd.IntN(12)
		n := rows * w
		reps, defs := make([]byte, n), make([]byte, n)
		for i := range reps {
			reps[i], defs[i] = byte(min(i%w, 1)), byte(maxDef)
		}
		switch rnd.IntN(4) {
		case 0:
			reps[rnd.IntN(n)] ^= 1
		case 1:
			defs[rnd.IntN(n)] = byte(rnd.IntN(maxDef))
		case 2: // a row cut short: the page ends inside it
			n -= 1 + rnd.IntN(w)
			reps, defs = reps[:max(n, 0)], defs[:max(n, 0)]
		}
		want := n > 0 && n%w == 0
		for i := 0; want && i < n; i++ {
			want = reps[i] == byte(min(i%w, 1)) && defs[i] == byte(maxDef)
		}
		p := ownPage{n: n, reps: encodeLevels(t, reps, 1, rnd.IntN(3), rnd), defs: encodeLevels(t, defs, bits.Len(uint(maxDef)), rnd.IntN(3), rnd)}
		if got := uniformRows(&p, w, maxDef); (got > 0) != want || want && got != n/w {
			t.Fatalf("iteration %d, w %d, maxDef %d, %d levels: uniformRows %d, want uniform %v (reps %v defs %v)", iter, w, maxDef, n, got, want, reps, defs)
		}
	}
}

// A page whose bytes do not match its CRC is refused by chunkPages as by
// parquet-go's pages, and no value of it is read.
func TestOwnPagesCheckCRC(t *testing.T) {
	var buf bytes.Buffer
	w := parquet.NewGenericWriter[vecRowNullable](&buf, parquet.PageBufferSize(4096))
	for i := 0; i < 30; i++ {
		vec := make([]*float32, 32)
		for j := range vec {
			f := float32(i*100 + j)
			vec[j] = &f
		}
		w.Write([]vecRowNullable{{Vec: vec}})
	}
	w.Close()
	b := buf.Bytes()
	pf, err := Open(bytes.NewReader(b), int64(len(b)), "crc")
	if err != nil {
		t.Fatal(err)
	}
	c, ok := pf.ownChunk(0, 0, nil)
	if !ok {
		t.Fatal("chunkPages does not read the file")
	}
	h, hlen, err := c.header()
	if err != nil || h.CRC == 0 {
		t.Fatalf("first page: CRC %x, %v: not the file the test is for", h.CRC, err)
	}
	b = bytes.Clone(b)
	b[c.off+int64(hlen)+int64(h.CompressedPageSize)-1] ^= 0x40 // a value's byte in the first page
	pf, err = Open(bytes.NewReader(b), int64(len(b)), "crc")
	if err != nil {
		t.Fatal(err)
	}
	for _, own := range []bool{true, false} {
		useOwnPages = own
		got, msg, _ := readBlocks(t, pf, "vec", 0, 8)
		if !strings.Contains(strings.ToLower(msg), "crc") || len(got) != 0 {
			t.Errorf("own pages %v: %d values, error %q; want a CRC error and no value", own, len(got), msg)
		}
	}
	useOwnPages = true
}

// A page header that claims far more bytes than its Snappy body can
// decompress to is refused before that size is allocated.
func TestOwnPagesRefuseAnImpossibleSnappySize(t *testing.T) {
	h := format.PageHeader{Type: format.DataPage, CompressedPageSize: 16, UncompressedPageSize: 900 << 20}
	h.DataPageHeader.Valid = true
	h.DataPageHeader.V = format.DataPageHeader{NumValues: 4, Encoding: format.Plain, DefinitionLevelEncoding: format.RLE, RepetitionLevelEncoding: format.RLE}
	hb, err := thrift.Marshal(&thrift.CompactProtocol{}, &h)
	if err != nil {
		t.Fatal(err)
	}
	b := append(append([]byte("PAR1"), hb...), make([]byte, 16+64)...)
	c := &chunkPages{r: bytes.NewReader(b), off: 4, end: int64(len(b)), codec: format.Snappy, maxDef: 1, maxPage: maxPageSize}
	c.reader = c.proto.NewReaderFromBytes(nil)
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	_, err = c.next()
	runtime.ReadMemStats(&after)
	if err == nil || !strings.Contains(err.Error(), "Snappy-compressed") {
		t.Fatalf("err = %v", err)
	}
	if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 1<<20 {
		t.Fatalf("allocated %d bytes before refusing the page", alloc)
	}
}
