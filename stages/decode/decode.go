// Package decode is the stage that streams one source's rows in blocks
// aligned to upload batches, through the source's format plugin
// (pipeline.Format): it knows no format itself.
package decode

import (
	"context"
	"fmt"
	"io"
	"math"
	"os"
	"slices"
	"strings"

	finitecheck "github.com/snappipe/snappipe/internal/finite"
	"github.com/snappipe/snappipe/internal/half"
	"github.com/snappipe/snappipe/internal/httpget"
	"github.com/snappipe/snappipe/internal/httpra"
	"github.com/snappipe/snappipe/pipeline"
	"github.com/snappipe/snappipe/pipeline/config"
	"github.com/snappipe/snappipe/stages/download"
)

// Kind is the stage kind.
const Kind = pipeline.KindDecode

// Ports are the messages this stage kind consumes and emits.
var Ports = pipeline.Ports{Consumes: []string{pipeline.MsgFile}, Emits: []string{pipeline.MsgSourceHeader, pipeline.MsgRows}}

// Decode streams one source through its format plugin.
type Decode struct {
	node   string
	name   string
	src    *config.Source
	format pipeline.Format
	rt     *pipeline.Runtime
	sel    pipeline.Selection
}

// New is the stage factory.
func New(n *pipeline.Node, rt *pipeline.Runtime) (pipeline.Stage, error) {
	c := rt.Config
	src := c.Sources[n.Source]
	if src == nil {
		return nil, fmt.Errorf("unknown source %q", n.Source)
	}
	f := pipeline.FormatByName(src.Format)
	if f == nil {
		return nil, fmt.Errorf("source %q: no format plugin %q is registered", n.Source, src.Format)
	}
	d := &Decode{node: n.ID, name: n.Source, src: src, format: f, rt: rt}
	d.sel = selection(c, n.Source)
	return d, nil
}

// selection is what source name supplies to the points: its vector
// columns (table formats), payload columns and id column.
func selection(c *config.Config, name string) pipeline.Selection {
	var sel pipeline.Selection
	if f := pipeline.FormatByName(c.Sources[name].Format); f != nil && f.Table() {
		for _, vn := range pipeline.SortedKeys(c.Points.Vectors) {
			vs := c.Points.Vectors[vn]
			if vs.Source != name {
				continue
			}
			switch {
			case c.Collection.SparseVectors[vn] != nil:
				if p := (pipeline.SparsePair{Indices: vs.Indices, Values: vs.Values}); !slices.Contains(sel.Sparse, p) {
					sel.Sparse = append(sel.Sparse, p)
				}
			case c.Collection.Vectors[vn] != nil && c.Collection.Vectors[vn].Multivector != nil:
				if !slices.Contains(sel.Multi, vs.Column) {
					sel.Multi = append(sel.Multi, vs.Column)
				}
			case !slices.Contains(sel.Vectors, vs.Column):
				sel.Vectors = append(sel.Vectors, vs.Column)
			}
		}
	}
	if p := c.Points.Payload; p != nil && p.Source == name {
		sel.ID = c.Points.ID.Column
		if len(p.Include) > 0 {
			sel.Payload = p.Include
		} else {
			sel.AllPayload, sel.Exclude = true, p.Exclude
		}
	}
	return sel
}

// Run opens the file (local, a fetched prefix, or remote in place), emits
// a SourceHeader, then RowBlocks aligned to upload batches.
func (d *Decode) Run(ctx context.Context, sio pipeline.StageIO) error {
	if l := d.rt.LayoutOf(); l.Sharded {
		return d.runShards(ctx, sio, l)
	}
	path := d.rt.Config.Resolve(d.src.Path)
	var fr *pipeline.FileReady
	for _, up := range sio.Inputs() { // a url: source has its download
		f, ok, err := pipeline.Receive[*pipeline.FileReady](ctx, sio, up)
		if err != nil {
			return err
		}
		if !ok {
			return fmt.Errorf("internal: %s ended without a file", up)
		}
		fr, path = f, f.Path
	}
	if rows, ok := d.rt.Resume.AllLoaded(); ok {
		// Every row is loaded already: report what the checkpoint knows
		// instead of opening (or re-fetching) the file.
		return sio.Emit(ctx, d.loadedHeader(rows))
	}
	ff, where, closeFile, err := d.open(ctx, fr, path, d.src.URL)
	if err != nil {
		return err
	}
	defer closeFile()
	start, total := d.rt.Resume.FirstRow(d.rt.Config.Upload.BatchSize), d.rowsToEmit(ff.Rows())
	rr, err := ff.Open(d.sel, start, total)
	if err != nil {
		return fmt.Errorf("source %s (%s): %w", d.name, where, err)
	}
	defer rr.Close()
	hdr := &pipeline.SourceHeader{Source: d.name, Rows: ff.Rows(), Widths: rr.Widths(), Columns: ff.Columns(), Describe: ff.Describe()}
	// Widths are checked before the first block is read: a wrong, huge
	// width must not allocate batch_size × width floats first.
	if err := d.checkWidths(hdr); err != nil {
		return err
	}
	if err := sio.Emit(ctx, hdr); err != nil {
		return err
	}
	bs := int64(d.rt.Config.Upload.BatchSize)
	for ; start < total; start += bs {
		blk := &pipeline.RowBlock{Source: d.name, Start: start, N: int(min(bs, total-start))}
		if err := rr.Read(blk); err != nil {
			return fmt.Errorf("source %s (%s): %w", d.name, where, err)
		}
		if !d.rt.Config.Points.AllowNonFinite {
			if err := finite(blk, hdr.Widths); err != nil {
				blk.Done()
				return fmt.Errorf("source %s (%s): %w (points.allow_non_finite: true upserts such vectors)", d.name, where, err)
			}
		}
		if err := sio.Emit(ctx, blk); err != nil {
			blk.Done()
			return err
		}
	}
	return verified(fr)
}

// verified waits, for a file decoded while it downloaded, until the
// download verified it: the stage (and so the load) ends only on a
// verified file.
func verified(fr *pipeline.FileReady) error {
	if fr == nil || fr.Stream == nil {
		return nil
	}
	final, err := fr.Stream.Wait()
	if err != nil {
		return err
	}
	fr.Path = final
	return nil
}

// open probes a file: local, a fetched prefix, or remote in place.
// origin is the URL it was downloaded from ("" for a path: source): errors
// name it, not the download cache's file.
func (d *Decode) open(ctx context.Context, fr *pipeline.FileReady, path, origin string) (pipeline.FormatFile, string, func(), error) {
	var (
		ra          io.ReaderAt
		size, avail int64
		where       = path
		closers     []func()
	)
	if origin != "" {
		where = httpget.Redact(origin)
	}
	closeAll := func() {
		for _, c := range closers {
			c()
		}
	}
	if fr != nil && fr.Stream != nil {
		// Still downloading: read as it grows (ReadAt waits for bytes).
		closers = append(closers, func() { fr.Stream.Close() })
		ra, size, avail = fr.Stream, fr.Stream.Size(), fr.Stream.Size()
	} else if fr != nil && fr.URL != "" {
		// Read in place by HTTP Range (a row limit on a format that is not
		// read from a prefix).
		hra, err := httpra.Open(ctx, d.rt.HTTP, fr.URL, download.AuthHeader(), 64<<10, httpra.IdleTimeout(d.rt.Config.Download.IdleTimeout.D()))
		if err != nil {
			return nil, "", nil, fmt.Errorf("source %s: %w", d.name, err)
		}
		closers = append(closers, func() { d.rt.AddFetched(hra.Fetched()) })
		ra, size, avail, where = hra, hra.Size(), hra.Size(), httpget.Redact(fr.URL)
	} else {
		f, err := os.Open(path)
		if err != nil {
			return nil, "", nil, fmt.Errorf("source %s: %w", d.name, err)
		}
		closers = append(closers, func() { f.Close() })
		st, err := f.Stat()
		if err != nil {
			closeAll()
			return nil, "", nil, err
		}
		ra, size, avail = f, st.Size(), st.Size()
		if fr != nil && fr.FullSize > size {
			size = fr.FullSize // a row-limit prefix of a larger file
		}
	}
	ff, err := d.format.Probe(ra, size, avail, d.src, where)
	if err != nil {
		closeAll()
		return nil, "", nil, fmt.Errorf("source %s (%s): %w", d.name, where, err)
	}
	return ff, where, closeAll, nil
}

// runShards decodes a shard set: one header for the run's rows, then each
// shard's blocks in index order with global row numbers (batches never
// cross a shard). A shard read from the download cache is removed once
// read: disk stays bounded by download.parallel_shards; a run killed before
// its batches are acknowledged downloads it again.
func (d *Decode) runShards(ctx context.Context, sio pipeline.StageIO, l *pipeline.Layout) error {
	if rows, ok := d.rt.Resume.AllLoaded(); ok {
		return sio.Emit(ctx, d.loadedHeader(rows))
	}
	hdr := d.loadedHeader(l.Rows)
	hdr.Describe = fmt.Sprintf("%d of %d shards", len(l.Shards), l.AllShards)
	if err := sio.Emit(ctx, hdr); err != nil {
		return err
	}
	inputs := sio.Inputs()
	bs := int64(l.BatchSize)
	for _, span := range l.Shards {
		if l.SpanDone(d.rt.Resume, span) {
			continue
		}
		var fr *pipeline.FileReady
		path := span.Files[d.name].Path
		for _, up := range inputs {
			f, ok, err := pipeline.Receive[*pipeline.FileReady](ctx, sio, up)
			if err != nil {
				return err
			}
			if !ok || f.Shard != span.Index {
				return fmt.Errorf("internal: %s sent shard %v, expected %d", up, f, span.Index)
			}
			fr, path = f, f.Path
		}
		if err := d.shard(ctx, sio, l, span, fr, path, bs); err != nil {
			return err
		}
		if err := verified(fr); err != nil {
			return err
		}
		if fr != nil && fr.Path != "" {
			os.Remove(fr.Path) // read: the cache copy is no longer needed
		}
	}
	return nil
}

// shard emits the unacknowledged batches of one shard.
func (d *Decode) shard(ctx context.Context, sio pipeline.StageIO, l *pipeline.Layout, span pipeline.ShardSpan, fr *pipeline.FileReady, path string, bs int64) error {
	ff, where, closeFile, err := d.open(ctx, fr, path, span.Files[d.name].URL)
	if err != nil {
		return fmt.Errorf("shard %d: %w", span.Index, err)
	}
	defer closeFile()
	if ff.Rows() != span.FileRows {
		return fmt.Errorf("source %s shard %d (%s) has %d rows; it had %d when the run was planned (the file changed: run again)", d.name, span.Index, where, ff.Rows(), span.FileRows)
	}
	first := int64(0)
	for first < span.Rows && d.rt.Resume.Acked(l.BatchSize, span.FirstSeq+first/bs) {
		first += bs
	}
	if first >= span.Rows {
		return nil
	}
	rr, err := ff.Open(d.sel, first, span.Rows)
	if err != nil {
		return fmt.Errorf("source %s shard %d (%s): %w", d.name, span.Index, where, err)
	}
	defer rr.Close()
	h := &pipeline.SourceHeader{Source: d.name, Rows: ff.Rows(), Widths: rr.Widths(), Describe: ff.Describe()}
	if err := d.checkWidths(h); err != nil {
		return fmt.Errorf("shard %d: %w", span.Index, err)
	}
	for local := first; local < span.Rows; local += bs {
		blk := &pipeline.RowBlock{Source: d.name, Start: local, N: int(min(bs, span.Rows-local))}
		if err := rr.Read(blk); err != nil {
			return fmt.Errorf("source %s shard %d (%s): %w", d.name, span.Index, where, err)
		}
		if !d.rt.Config.Points.AllowNonFinite {
			if err := finite(blk, h.Widths); err != nil {
				blk.Done()
				return fmt.Errorf("source %s shard %d (%s): %w (points.allow_non_finite: true upserts such vectors)", d.name, span.Index, where, err)
			}
		}
		blk.Start = span.Start + local // global row: ids and batches
		if err := sio.Emit(ctx, blk); err != nil {
			blk.Done()
			return err
		}
	}
	return nil
}

// finite refuses a block holding a NaN or ±Inf vector component, naming
// the row, column and component.
func finite(blk *pipeline.RowBlock, widths map[string]int) error {
	for col, m := range blk.Multi {
		if finitecheck.First(m.Data) < 0 {
			continue
		}
		for i := 0; i < blk.N; i++ {
			for k, v := range m.Row(i) {
				if v-v != 0 {
					return fmt.Errorf("multivector column %q, row %d: token vector %d, component %d is %s", col, blk.Start+int64(i), k/max(m.Width, 1), k%max(m.Width, 1), nonFinite(v))
				}
			}
		}
	}
	for p, sc := range blk.Sparse {
		if finitecheck.First(sc.Values) < 0 {
			continue
		}
		for i := 0; i < blk.N; i++ {
			idx, vals := sc.Row(i)
			for k, v := range vals {
				if v-v != 0 {
					return fmt.Errorf("sparse values column %q, row %d: the value at index %d is %s", p.Values, blk.Start+int64(i), idx[k], nonFinite(v))
				}
			}
		}
	}
	bad := func(col string, i int, v float32) error {
		w := max(widths[col], 1)
		where := "row"
		if col != "" {
			where = fmt.Sprintf("column %q, row", col)
		}
		return fmt.Errorf("%s %d: vector component %d is %s", where, blk.Start+int64(i/w), i%w, nonFinite(v))
	}
	for col, data := range blk.Vectors {
		i, seen := blk.NonFinite[col]
		if !seen {
			i = finitecheck.First(data)
		}
		if i >= 0 {
			return bad(col, i, data[i])
		}
	}
	for col, r := range blk.Runs {
		i, seen := blk.NonFinite[col]
		if !seen {
			i = -1
			at := 0
			for _, p := range r.Parts {
				if j := finitecheck.FirstLE(p); j >= 0 {
					i = at + j
					break
				}
				at += len(p) / 4
			}
		}
		if i >= 0 {
			return bad(col, i, r.Value(i))
		}
	}
	for col, h := range blk.Half {
		if i := finitecheck.FirstHalf(h); i >= 0 {
			return bad(col, i, half.Float32(uint16(h[2*i])|uint16(h[2*i+1])<<8))
		}
	}
	return nil
}

// nonFinite names a NaN or infinite value.
func nonFinite(v float32) string {
	if math.IsInf(float64(v), 0) {
		return fmt.Sprintf("%v", v)
	}
	return "NaN"
}

// checkWidths compares the widths the file declares with the sizes of the
// collection vectors this source feeds.
func (d *Decode) checkWidths(h *pipeline.SourceHeader) error {
	c := d.rt.Config
	var problems []string
	for _, vn := range pipeline.SortedKeys(c.Points.Vectors) {
		vs := c.Points.Vectors[vn]
		vc := c.Collection.Vectors[vn]
		if vs.Source != d.name || vc == nil {
			continue
		}
		if w, ok := h.Widths[vs.Column]; ok && w != vc.Size {
			what := "width"
			if vc.Multivector != nil {
				what = "token vectors of width"
			}
			problems = append(problems, fmt.Sprintf("vector %q: source %s (%s) has %s %d, collection.vectors.%s.size is %d", vn, d.name, h.Describe, what, w, vn, vc.Size))
		}
	}
	if len(problems) > 0 {
		return fmt.Errorf("%s", strings.Join(problems, "; "))
	}
	return nil
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

var _ pipeline.Stage = (*Decode)(nil)
