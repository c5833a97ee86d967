package upsert

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/qdrant/go-client/qdrant"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/snappipe/snappipe/internal/qdrantconn"
	"github.com/snappipe/snappipe/pipeline"
	"github.com/snappipe/snappipe/pipeline/config"
)

// Plan asks the server about the collection (read-only) and says what
// apply would do to it and how many points it would upsert. A server that
// cannot be reached is a problem; the rest of the plan stands.
func (u *Upsert) Plan(ctx context.Context, pc *pipeline.PlanContext) error {
	c := u.rt.Config
	coll := c.Collection.Name
	cst := u.coll.Get()
	cctx, cancel := context.WithTimeout(ctx, c.Qdrant.Timeout.D())
	exists, err := u.rt.Qdrant.CollectionExists(cctx, coll)
	cancel()
	if err != nil {
		pc.Problem("%s: the collection was not checked", u.serverProblem(err))
		pc.Action("prepare collection %q (%s) once the server is reachable", coll, vectorsSummary(c))
	} else {
		var points uint64
		if exists {
			cctx, cancel := context.WithTimeout(ctx, c.Qdrant.Timeout.D())
			points, _ = u.rt.Qdrant.Count(cctx, &qdrant.CountPoints{CollectionName: coll, Exact: qdrant.PtrOf(true)})
			info, ierr := u.rt.Qdrant.GetCollectionInfo(cctx, coll)
			cancel()
			if ierr == nil && (c.Collection.OnExists == "reuse" || cst.Ready) {
				var update []string
				for _, d := range DiffCollection(c, info) {
					if cst.Ready && cst.Update && inPlace(d) {
						update = append(update, d) // apply updates it in place
						continue
					}
					pc.Problem("collection %q: %s", coll, d)
				}
				if len(update) > 0 {
					pc.Action("update collection %q in place to the file's settings (now: %s)", coll, strings.Join(update, "; "))
				}
			}
			if ierr == nil && cst.Ready && cst.Indexes {
				planIndexes(pc, c, info, cst.Drop)
			}
		}
		switch {
		case cst.Ready:
			if !exists && !u.ups.Get().Done {
				pc.Problem("collection %q was deleted since the checkpoint recorded it; apply needs --full-refresh", coll)
			}
		case !exists:
			pc.Action("create collection %q (%s)", coll, vectorsSummary(c))
		case c.Collection.OnExists == "recreate":
			pc.Action("recreate collection %q: drop it (%d points) and create it (%s)", coll, points, vectorsSummary(c))
		case c.Collection.OnExists == "reuse":
			pc.Action("reuse collection %q (%d points)", coll, points)
		default:
			pc.Problem("collection %q exists (%d points) and collection.on_exists is fail", coll, points)
		}
	}
	if !cst.Ready {
		for _, f := range pipeline.SortedKeys(c.Collection.PayloadIndexes) {
			pc.Action("create payload index %s (%s)", f, c.Collection.PayloadIndexes[f])
		}
	}
	us := u.ups.Get()
	if us.Done {
		return nil
	}
	total := int64(-1)
	if in := pc.Inputs(); len(in) == 1 {
		if pr, ok := pipeline.PlanInput[*pipeline.PlanRows](pc, in[0]); ok {
			total = pr.Rows
		}
	}
	bs := int64(c.Upload.BatchSize)
	l := u.rt.LayoutOf()
	acked, ackedRows := int64(0), int64(0)
	if us.BatchSize == c.Upload.BatchSize {
		acked, ackedRows = us.AckedCount(), l.RowsOfBatches(us)
	}
	if total < 0 {
		pc.Action("upsert the sources' rows (row count unknown until the problems above are fixed)")
		return nil
	}
	size := fmt.Sprintf("of %d", bs)
	if l.Sharded {
		size = fmt.Sprintf("of up to %d (a batch never spans two shards)", bs)
	}
	left, batches := max(0, total-min(total, ackedRows)), max(0, l.BatchCount(total)-acked)
	if left == 0 && batches == 0 && acked > 0 {
		return nil // every batch acknowledged (a checkpoint taken over with another batch size)
	}
	pc.Action("upsert %d points in %d batches %s, %d in parallel (%d batches already acknowledged)",
		left, batches, size, c.Upload.Parallel, acked)
	return nil
}

func vectorsSummary(c *config.Config) string {
	var parts []string
	for _, n := range pipeline.SortedKeys(c.Collection.Vectors) {
		v := c.Collection.Vectors[n]
		kind := ""
		if v.Multivector != nil {
			kind = " multivector"
		}
		parts = append(parts, fmt.Sprintf("%s: %d %s %s%s", n, v.Size, v.Distance, v.Datatype, kind))
	}
	for _, n := range pipeline.SortedKeys(c.Collection.SparseVectors) {
		mod := ""
		if m := c.Collection.SparseVectors[n].Modifier; m != "" {
			mod = " " + m
		}
		parts = append(parts, fmt.Sprintf("%s: sparse%s", n, mod))
	}
	return strings.Join(parts, "; ")
}

// Describe says what the checkpoint holds for the collection and the
// upload.
func (u *Upsert) Describe() []string {
	cst, us := u.coll.Get(), u.ups.Get()
	word := "pending"
	if cst.Ready {
		word = "done"
	}
	if cst.Ready && (cst.Indexes || cst.Update) {
		word = "done; its payload indexes or settings are to be changed to the config's"
	}
	out := []string{"  collection " + word}
	switch {
	case us.Done:
		out = append(out, fmt.Sprintf("  upsert     done (%d points)", us.Rows))
	case us.Rows < 0:
		out = append(out, "  upsert     pending")
	default:
		batches := (us.Rows + int64(us.BatchSize) - 1) / int64(max(us.BatchSize, 1))
		rows := us.AckedRows()
		if l := u.rt.LayoutOf(); l.Sharded && l.BatchSize == us.BatchSize {
			// Batches never span two shards: there are more of them.
			batches, rows = l.Batches, l.RowsOfBatches(us)
		}
		out = append(out, fmt.Sprintf("  upsert     partial: %d of %d batches acknowledged, %d of %d points (watermark %d, %d above it)", us.AckedCount(), batches, rows, us.Rows, us.Watermark, len(us.Above)))
	}
	return out
}

// serverProblem says a failed call as plan and apply both put it: the
// server's REST URL and the gRPC address it was dialled at (whose port is
// qdrant.grpc_port), unreachable or refusing, and gRPC's code and message.
func (u *Upsert) serverProblem(err error) string {
	c := u.rt.Config
	where := u.rt.RESTBase
	if ep, eerr := qdrantconn.EndpointOf(c); eerr == nil {
		where = fmt.Sprintf("%s (gRPC %s, qdrant.grpc_port)", where, ep.GRPCAddr())
	}
	what := "could not be reached"
	if c := status.Code(err); c == codes.Unauthenticated || c == codes.PermissionDenied {
		what = "refused the request"
	}
	return fmt.Sprintf("qdrant at %s %s (%s)", where, what, qdrantconn.Message(err))
}

// planIndexes says how apply changes a loaded collection's payload indexes
// to the config's (collection.payload_indexes changed since it was made).
func planIndexes(pc *pipeline.PlanContext, c *config.Config, info *qdrant.CollectionInfo, drop []string) {
	have := info.GetPayloadSchema()
	for _, f := range pipeline.SortedKeys(have) {
		want, ok := c.Collection.PayloadIndexes[f]
		switch {
		case ok && schemaTypes[want] != have[f].GetDataType():
			pc.Action("delete payload index %s (%s) of the loaded collection, to make it again as %s", f, strings.ToLower(have[f].GetDataType().String()), want)
		case !ok && slices.Contains(drop, f):
			pc.Action("delete payload index %s of the loaded collection (no longer in collection.payload_indexes)", f)
		}
	}
	for _, f := range pipeline.SortedKeys(c.Collection.PayloadIndexes) {
		if si, ok := have[f]; !ok || schemaTypes[c.Collection.PayloadIndexes[f]] != si.GetDataType() {
			pc.Action("create payload index %s (%s) on the loaded collection", f, c.Collection.PayloadIndexes[f])
		}
	}
}

// inPlace reports whether a difference DiffCollection found is one apply
// updates the loaded collection to (UpdateCollection), when the checkpoint
// says the settings changed.
func inPlace(d string) bool {
	for _, p := range []string{"hnsw.", "optimizers.", "quantization ", "write_consistency_factor ", "on_disk_payload ", "strict_mode.", "metadata "} {
		if strings.HasPrefix(d, p) {
			return true
		}
	}
	return strings.HasPrefix(d, "vector ") && (strings.Contains(d, " on_disk ") || strings.Contains(d, " quantization "))
}
