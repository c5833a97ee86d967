// Package verify is the first stage of apply --finalize: partitions loaded
// the collection (on other machines, with their own checkpoints), and the
// snapshot may be taken only once it holds every planned row. It counts
// the collection exactly; on a shortfall it names the shards (and, given
// the partition count, the partitions) whose points are missing.
package verify

import (
	"context"
	"fmt"
	"sort"
	"strings"

	"github.com/qdrant/go-client/qdrant"

	"github.com/snappipe/snappipe/pipeline"
)

// Kind is the stage kind.
const Kind = pipeline.KindVerify

// Ports: verify reads nothing and tells the snapshot the load is complete.
var Ports = pipeline.Ports{Emits: []string{pipeline.MsgUpsertDone}}

// Verify checks the collection.
type Verify struct {
	rt *pipeline.Runtime
}

// New is the stage factory.
func New(_ *pipeline.Node, rt *pipeline.Runtime) (pipeline.Stage, error) {
	return &Verify{rt: rt}, nil
}

// maxReported bounds the incomplete shards named.
const maxReported = 20

// Run counts the collection and compares it with the planned rows.
func (v *Verify) Run(ctx context.Context, sio pipeline.StageIO) error {
	c := v.rt.Config
	l := v.rt.LayoutOf()
	if !l.Sharded {
		return fmt.Errorf("--finalize needs shard sets (partitions load them); this pipeline's sources are single files")
	}
	name := c.Collection.Name
	exists, n, err := v.count(ctx)
	if err != nil {
		return err
	}
	if !exists {
		return fmt.Errorf("collection %q does not exist: run the partitions (apply --partition I/N) first", name)
	}
	want := l.Rows
	if int64(n) == want {
		v.rt.Log.Info("collection complete", "collection", name, "points", n, "shards", len(l.Shards))
		return sio.Emit(ctx, &pipeline.UpsertDone{Points: want})
	}
	msg := fmt.Sprintf("collection %q holds %d points; the %d shards plan %d rows", name, n, len(l.Shards), want)
	if int64(n) > want {
		return fmt.Errorf("%s: more points than rows (another pipeline wrote into it?); refusing to snapshot", msg)
	}
	if c.Points.ID.Column != "" {
		return fmt.Errorf("%s: %d rows are missing (ids come from column %q, so the missing shards cannot be named: check each partition's status)", msg, want-int64(n), c.Points.ID.Column)
	}
	missing, err := v.incomplete(ctx, l)
	if err != nil {
		return fmt.Errorf("%s; finding the incomplete shards failed: %w", msg, err)
	}
	return fmt.Errorf("%s: %d rows are missing; incomplete: %s. Run (or re-run) those partitions, then finalize again", msg, want-int64(n), missing)
}

// count counts the collection exactly (exists false: it is not there).
func (v *Verify) count(ctx context.Context) (exists bool, n uint64, err error) {
	c := v.rt.Config
	name := c.Collection.Name
	cctx, cancel := context.WithTimeout(ctx, c.Qdrant.Timeout.D())
	defer cancel()
	if exists, err = v.rt.Qdrant.CollectionExists(cctx, name); err != nil || !exists {
		if err != nil {
			err = fmt.Errorf("check collection %q: %w", name, err)
		}
		return exists, 0, err
	}
	if n, err = v.rt.Qdrant.Count(cctx, &qdrant.CountPoints{CollectionName: name, Exact: qdrant.PtrOf(true)}); err != nil {
		return true, 0, fmt.Errorf("count points in %q: %w", name, err)
	}
	return true, n, nil
}

// Plan says what Run will check and, counting the collection now (read
// only), whether it would pass, so that a finalize Job is not started for
// nothing. A server that does not answer adds nothing here: the snapshot
// stage's plan reports it.
func (v *Verify) Plan(ctx context.Context, pc *pipeline.PlanContext) error {
	l := v.rt.LayoutOf()
	if !l.Sharded {
		return nil
	}
	check := fmt.Sprintf("check that collection %q holds all %d rows of the %d shards", v.rt.Config.Collection.Name, l.Rows, len(l.Shards))
	exists, n, err := v.count(ctx)
	switch {
	case err != nil:
	case !exists:
		check += ": it does not exist yet (the partitions create it); finalize would fail now"
	case int64(n) == l.Rows:
		check += ": it holds them all now"
	case int64(n) < l.Rows:
		check += fmt.Sprintf(": it holds %d now, %d short; finalize would fail now", n, l.Rows-int64(n))
	default:
		check += fmt.Sprintf(": it holds %d now, more than planned; finalize would refuse to snapshot", n)
	}
	pc.Action("%s", check)
	return nil
}

var _ pipeline.Planner = (*Verify)(nil)

// incomplete names the shards one of whose batches has no point: with
// id: row a batch's first and last ids are its first and last rows.
func (v *Verify) incomplete(ctx context.Context, l *pipeline.Layout) (string, error) {
	c := v.rt.Config
	bs := int64(l.BatchSize)
	var out []string
	more := 0
	parts := map[int]bool{}
	for _, s := range l.Shards {
		var ids []*qdrant.PointId
		for j := int64(0); j < s.Rows; j += bs {
			last := min(j+bs, s.Rows) - 1
			ids = append(ids, qdrant.NewIDNum(uint64(s.Start+j)), qdrant.NewIDNum(uint64(s.Start+last)))
		}
		complete := true
		for len(ids) > 0 && complete {
			chunk := ids[:min(len(ids), 1000)]
			ids = ids[len(chunk):]
			cctx, cancel := context.WithTimeout(ctx, c.Qdrant.Timeout.D())
			pts, err := v.rt.Qdrant.Get(cctx, &qdrant.GetPoints{CollectionName: c.Collection.Name, Ids: chunk,
				WithPayload: qdrant.NewWithPayload(false), WithVectors: qdrant.NewWithVectors(false)})
			cancel()
			if err != nil {
				return "", err
			}
			complete = len(pts) == len(uniq(chunk))
		}
		if !complete {
			if len(out) < maxReported {
				out = append(out, fmt.Sprintf("shard %d", s.Index))
			} else {
				more++
			}
			if v.rt.Partitions > 0 {
				parts[s.Index%v.rt.Partitions] = true
			}
		}
	}
	if len(out) == 0 {
		return "no shard lacks a batch's first or last point (points missing inside batches)", nil
	}
	s := strings.Join(out, ", ")
	if more > 0 {
		s += fmt.Sprintf(" and %d more shards", more)
	}
	if len(parts) > 0 {
		var nums []int
		for p := range parts {
			nums = append(nums, p)
		}
		sort.Ints(nums)
		var ps []string
		for _, p := range nums {
			ps = append(ps, fmt.Sprint(p))
		}
		s += fmt.Sprintf(" (partitions %s of %d)", strings.Join(ps, ", "), v.rt.Partitions)
	}
	return s, nil
}

func uniq(ids []*qdrant.PointId) map[uint64]bool {
	m := map[uint64]bool{}
	for _, id := range ids {
		m[id.GetNum()] = true
	}
	return m
}

var _ pipeline.Stage = (*Verify)(nil)
