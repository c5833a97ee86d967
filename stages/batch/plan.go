package batch

import (
	"context"

	"github.com/snappipe/snappipe/pipeline"
)

// Plan checks the sources' headers against the config (alignment, widths)
// and hands the number of points to the upsert plan.
func (b *Batch) Plan(ctx context.Context, pc *pipeline.PlanContext) error {
	if l := b.rt.LayoutOf(); l.Sharded {
		pc.Put(&pipeline.PlanRows{Rows: l.Rows})
		return nil
	}
	headers := map[string]*pipeline.SourceHeader{}
	for _, in := range pc.Inputs() {
		if ps, ok := pipeline.PlanInput[*pipeline.PlanSource](pc, in); ok && ps.Header != nil {
			headers[ps.Header.Source] = ps.Header
		}
	}
	rows := int64(-1)
	if len(headers) == len(pc.Inputs()) {
		total, err := TotalRows(b.rt.Config, headers)
		if err != nil {
			pc.Problem("%v", err)
		} else {
			rows = total
		}
	}
	pc.Put(&pipeline.PlanRows{Rows: rows})
	return nil
}
