// Package decode is the stage that streams one source's rows (.npy vectors
// or Parquet payload/vector/id columns) in blocks aligned to upload batches.
package decode

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"sync"

	"github.com/qdrant/go-client/qdrant"
	"github.com/snappipe/snappipe/internal/httpget"
	"github.com/snappipe/snappipe/internal/httpra"
	"github.com/snappipe/snappipe/internal/npy"
	"github.com/snappipe/snappipe/internal/pq"
	"github.com/snappipe/snappipe/pipeline"
	"github.com/snappipe/snappipe/stages/download"
)

// Kind is the stage kind.
const Kind = pipeline.KindDecode

// Decode streams one source.
type Decode struct {
	node string
	name string
	src  *pipeline.Source
	rt   *pipeline.Runtime
	// What this source supplies.
	vectorCols []string // parquet list columns used as vectors
	npyVector  bool
	payload    *pipeline.PayloadConfig
	idColumn   string
}

// New is the stage factory.
func New(n *pipeline.Node, rt *pipeline.Runtime) (pipeline.Stage, error) {
	c := rt.Config
	src := c.Sources[n.Source]
	if src == nil {
		return nil, fmt.Errorf("unknown source %q", n.Source)
	}
	d := &Decode{node: n.ID, name: n.Source, src: src, rt: rt}
	for _, vn := range pipeline.SortedKeys(c.Points.Vectors) {
		vs := c.Points.Vectors[vn]
		if vs.Source != n.Source {
			continue
		}
		if src.Format == pipeline.FormatNpy {
			d.npyVector = true
		} else if !slices.Contains(d.vectorCols, vs.Column) {
			d.vectorCols = append(d.vectorCols, vs.Column)
		}
	}
	if p := c.Points.Payload; p != nil && p.Source == n.Source {
		d.payload = p
		d.idColumn = c.Points.ID.Column
	}
	return d, nil
}

// ResumeRow is the first row a run must decode: the start of the first
// unacknowledged batch.
func ResumeRow(rt *pipeline.Runtime) int64 {
	st := rt.State.Snapshot()
	if st.Upsert.BatchSize != rt.Config.Upload.BatchSize {
		return 0
	}
	return st.Upsert.Watermark * int64(st.Upsert.BatchSize)
}

// Run opens the file, emits a SourceHeader, then RowBlocks.
func (d *Decode) Run(ctx context.Context, sio pipeline.StageIO) error {
	path := d.rt.Config.Resolve(d.src.Path)
	remote := ""
	for _, up := range sio.Inputs() {
		e, ok, err := sio.Recv(ctx, up)
		if err != nil {
			return err
		}
		if !ok {
			return nil // upstream failed; the runner reports why
		}
		fr, isFile := e.Payload.(*pipeline.FileReady)
		if !isFile {
			return fmt.Errorf("unexpected %T from %s", e.Payload, up)
		}
		path, remote = fr.Path, fr.URL
	}
	if st := d.rt.State.Snapshot(); st.Upsert.Done && st.Upsert.Rows >= 0 {
		// Every row is loaded already: report what the checkpoint knows
		// instead of opening (or re-fetching) the file.
		return sio.Emit(ctx, d.loadedHeader(st.Upsert.Rows))
	}
	if remote != "" {
		return d.runRemoteParquet(ctx, sio, remote)
	}
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("source %s: %w", d.name, err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return err
	}
	switch d.src.Format {
	case pipeline.FormatNpy:
		return d.runNpy(ctx, sio, f, path)
	case pipeline.FormatParquet:
		return d.runParquet(ctx, sio, f, st.Size(), path)
	}
	return fmt.Errorf("source %s: unknown format %q", d.name, d.src.Format)
}

// loadedHeader describes a source whose rows were all upserted by an
// earlier run, with the configured widths.
func (d *Decode) loadedHeader(rows int64) *pipeline.SourceHeader {
	h := &pipeline.SourceHeader{Source: d.name, Rows: rows, Widths: map[string]int{}, Describe: "already loaded"}
	for _, vn := range pipeline.SortedKeys(d.rt.Config.Points.Vectors) {
		vs := d.rt.Config.Points.Vectors[vn]
		if vs.Source == d.name {
			if vc := d.rt.Config.Collection.Vectors[vn]; vc != nil {
				h.Widths[vs.Column] = vc.Size
			}
		}
	}
	return h
}

// rowsToEmit is how many rows of a file of n rows the pipeline uses.
func (d *Decode) rowsToEmit(n int64) int64 {
	if l := d.rt.Config.Points.LimitOr(); l >= 0 && l < n {
		return l
	}
	return n
}

func (d *Decode) runNpy(ctx context.Context, sio pipeline.StageIO, f *os.File, path string) error {
	h, err := npy.ReadHeader(f)
	if err != nil {
		return fmt.Errorf("source %s (%s): %w", d.name, path, err)
	}
	st, _ := f.Stat()
	// Only the rows used must be present (a row-limit prefix is enough).
	if want := h.DataOffset + d.rowsToEmit(h.Rows())*h.RowBytes(); st.Size() < want {
		return fmt.Errorf("source %s (%s): file is truncated: header %s needs %d bytes, file has %d", d.name, path, h, h.DataOffset+h.DataSize(), st.Size())
	}
	hdr := &pipeline.SourceHeader{Source: d.name, Rows: h.Rows(), Widths: map[string]int{"": h.Width()}, Describe: h.String()}
	if err := sio.Emit(ctx, hdr); err != nil {
		return err
	}
	r := npy.NewReader(f, h)
	total := d.rowsToEmit(h.Rows())
	bs := int64(d.rt.Config.Upload.BatchSize)
	w := h.Width()
	// Block buffers come back through Release once their batch is
	// acknowledged, so a long shard allocates a bounded set of them.
	pool := &sync.Pool{New: func() any { b := make([]float32, int(bs)*w); return &b }}
	for start := ResumeRow(d.rt); start < total; start += bs {
		n := int(min(bs, total-start))
		bp := pool.Get().(*[]float32)
		buf := (*bp)[:n*w]
		if err := r.ReadRows(start, n, buf); err != nil {
			return fmt.Errorf("source %s (%s): %w", d.name, path, err)
		}
		blk := &pipeline.RowBlock{Source: d.name, Start: start, N: n, Vectors: map[string][]float32{"": buf}, Release: func() { pool.Put(bp) }}
		if err := sio.Emit(ctx, blk); err != nil {
			return err
		}
	}
	return nil
}

// runRemoteParquet reads a Parquet source in place over HTTP Range
// requests: the footer, then only the pages of the needed columns that hold
// the first rows (used under a row limit).
func (d *Decode) runRemoteParquet(ctx context.Context, sio pipeline.StageIO, url string) error {
	ra, err := httpra.Open(ctx, d.rt.HTTP, url, download.AuthHeader(), 64<<10)
	if err != nil {
		return fmt.Errorf("source %s: %w", d.name, err)
	}
	defer func() {
		d.rt.AddFetched(ra.Fetched())
		d.rt.State.Update(func(s *pipeline.State) {
			if ds := s.Downloads[d.name]; ds != nil {
				ds.Size, ds.ETag = ra.Size(), ra.ETag()
				ds.Bytes = max(ds.Bytes, ra.Fetched())
			}
		})
	}()
	pf, err := pq.OpenBuffered(ra, ra.Size(), httpget.Redact(url), 32<<10)
	if err != nil {
		return fmt.Errorf("source %s: %w", d.name, err)
	}
	return d.runParquetFile(ctx, sio, pf, httpget.Redact(url))
}

func (d *Decode) runParquet(ctx context.Context, sio pipeline.StageIO, f *os.File, size int64, path string) error {
	pf, err := pq.Open(f, size, path)
	if err != nil {
		return fmt.Errorf("source %s: %w", d.name, err)
	}
	return d.runParquetFile(ctx, sio, pf, path)
}

func (d *Decode) runParquetFile(ctx context.Context, sio pipeline.StageIO, pf *pq.File, path string) error {
	sel := pq.Selection{Vectors: d.vectorCols, ID: d.idColumn}
	if d.payload != nil {
		if len(d.payload.Include) > 0 {
			sel.Payload = d.payload.Include
		} else {
			sel.AllPayload, sel.Exclude = true, d.payload.Exclude
		}
	}
	start := ResumeRow(d.rt)
	total := d.rowsToEmit(pf.NumRows())
	r, err := pf.NewReader(sel, min(start, pf.NumRows()))
	if err != nil {
		return fmt.Errorf("source %s: %w", d.name, err)
	}
	defer r.Close()
	hdr := &pipeline.SourceHeader{Source: d.name, Rows: pf.NumRows(), Widths: map[string]int{}, Columns: pf.Columns(), Describe: pf.Describe()}
	// Vector widths come from the first row used.
	var first pq.Row
	firstErr := error(nil)
	if len(d.vectorCols) > 0 && start < total {
		firstErr = r.Next(&first)
		if firstErr == nil {
			for c, v := range first.Vectors {
				hdr.Widths[c] = len(v)
			}
		}
	}
	if err := sio.Emit(ctx, hdr); err != nil {
		return err
	}
	if firstErr != nil {
		return fmt.Errorf("source %s (%s): %w", d.name, path, firstErr)
	}
	bs := int64(d.rt.Config.Upload.BatchSize)
	havePending := len(d.vectorCols) > 0 && start < total
	for ; start < total; start += bs {
		n := int(min(bs, total-start))
		blk := &pipeline.RowBlock{Source: d.name, Start: start, N: n}
		if err := d.fill(r, blk, hdr.Widths, &first, &havePending); err != nil {
			return fmt.Errorf("source %s (%s): %w", d.name, path, err)
		}
		if err := sio.Emit(ctx, blk); err != nil {
			return err
		}
	}
	return nil
}

// fill reads blk.N rows into blk; pending holds a row already read.
func (d *Decode) fill(r *pq.Reader, blk *pipeline.RowBlock, widths map[string]int, pending *pq.Row, havePending *bool) error {
	if d.payload != nil {
		blk.Payloads = make([]map[string]*qdrant.Value, 0, blk.N)
	}
	if d.idColumn != "" {
		blk.IDs = make([]*qdrant.PointId, 0, blk.N)
	}
	if len(d.vectorCols) > 0 {
		blk.Vectors = map[string][]float32{}
		for _, c := range d.vectorCols {
			blk.Vectors[c] = make([]float32, 0, blk.N*widths[c])
		}
	}
	for i := 0; i < blk.N; i++ {
		var row pq.Row
		if *havePending {
			row, *havePending = *pending, false
		} else if err := r.Next(&row); err != nil {
			if errors.Is(err, io.EOF) {
				return fmt.Errorf("file ended at row %d", blk.Start+int64(i))
			}
			return err
		}
		if d.payload != nil {
			blk.Payloads = append(blk.Payloads, row.Payload)
		}
		if d.idColumn != "" {
			blk.IDs = append(blk.IDs, row.ID)
		}
		for _, c := range d.vectorCols {
			v := row.Vectors[c]
			if len(v) != widths[c] {
				return fmt.Errorf("row %d: vector column %q has %d values, earlier rows have %d", blk.Start+int64(i), c, len(v), widths[c])
			}
			blk.Vectors[c] = append(blk.Vectors[c], v...)
		}
	}
	return nil
}

var _ pipeline.Stage = (*Decode)(nil)
