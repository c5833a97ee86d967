// Package batch is the stage that joins row i of every source into point i
// and groups points into upload batches. It checks, before the first batch,
// that the sources are aligned and every vector has the configured width.
package batch

import (
	"context"
	"fmt"
	"strings"

	"github.com/snappipe/snappipe/pipeline"
	"github.com/snappipe/snappipe/pipeline/config"
)

// Kind is the stage kind.
const Kind = pipeline.KindBatch

// Ports are the messages this stage kind consumes and emits.
var Ports = pipeline.Ports{Consumes: []string{pipeline.MsgSourceHeader, pipeline.MsgRows}, Emits: []string{pipeline.MsgBatchPlan, pipeline.MsgBatch}}

// Batch joins sources.
type Batch struct {
	rt *pipeline.Runtime
}

// New is the stage factory.
func New(n *pipeline.Node, rt *pipeline.Runtime) (pipeline.Stage, error) {
	return &Batch{rt: rt}, nil
}

// TotalRows checks the sources' headers against the config and returns how
// many rows become points.
func TotalRows(c *config.Config, headers map[string]*pipeline.SourceHeader) (int64, error) {
	var problems []string
	for _, vn := range pipeline.SortedKeys(c.Points.Vectors) {
		vs := c.Points.Vectors[vn]
		h := headers[vs.Source]
		vc := c.Collection.Vectors[vn]
		if h == nil || vc == nil {
			continue
		}
		w, ok := h.Widths[vs.Column]
		if !ok {
			continue // no rows to look at
		}
		if w != vc.Size {
			problems = append(problems, fmt.Sprintf("vector %q: source %s (%s) has width %d, collection.vectors.%s.size is %d", vn, vs.Source, h.Describe, w, vn, vc.Size))
		}
	}
	if len(problems) > 0 {
		return 0, fmt.Errorf("%s", strings.Join(problems, "; "))
	}
	limit := c.Points.LimitOr()
	var counts, short []string
	total := int64(-1)
	aligned := true
	for _, s := range pipeline.SortedKeys(headers) {
		h := headers[s]
		counts = append(counts, fmt.Sprintf("%s %d", s, h.Rows))
		if limit >= 0 {
			if h.Rows < limit {
				short = append(short, fmt.Sprintf("%s has %d", s, h.Rows))
			}
			continue
		}
		if total >= 0 && h.Rows != total {
			aligned = false
		}
		total = h.Rows
	}
	if len(short) == 1 {
		return 0, fmt.Errorf("source %s rows, fewer than points.limit %d", short[0], limit)
	}
	if len(short) > 1 {
		return 0, fmt.Errorf("sources hold fewer rows than points.limit %d: %s", limit, strings.Join(short, ", "))
	}
	if !aligned {
		return 0, fmt.Errorf("sources are not aligned: row counts differ (%s); row i of every source must describe the same item (set points.limit to use only the first rows)", strings.Join(counts, ", "))
	}
	if limit >= 0 {
		return limit, nil
	}
	if total == 0 {
		return 0, fmt.Errorf("the sources hold no rows (%s): nothing to load; a snapshot of an empty collection is not what a pipeline is for", strings.Join(counts, ", "))
	}
	return total, nil
}

// Run reads every input's header, checks alignment, then zips blocks.
func (b *Batch) Run(ctx context.Context, sio pipeline.StageIO) error {
	c := b.rt.Config
	inputs := sio.Inputs()
	headers := map[string]*pipeline.SourceHeader{}
	srcOf := map[string]string{}
	for _, in := range inputs {
		h, ok, err := pipeline.Receive[*pipeline.SourceHeader](ctx, sio, in)
		if err != nil {
			return err
		}
		if !ok {
			return fmt.Errorf("internal: %s ended without a header", in)
		}
		headers[h.Source] = h
		srcOf[in] = h.Source
	}
	total, err := TotalRows(c, headers)
	if err != nil {
		return err
	}
	layout := b.rt.LayoutOf()
	if err := sio.Emit(ctx, &pipeline.BatchPlan{Rows: total}); err != nil {
		return err
	}
	next := int64(-1)
	for {
		blocks := map[string]*pipeline.RowBlock{}
		closed := 0
		for _, in := range inputs {
			blk, ok, err := pipeline.Receive[*pipeline.RowBlock](ctx, sio, in)
			if err != nil {
				for _, b := range blocks {
					b.Done()
				}
				return err
			}
			if !ok {
				closed++
				continue
			}
			blocks[srcOf[in]] = blk
		}
		if closed == len(inputs) {
			break
		}
		if closed > 0 {
			return fmt.Errorf("internal: sources ended at different rows (%d of %d inputs ended)", closed, len(inputs))
		}
		var start int64
		var n int
		for i, s := range pipeline.SortedKeys(blocks) {
			blk := blocks[s]
			if i == 0 {
				start, n = blk.Start, blk.N
			} else if blk.Start != start || blk.N != n {
				return fmt.Errorf("internal: sources out of step (rows %d+%d vs %d+%d)", start, n, blk.Start, blk.N)
			}
		}
		// A shard set skips shards and batches already loaded: rows only
		// go forward. One file: rows are contiguous from the resume point.
		if next >= 0 && (start != next && !layout.Sharded || start < next) {
			return fmt.Errorf("internal: expected rows from %d, got %d", next, start)
		}
		next = start + int64(n)
		seq := layout.Seq(start)
		release := func() {
			for _, blk := range blocks {
				blk.Done()
			}
		}
		if b.rt.Resume.Acked(c.Upload.BatchSize, seq) {
			release()
			continue // acknowledged before a restart
		}
		batch := Join(c, blocks, seq, start, n)
		batch.Release = release
		if err := sio.Emit(ctx, batch); err != nil {
			return err
		}
	}
	if next >= 0 && next != total && !layout.Sharded {
		return fmt.Errorf("internal: sources ended at row %d, expected %d", next, total)
	}
	return nil
}

// Join makes the batch of rows [start, start+n) from the sources'
// blocks: vectors by name (sharing the blocks' memory, no copy), ids and
// payloads from the payload source. Nothing here is specific to a sink.
func Join(c *config.Config, blocks map[string]*pipeline.RowBlock, seq, start int64, n int) *pipeline.Batch {
	b := &pipeline.Batch{Seq: seq, Start: start, N: n, Vectors: make([]pipeline.NamedVector, 0, len(c.Points.Vectors))}
	for _, vn := range pipeline.SortedKeys(c.Points.Vectors) {
		vs := c.Points.Vectors[vn]
		blk := blocks[vs.Source]
		switch vc := c.Collection.Vectors[vn]; {
		case c.Collection.SparseVectors[vn] != nil:
			b.Sparse = append(b.Sparse, pipeline.NamedSparse{Name: vn, Col: blk.Sparse[pipeline.SparsePair{Indices: vs.Indices, Values: vs.Values}]})
		case vc != nil && vc.Multivector != nil:
			b.Multi = append(b.Multi, pipeline.NamedMulti{Name: vn, Col: blk.Multi[vs.Column]})
		case vc != nil:
			w := vc.Size
			if h, ok := blk.Half[vs.Column]; ok {
				b.Vectors = append(b.Vectors, pipeline.NamedVector{Name: vn, Width: w, Half: h[: 2*n*w : 2*n*w]})
				continue
			}
			if r, ok := blk.Runs[vs.Column]; ok {
				b.Vectors = append(b.Vectors, pipeline.NamedVector{Name: vn, Width: w, Runs: r})
				continue
			}
			b.Vectors = append(b.Vectors, pipeline.NamedVector{Name: vn, Width: w, Data: blk.Vectors[vs.Column][: n*w : n*w]})
		}
	}
	if p := c.Points.Payload; p != nil && p.Source != "" {
		pb := blocks[p.Source]
		b.Payload = pb.Payload
		b.IDs = pb.IDs
	}
	return b
}

var _ pipeline.Stage = (*Batch)(nil)
