// Package parquet is the format plugin for Parquet tables: payload
// columns (nested values included), an id column, and vector columns
// (list<float|double|half>). Files are opened from their footer and read
// by row group and page, so under a row limit a url: source is read in
// place by HTTP Range rather than downloaded.
package parquet

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"unsafe"

	"github.com/snappipe/snappipe/internal/bufpool"
	"github.com/snappipe/snappipe/internal/finite"
	"github.com/snappipe/snappipe/internal/pq"
	"github.com/snappipe/snappipe/pipeline"
	"github.com/snappipe/snappipe/pipeline/config"
)

// Format is the parquet format.
type Format struct{}

func init() { pipeline.RegisterFormat(Format{}) }

func (Format) Name() string         { return "parquet" }
func (Format) Extensions() []string { return []string{".parquet"} }
func (Format) Table() bool          { return true }
func (Format) Options() []config.FormatOption {
	return []config.FormatOption{{Key: "json_vectors", Doc: "Comma-separated string columns that hold a vector as JSON text (\"[0.12, -0.5, ...]\", the layout of Qdrant/wolt-food-clip); they are parsed into vectors."}}
}
func (Format) Prefixable() bool { return false }

// Probe reads the footer (small reads: r may be remote).
func (Format) Probe(r io.ReaderAt, size, avail int64, src *config.Source, name string) (pipeline.FormatFile, error) {
	if avail < size {
		return nil, fmt.Errorf("parquet needs the whole file (its footer is at the end); %d of %d bytes present", avail, size)
	}
	// Remote: small Range reads for the footer and pages. Local: 64 KiB,
	// below a page's usual size, so a page's bytes are read straight into
	// the page buffer rather than copied through the read buffer.
	buf := 32 << 10
	if _, local := r.(*os.File); local {
		buf = 64 << 10
	}
	pf, err := pq.OpenBuffered(r, size, name, buf)
	if err != nil {
		return nil, err
	}
	f := &File{pf: pf}
	if src != nil {
		for _, c := range strings.Split(src.Option("json_vectors"), ",") {
			if c = strings.TrimSpace(c); c != "" {
				f.jsonCols = append(f.jsonCols, c)
			}
		}
	}
	return f, nil
}

// File is an opened Parquet file.
type File struct {
	pf       *pq.File
	jsonCols []string // string columns holding JSON-text vectors
}

func (f *File) Describe() string          { return f.pf.Describe() }
func (f *File) Rows() int64               { return f.pf.NumRows() }
func (f *File) Columns() []string         { return f.pf.Columns() }
func (f *File) PrefixBytes(n int64) int64 { return -1 }

// Open positions a reader at start; vector widths come from the first row
// used.
func (f *File) Open(sel pipeline.Selection, start, end int64) (pipeline.RowReader, error) {
	r, err := f.pf.NewReader(pq.Selection{Vectors: sel.Vectors, JSONVectors: f.jsonCols, ID: sel.ID, Payload: sel.Payload, AllPayload: sel.AllPayload, Exclude: sel.Exclude,
		Multi: sel.Multi, Sparse: sel.Sparse, PayloadColumns: true},
		min(start, f.pf.NumRows()))
	if err != nil {
		return nil, err
	}
	rr := &rows{r: r, sel: sel, widths: map[string]int{}}
	if len(sel.Vectors)+len(sel.Multi) > 0 && start < end {
		// The first row is read now for the widths; its payload waits in
		// a one-row block of its own.
		var first pipeline.PayloadBuilder
		first.Reset(r.PayloadKeys(), 1)
		rr.pending.PayloadTo = &first
		err := r.Next(&rr.pending)
		rr.pendingPayload, rr.pending.PayloadTo = first.Finish(), nil
		if err != nil {
			r.Close()
			return nil, err
		}
		rr.havePending = true
		for c, v := range rr.pending.Vectors {
			rr.widths[c] = len(v)
		}
		for _, c := range sel.Multi {
			rr.widths[c] = r.MultiWidth(c)
		}
	}
	return rr, nil
}

type rows struct {
	r           *pq.Reader
	sel         pipeline.Selection
	widths      map[string]int
	pending     pq.Row
	havePending bool
	scratch     pq.Row
	before      []int // per vector column: the block's length before a row
	// payload builds each block's payload; pendingPayload is the first
	// row's, read by Open.
	payload        pipeline.PayloadBuilder
	pendingPayload *pipeline.PayloadBlock
}

func (rr *rows) Widths() map[string]int { return rr.widths }
func (rr *rows) Close() error           { return rr.r.Close() }

// Read fills blk.N rows: payloads, ids and vectors as selected.
func (rr *rows) Read(blk *pipeline.RowBlock) error {
	payload := rr.sel.AllPayload || len(rr.sel.Payload) > 0
	keys := rr.r.PayloadKeys()
	if payload {
		rr.payload.Reset(keys, blk.N)
		defer func() { blk.Payload = rr.payload.Finish() }()
	}
	if payload && rr.r.PayloadOnly() {
		// Payload only (LAION's metadata beside .npy vectors): the block
		// is read column by column.
		got, err := rr.r.ReadPayloads(blk.N, &rr.payload)
		if errors.Is(err, io.EOF) || err == nil && got < blk.N {
			return fmt.Errorf("file ended at row %d", blk.Start+int64(got))
		}
		return err
	}
	if rr.sel.ID != "" {
		blk.IDs = make([]pipeline.PointID, 0, blk.N)
	}
	if len(rr.sel.Vectors) > 0 && rr.r.LendsVectors() {
		return rr.readLent(blk, payload)
	}
	if len(rr.sel.Vectors) > 0 {
		bufs := make([]*[]float32, len(rr.sel.Vectors))
		blk.Vectors = make(map[string][]float32, len(rr.sel.Vectors))
		for k, c := range rr.sel.Vectors {
			bufs[k] = bufpool.Floats.Get(blk.N * rr.widths[c])
			blk.Vectors[c] = (*bufs[k])[:0]
		}
		defer func() {
			for k, c := range rr.sel.Vectors {
				*bufs[k] = blk.Vectors[c][:0] // the buffer a row may have grown into
			}
			blk.Release = func() {
				for _, bp := range bufs {
					bufpool.Floats.Put(bp)
				}
			}
		}()
	}
	if len(rr.sel.Multi) > 0 {
		blk.Multi = map[string]*pipeline.MultiColumn{}
		for _, c := range rr.sel.Multi {
			blk.Multi[c] = &pipeline.MultiColumn{Width: rr.widths[c], Offsets: make([]int, 1, blk.N+1)}
		}
	}
	if len(rr.sel.Sparse) > 0 {
		blk.Sparse = map[pipeline.SparsePair]*pipeline.SparseColumn{}
		for _, p := range rr.sel.Sparse {
			blk.Sparse[p] = &pipeline.SparseColumn{Offsets: make([]int, 1, blk.N+1)}
		}
	}
	// Rows after the first are read straight into the block's vector
	// buffers (AppendVectors): no copy per row.
	sc := &rr.scratch
	sc.AppendVectors = true
	if payload {
		sc.PayloadTo = &rr.payload
	}
	if len(rr.sel.Vectors) > 0 && sc.Vectors == nil {
		sc.Vectors = map[string][]float32{}
	}
	readAhead := payload && rr.r.HasFlatPayload()
	// When every vector column is read by typed pages, the rows up to
	// the end of a row group are read column by column: the flat payload
	// (ReadAhead) and the vectors (ReadVectorsAhead), a page's rows at
	// once; Next then reads what is left of each row, if anything.
	typed := len(rr.sel.Vectors) > 0 && rr.r.TypedVectors()
	if typed {
		// ReadVectorsAhead looks for NaN/±Inf as it copies (while the
		// values are in the cache): the decode stage need not.
		blk.NonFinite = make(map[string]int, len(rr.sel.Vectors))
		for _, c := range rr.sel.Vectors {
			blk.NonFinite[c] = -1
		}
	}
	ahead := 0 // rows read ahead that Next has still to finish
	for i := 0; i < blk.N; i++ {
		if rr.havePending {
			rr.havePending = false
			row := &rr.pending
			for _, c := range rr.sel.Vectors {
				blk.Vectors[c] = append(blk.Vectors[c], row.Vectors[c]...)
				if typed && blk.NonFinite[c] < 0 {
					blk.NonFinite[c] = finite.First(blk.Vectors[c])
				}
			}
			if payload {
				rr.payload.AddRow(rr.pendingPayload, 0)
			}
			rr.addRow(blk, row)
			continue
		}
		vecsAhead := false
		if ahead == 0 && (readAhead || typed) {
			m, err := rr.ahead(blk, i, readAhead)
			if err != nil {
				return err
			}
			if typed {
				if err := rr.r.ReadVectorsAhead(m, blk.Vectors, rr.widths, blk.NonFinite); err != nil {
					return err
				}
				if !rr.r.NeedsNext() {
					rr.r.SkipAhead(m)
					i += m - 1
					continue
				}
			}
			ahead = m
		}
		if ahead > 0 {
			ahead--
			vecsAhead = typed
		}
		if err := rr.next(blk, i, vecsAhead); err != nil {
			return err
		}
	}
	return nil
}

// readLent reads a block whose every vector column is read by typed
// pages and nothing needs Next (the flat payload is read ahead): the
// vectors are borrowed from the pages they were decompressed into
// (blk.Runs), with no copy; the pages go back when the block is
// released. Rows the pages cannot lend (the first row, read by Open; a
// page's last row, which may go on in the next) are copied into a buffer
// of the block's.
func (rr *rows) readLent(blk *pipeline.RowBlock, payload bool) error {
	lent := &pq.Lent{}
	own := make(map[string]*[]byte, len(rr.sel.Vectors))
	blk.Runs = make(map[string]*pipeline.Runs, len(rr.sel.Vectors))
	blk.NonFinite = make(map[string]int, len(rr.sel.Vectors))
	for _, c := range rr.sel.Vectors {
		w := rr.widths[c]
		bp := bufpool.Bytes.Get(4 * blk.N * w)
		*bp = (*bp)[:0]
		own[c] = bp
		blk.Runs[c] = &pipeline.Runs{Width: w}
		blk.NonFinite[c] = -1
	}
	blk.Release = func() {
		lent.Release()
		for _, bp := range own {
			bufpool.Bytes.Put(bp)
		}
	}
	i := 0
	if rr.havePending {
		rr.havePending = false
		row := &rr.pending
		for _, c := range rr.sel.Vectors {
			v, bp, r := row.Vectors[c], own[c], blk.Runs[c]
			if len(v) != r.Width {
				return fmt.Errorf("row %d: vector column %q has %d values, earlier rows have %d", blk.Start, c, len(v), r.Width)
			}
			from := len(*bp)
			*bp = append(*bp, unsafe.Slice((*byte)(unsafe.Pointer(unsafe.SliceData(v))), 4*len(v))...)
			r.Add((*bp)[from:])
			if j := finite.First(v); j >= 0 {
				blk.NonFinite[c] = j
			}
		}
		if payload {
			rr.payload.AddRow(rr.pendingPayload, 0)
		}
		rr.addRow(blk, row)
		i = 1
	}
	readAhead := payload && rr.r.HasFlatPayload()
	for i < blk.N {
		m, err := rr.ahead(blk, i, readAhead)
		if err != nil {
			return err
		}
		if err := rr.r.ReadVectorsLent(m, blk.Runs, own, rr.widths, blk.NonFinite, lent); err != nil {
			return err
		}
		rr.r.SkipAhead(m)
		i += m
	}
	return nil
}

// ahead is how many of blk's rows from row i are read at once, up to the
// end of the row group: the flat payload read ahead first, when
// readAhead says so.
func (rr *rows) ahead(blk *pipeline.RowBlock, i int, readAhead bool) (int, error) {
	m := blk.N - i
	var err error
	if readAhead {
		m, err = rr.r.ReadAhead(m, &rr.payload)
	} else {
		var left int64
		left, err = rr.r.RowsInGroup()
		m = int(min(int64(m), left))
	}
	if errors.Is(err, io.EOF) {
		return 0, fmt.Errorf("file ended at row %d", blk.Start+int64(i))
	}
	return m, err
}

// next reads row i of blk with Next: its vectors straight into the
// block's buffers (no copy per row) unless vecsAhead says they were read
// ahead, and the rest of what the selection asks for.
func (rr *rows) next(blk *pipeline.RowBlock, i int, vecsAhead bool) error {
	sc := &rr.scratch
	before := rr.before[:0]
	for _, c := range rr.sel.Vectors {
		before = append(before, len(blk.Vectors[c]))
		sc.Vectors[c] = blk.Vectors[c]
	}
	rr.before = before
	err := rr.r.Next(sc)
	for _, c := range rr.sel.Vectors {
		blk.Vectors[c] = sc.Vectors[c]
	}
	if err != nil {
		if errors.Is(err, io.EOF) {
			return fmt.Errorf("file ended at row %d", blk.Start+int64(i))
		}
		return err
	}
	for k, c := range rr.sel.Vectors {
		if vecsAhead {
			break
		}
		if n := len(blk.Vectors[c]) - before[k]; n != rr.widths[c] {
			return fmt.Errorf("row %d: vector column %q has %d values, earlier rows have %d", blk.Start+int64(i), c, n, rr.widths[c])
		}
	}
	rr.addRow(blk, sc)
	return nil
}

// addRow appends row's id, multivectors and sparse vectors to blk.
func (rr *rows) addRow(blk *pipeline.RowBlock, row *pq.Row) {
	if rr.sel.ID != "" {
		blk.IDs = append(blk.IDs, row.ID)
	}
	for _, c := range rr.sel.Multi {
		m := blk.Multi[c]
		m.Data = append(m.Data, row.Multi[c]...)
		m.Offsets = append(m.Offsets, len(m.Data)/max(m.Width, 1))
	}
	for _, p := range rr.sel.Sparse {
		sc, sv := blk.Sparse[p], row.Sparse[p]
		sc.Indices = append(sc.Indices, sv.Indices...)
		sc.Values = append(sc.Values, sv.Values...)
		sc.Offsets = append(sc.Offsets, len(sc.Indices))
	}
}

// Inspect describes the columns for `snappipe init`.
func (f *File) Inspect() ([]pipeline.ColumnInfo, error) {
	cols, err := f.pf.Inspect()
	if err != nil {
		return nil, err
	}
	out := make([]pipeline.ColumnInfo, len(cols))
	for i, c := range cols {
		out[i] = pipeline.ColumnInfo{Name: c.Name, Vector: c.Vector && !c.VaryingWidth || c.JSONVector, Width: c.Width, VaryingWidth: c.VaryingWidth, Half: c.Half, ID: c.ID, JSONText: c.JSONVector,
			Multi: c.Multi, SparseValues: c.SparseValues, SparsePart: c.SparsePart}
	}
	return out, nil
}

var _ pipeline.Inspector = (*File)(nil)
