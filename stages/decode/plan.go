package decode

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"

	"github.com/snappipe/snappipe/internal/httpget"
	"github.com/snappipe/snappipe/pipeline"
)

// Plan probes a local source (a url: source's download plan has probed it
// already), checks the columns the config names and the widths, and hands
// the source's header to the batch plan.
func (d *Decode) Plan(ctx context.Context, pc *pipeline.PlanContext) error {
	if l := d.rt.LayoutOf(); l.Sharded {
		// The shard set's headers were read for the layout (the Shards
		// section shows them shard by shard).
		loc := d.src.Path
		if d.src.URL != "" {
			// Redacted, with the range's braces as written (not %7B).
			loc = httpget.Redact(d.src.URL)
		}
		desc := fmt.Sprintf("shard set: %d shards, %d rows", l.AllShards, l.SetRows)
		switch {
		case l.SetRows < 0:
			desc = fmt.Sprintf("shard set: %d shards; this run loads the first %d, %d rows (the limit needs no more: the others are not read)", l.AllShards, len(l.Shards), l.Rows)
		case len(l.Shards) != l.AllShards || l.Rows != l.SetRows:
			desc += fmt.Sprintf("; this run loads %d shards, %d rows", len(l.Shards), l.Rows)
		}
		pc.Source(pipeline.SourceReport{Name: d.name, Location: loc, Format: d.src.Format, Size: -1, Rows: l.SetRows, Describe: desc})
		// The columns and widths, from the first shard with rows (as a
		// single file's are checked): apply would stop there.
		for _, span := range l.Shards {
			if span.FileRows == 0 {
				continue
			}
			ff, done, err := pipeline.ProbeShard(ctx, d.rt.Config, d.src, span.Files[d.name], pipeline.LayoutOptions{HTTP: d.rt.HTTP, Header: httpget.HFAuth()})
			if err != nil {
				pc.Problem("source %s shard %d: %v", d.name, span.Index, err)
				return nil
			}
			defer done()
			hdr, err := d.check(ff)
			if err == nil {
				err = d.checkWidths(hdr)
			}
			if err != nil {
				pc.Problem("source %s shard %d: %v", d.name, span.Index, err)
			}
			break
		}
		return nil
	}
	var rep pipeline.SourceReport
	var ff pipeline.FormatFile
	if in := pc.Inputs(); len(in) == 1 {
		pf, ok := pipeline.PlanInput[*pipeline.PlanFile](pc, in[0])
		if !ok {
			return fmt.Errorf("internal: no file plan from %s", in[0])
		}
		rep, ff = pf.Report, pf.File
	} else {
		rep = pipeline.SourceReport{Name: d.name, Location: d.src.Path, Format: d.src.Format, Size: -1, Rows: -1}
		f, err := os.Open(d.rt.Config.Resolve(d.src.Path))
		if err != nil {
			pc.Problem("source %s: %v", d.name, err)
		} else {
			defer f.Close()
			if fi, err := f.Stat(); err == nil {
				rep.Size = fi.Size()
				if ff, err = d.format.Probe(f, fi.Size(), fi.Size(), d.src, d.src.Path); err != nil {
					pc.Problem("source %s: %v", d.name, err)
				} else {
					rep.Describe, rep.Rows = ff.Describe(), ff.Rows()
				}
			}
		}
	}
	pc.Source(rep)
	if ff == nil {
		pc.Put(&pipeline.PlanSource{})
		return nil // the problem is recorded
	}
	hdr, err := d.check(ff)
	if err != nil {
		pc.Problem("source %s: %v", d.name, err)
	}
	pc.Put(&pipeline.PlanSource{Header: hdr})
	return nil
}

// check compares a table's columns with the ones the config names and
// reads the vector widths (a table's first row, an array's header); Open
// also says whether the file holds every row.
func (d *Decode) check(ff pipeline.FormatFile) (*pipeline.SourceHeader, error) {
	hdr := &pipeline.SourceHeader{Source: d.name, Rows: ff.Rows(), Widths: map[string]int{}, Columns: ff.Columns(), Describe: ff.Describe()}
	var problems []string
	if d.format.Table() {
		cols := ff.Columns()
		need := func(col, role string) {
			if col != "" && !slices.Contains(cols, col) {
				problems = append(problems, fmt.Sprintf("%s column %q is not in the file (columns: %s)", role, col, strings.Join(cols, ", ")))
			}
		}
		c := d.rt.Config
		if p := c.Points.Payload; p != nil && p.Source == d.name {
			for _, col := range p.Include {
				need(col, "payload include")
			}
			for _, col := range p.Exclude {
				need(col, "payload exclude")
			}
			need(c.Points.ID.Column, "id")
		}
		for _, col := range d.sel.Vectors {
			need(col, "vector")
		}
		for _, col := range d.sel.Multi {
			need(col, "multivector")
		}
		for _, p := range d.sel.Sparse {
			need(p.Indices, "sparse indices")
			need(p.Values, "sparse values")
		}
	}
	if len(problems) == 0 {
		// The first row: vector widths and, for multivector and sparse
		// columns, their types and the first row's shape.
		rr, err := ff.Open(pipeline.Selection{Vectors: d.sel.Vectors, Multi: d.sel.Multi, Sparse: d.sel.Sparse}, 0, ff.Rows())
		if err != nil {
			problems = append(problems, err.Error())
		} else {
			hdr.Widths = rr.Widths()
			rr.Close()
		}
	}
	if len(problems) > 0 {
		return hdr, errors.New(strings.Join(problems, "; "))
	}
	return hdr, nil
}

// Describe reports a local source (a url: source's download node reports
// its own).
func (d *Decode) Describe() []string {
	if d.src.IsRemote() {
		return nil
	}
	return []string{fmt.Sprintf("  download %-10s local file, nothing to download", d.name)}
}
