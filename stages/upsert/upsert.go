// Package upsert is the stage that prepares the collection and upserts
// batches with wait=true from parallel workers, retrying what is transient,
// and records each acknowledged batch in the checkpoint.
package upsert

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/qdrant/go-client/qdrant"
	"github.com/snappipe/snappipe/internal/qdrantconn"
	"github.com/snappipe/snappipe/internal/retry"
	"github.com/snappipe/snappipe/internal/wire"
	"github.com/snappipe/snappipe/pipeline"
	"github.com/snappipe/snappipe/pipeline/config"
	"golang.org/x/sync/errgroup"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// Kind is the stage kind.
const Kind = pipeline.KindUpsert

// Ports are the messages this stage kind consumes and emits.
var Ports = pipeline.Ports{Consumes: []string{pipeline.MsgBatchPlan, pipeline.MsgBatch}, Emits: []string{pipeline.MsgUpsertDone}}

// Upsert writes batches. It owns the collection and upsert sections of
// the checkpoint.
type Upsert struct {
	rt   *pipeline.Runtime
	coll pipeline.Section[pipeline.CollectionState]
	ups  pipeline.Section[pipeline.UpsertState]
	dups dupFinder
}

// New is the stage factory.
func New(n *pipeline.Node, rt *pipeline.Runtime) (pipeline.Stage, error) {
	coll, err := pipeline.CollectionSection(rt, n)
	if err != nil {
		return nil, err
	}
	ups, err := pipeline.UpsertSection(rt, n)
	if err != nil {
		return nil, err
	}
	return &Upsert{dups: dupFinder{off: rt.Config.Points.AllowDuplicateIDs}, rt: rt, coll: coll, ups: ups}, nil
}

// stateSaveInterval throttles checkpoint writes; a lost save only replays
// idempotent batches.
const stateSaveInterval = 250 * time.Millisecond

// Run waits for the first batch (or the end of input), prepares the
// collection, then upserts every batch.
func (u *Upsert) Run(ctx context.Context, sio pipeline.StageIO) error {
	c := u.rt.Config
	in, err := sio.Input()
	if err != nil {
		return err
	}
	plan, ok, err := pipeline.Receive[*pipeline.BatchPlan](ctx, sio, in)
	if err != nil {
		return err
	}
	if !ok {
		return fmt.Errorf("internal: %s ended without a batch plan", in)
	}
	if err := u.ups.Update(func(s *pipeline.UpsertState) {
		if s.BatchSize != c.Upload.BatchSize {
			*s = pipeline.UpsertState{BatchSize: c.Upload.BatchSize}
		}
		s.Rows = plan.Rows
	}); err != nil {
		return err
	}
	// The points of the batches acknowledged before (with shard sets a
	// batch never spans two shards: they are counted span by span).
	var written atomic.Int64
	written.Store(min(u.rt.LayoutOf().RowsOfBatches(u.ups.Get()), max(plan.Rows, 0)))
	u.rt.Events.Progress(Kind, written.Load(), plan.Rows, "points")
	first, ok, err := pipeline.Receive[*pipeline.Batch](ctx, sio, in)
	if err != nil {
		return err
	}
	if !ok {
		first = nil
	}
	st := u.ups.Get()
	if st.Done && first == nil {
		// Everything was acknowledged by an earlier run.
		return sio.Emit(ctx, &pipeline.UpsertDone{Points: st.Rows})
	}
	if err := u.prepareCollection(ctx); err != nil {
		return err
	}
	work := make(chan *pipeline.Batch)
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error {
		defer close(work)
		if first != nil {
			select {
			case work <- first:
			case <-gctx.Done():
				return gctx.Err()
			}
		}
		for {
			b, ok, err := pipeline.Receive[*pipeline.Batch](gctx, sio, in)
			if err != nil || !ok {
				return err
			}
			select {
			case work <- b:
			case <-gctx.Done():
				b.Done()
				return gctx.Err()
			}
		}
	})
	for w := 0; w < c.Upload.Parallel; w++ {
		g.Go(func() error {
			for b := range work {
				u.dups.scan(b)
				// The batch goes back to its pools once it is acknowledged
				// (or abandoned) and gRPC has written every request that
				// sends vectors from its memory.
				h := wire.NewHold(b.Done)
				err := u.send(gctx, b, h)
				h.Put()
				if err != nil {
					if ctx.Err() != nil {
						return ctx.Err()
					}
					return err
				}
				n := written.Add(int64(b.N))
				u.rt.UpdateSummary(func(s *pipeline.Summary) { s.PointsWritten += int64(b.N); s.BatchesSent++ })
				if err := u.ups.UpdateThrottled(stateSaveInterval, func(s *pipeline.UpsertState) { s.Ack(b.Seq) }); err != nil {
					return err
				}
				u.rt.Events.Progress(Kind, n, st.Rows, "points")
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		// Keep what was acknowledged.
		if ferr := u.ups.Flush(); ferr != nil {
			u.rt.Log.Error("saving state failed", "err", ferr)
		}
		return err
	}
	if err := u.finishBulk(ctx); err != nil {
		return err
	}
	if err := u.checkCount(ctx, st.Rows); err != nil {
		return err
	}
	var pts int64
	if err := u.ups.Update(func(s *pipeline.UpsertState) {
		want := u.rt.LayoutOf().BatchCount(s.Rows)
		if s.AckedCount() >= want {
			s.Done = true
		}
		pts = s.Rows
	}); err != nil {
		return err
	}
	if !u.ups.Get().Done {
		return fmt.Errorf("internal: input ended before every batch was acknowledged")
	}
	return sio.Emit(ctx, &pipeline.UpsertDone{Points: pts})
}

// send upserts one batch with retries.
func (u *Upsert) send(ctx context.Context, b *pipeline.Batch, h *wire.Hold) error {
	c := u.rt.Config
	// The one place rows become Qdrant's types: wire encodes the neutral
	// batch straight into an UpsertPoints request (no PointStruct built).
	req := &wire.Upsert{Collection: c.Collection.Name, Wait: true, Batch: b, Hold: h}
	rpcCtx := ctx
	if u.rt.InFlight != nil {
		rpcCtx = u.rt.InFlight // an interrupt lets a sent batch finish
	}
	what := fmt.Sprintf("upsert batch %d (rows %d-%d) into %q", b.Seq, b.Start, b.Start+int64(b.N)-1, c.Collection.Name)
	pol := retry.Policy{MaxAttempts: c.Upload.MaxAttempts, MaxElapsed: c.Upload.MaxElapsed.D(), Initial: 100 * time.Millisecond,
		Notify: func(attempt int, err error, wait time.Duration) {
			u.rt.Log.Warn("upsert failed; retrying", "batch", b.Seq, "attempt", attempt, "in", wait.Round(time.Millisecond), "err", qdrantconn.Message(err))
		}}
	err := retry.Do(ctx, pol, func(int) error {
		cctx, cancel := context.WithTimeout(rpcCtx, c.Qdrant.Timeout.D())
		defer cancel()
		// The connection's interceptors (api-key, retry-after) still apply.
		err := u.rt.Qdrant.GetGrpcClient().Conn().Invoke(cctx, qdrant.Points_Upsert_FullMethodName, req, new(qdrant.PointsOperationResponse), grpc.ForceCodecV2(wire.Codec{}))
		if err != nil && rpcCtx.Err() != nil {
			return retry.Permanent(rpcCtx.Err())
		}
		return classify(err)
	})
	if err == nil {
		return nil
	}
	if ctx.Err() != nil {
		return ctx.Err()
	}
	if rpcCtx.Err() != nil {
		return rpcCtx.Err()
	}
	var g *retry.GaveUp
	if errors.As(err, &g) {
		return fmt.Errorf("%s: giving up after %d attempts in %s: %s", what, g.Attempts, g.Elapsed.Round(time.Millisecond), qdrantconn.Message(g.Err))
	}
	return fmt.Errorf("%s: %s", what, qdrantconn.Message(err))
}

// alreadyExists recognises Qdrant's answer to creating a collection that
// exists ("Wrong input: Collection `X` already exists!").
func alreadyExists(err error) bool {
	return status.Code(err) == codes.AlreadyExists || strings.Contains(qdrantconn.Message(err), "already exists")
}

// classify sorts a gRPC error for the shared retry policy: Qdrant's
// retry-after (RESOURCE_EXHAUSTED with a wait) sets the wait; UNAVAILABLE,
// DEADLINE_EXCEEDED, INTERNAL, RESOURCE_EXHAUSTED and ABORTED are
// transient; every other code is permanent.
func classify(err error) error {
	if err == nil {
		return nil
	}
	var re *qdrant.QdrantResourceExhaustedError
	if errors.As(err, &re) {
		return retry.After(err, time.Duration(max(re.RetryAfterS, 0))*time.Second)
	}
	switch status.Code(err) {
	case codes.Unavailable, codes.DeadlineExceeded, codes.Internal, codes.ResourceExhausted, codes.Aborted:
		return err
	}
	return retry.Permanent(err)
}

// call runs one collection-admin RPC with the configured deadline,
// retrying transient failures (a server restarting, rate limits) like
// upserts, within upload.max_attempts.
func (u *Upsert) call(ctx context.Context, f func(ctx context.Context) error) error {
	pol := retry.Policy{MaxAttempts: u.rt.Config.Upload.MaxAttempts, MaxElapsed: u.rt.Config.Upload.MaxElapsed.D(), Initial: 100 * time.Millisecond,
		Notify: func(attempt int, err error, wait time.Duration) {
			u.rt.Log.Warn("qdrant call failed; retrying", "attempt", attempt, "in", wait.Round(time.Millisecond), "err", qdrantconn.Message(err))
		}}
	err := retry.Do(ctx, pol, func(int) error {
		cctx, cancel := context.WithTimeout(ctx, u.rt.Config.Qdrant.Timeout.D())
		defer cancel()
		return classify(f(cctx))
	})
	var g *retry.GaveUp
	if errors.As(err, &g) {
		return g.Err
	}
	return err
}

// createIndexes creates the config's payload indexes (again is fine:
// Qdrant keeps an index asked for twice with the same type).
func (u *Upsert) createIndexes(ctx context.Context) error {
	c := u.rt.Config
	name := c.Collection.Name
	for _, field := range pipeline.SortedKeys(c.Collection.PayloadIndexes) {
		ft := fieldTypes[c.Collection.PayloadIndexes[field]]
		wait := true
		if err := u.call(ctx, func(ctx context.Context) error {
			_, err := u.rt.Qdrant.CreateFieldIndex(ctx, &qdrant.CreateFieldIndexCollection{CollectionName: name, FieldName: field, FieldType: &ft, Wait: &wait})
			return err
		}); err != nil {
			return fmt.Errorf("create payload index %q on %q: %s", field, name, qdrantconn.Message(err))
		}
	}
	return nil
}

// updateInPlace sets a loaded collection's HNSW and optimizer settings to
// the config's (they changed since it was made): the values the file sets
// are sent; one removed from the file keeps the collection's.
func (u *Upsert) updateInPlace(ctx context.Context) error {
	c := u.rt.Config
	name := c.Collection.Name
	hd := hnswDiff(c)
	// upload.bulk holds m at 0 until the load ends: a new m is what it
	// restores then, not what the collection gets now.
	var bulkM *uint64
	if st := u.coll.Get(); st.BulkApplied && !st.BulkRestored && hd != nil && hd.M != nil {
		m := *hd.M
		bulkM, hd.M = &m, nil
		if hd.EfConstruct == nil && hd.FullScanThreshold == nil && hd.OnDisk == nil {
			hd = nil
		}
	}
	req := &qdrant.UpdateCollection{CollectionName: name, HnswConfig: hd, OptimizersConfig: optimizersDiff(c), QuantizationConfig: quantizationDiff(c.Collection.Quantization)}
	vd := map[string]*qdrant.VectorParamsDiff{}
	for n, v := range c.Collection.Vectors {
		if v.OnDisk != nil || v.Quantization != nil {
			vd[n] = &qdrant.VectorParamsDiff{OnDisk: v.OnDisk, QuantizationConfig: quantizationDiff(v.Quantization)}
		}
	}
	if len(vd) > 0 {
		req.VectorsConfig = qdrant.NewVectorsConfigDiffMap(vd)
	}
	if cc := c.Collection; cc.WriteConsistencyFactor != nil || cc.OnDiskPayload != nil {
		req.Params = &qdrant.CollectionParamsDiff{WriteConsistencyFactor: cc.WriteConsistencyFactor, OnDiskPayload: cc.OnDiskPayload}
	}
	if sm := c.Collection.StrictMode; sm != nil {
		req.StrictModeConfig = StrictMode(sm)
	}
	req.Metadata = metadata(c)
	if req.HnswConfig != nil || req.OptimizersConfig != nil || req.QuantizationConfig != nil || req.VectorsConfig != nil ||
		req.Params != nil || req.StrictModeConfig != nil || req.Metadata != nil {
		if err := u.call(ctx, func(ctx context.Context) error { return u.rt.Qdrant.UpdateCollection(ctx, req) }); err != nil {
			return fmt.Errorf("update collection %q: %s", name, qdrantconn.Message(err))
		}
		u.rt.Log.Info("collection updated in place", "collection", name)
	}
	return u.coll.Update(func(s *pipeline.CollectionState) {
		s.Update = false
		if bulkM != nil {
			s.BulkHNSWM = bulkM
		}
	})
}

// syncIndexes brings a loaded collection's payload indexes to the config
// (collection.payload_indexes changed since it was made ready): it deletes
// drop, those the old config had, and creates the config's. An index
// whose type changed is deleted first, then made with the new type.
func (u *Upsert) syncIndexes(ctx context.Context, drop []string) error {
	c := u.rt.Config
	name := c.Collection.Name
	var info *qdrant.CollectionInfo
	if err := u.call(ctx, func(ctx context.Context) (err error) { info, err = u.rt.Qdrant.GetCollectionInfo(ctx, name); return }); err != nil {
		return fmt.Errorf("get collection %q: %s", name, qdrantconn.Message(err))
	}
	drop = slices.Clone(drop) // the checkpoint's own slice: not sorted in place
	for field, si := range info.GetPayloadSchema() {
		if want, ok := c.Collection.PayloadIndexes[field]; ok && schemaTypes[want] != si.GetDataType() {
			drop = append(drop, field)
		}
	}
	slices.Sort(drop)
	for _, field := range slices.Compact(drop) {
		if _, ok := info.GetPayloadSchema()[field]; !ok {
			continue
		}
		wait := true
		if err := u.call(ctx, func(ctx context.Context) error {
			_, err := u.rt.Qdrant.DeleteFieldIndex(ctx, &qdrant.DeleteFieldIndexCollection{CollectionName: name, FieldName: field, Wait: &wait})
			return err
		}); err != nil {
			return fmt.Errorf("delete payload index %q on %q: %s", field, name, qdrantconn.Message(err))
		}
		u.rt.Log.Info("payload index deleted", "collection", name, "field", field)
	}
	if err := u.createIndexes(ctx); err != nil {
		return err
	}
	u.rt.Log.Info("payload indexes changed on the collection", "collection", name, "indexes", len(c.Collection.PayloadIndexes))
	return u.coll.Update(func(s *pipeline.CollectionState) { s.Indexes, s.Drop = false, nil })
}

func (u *Upsert) prepareCollection(ctx context.Context) error {
	c := u.rt.Config
	name := c.Collection.Name
	st := u.coll.Get()
	var exists bool
	if err := u.call(ctx, func(ctx context.Context) (err error) { exists, err = u.rt.Qdrant.CollectionExists(ctx, name); return }); err != nil {
		// The first call of a run: a server that is down or refuses the
		// key is said as plan says it.
		switch status.Code(err) {
		case codes.Unavailable, codes.DeadlineExceeded, codes.Unauthenticated, codes.PermissionDenied:
			return fmt.Errorf("check collection %q: %s", name, u.serverProblem(err))
		}
		return fmt.Errorf("check collection %q: %s", name, qdrantconn.Message(err))
	}
	if st.Ready {
		if !exists {
			return fmt.Errorf("collection %q was deleted since the last run recorded it; run again with --full-refresh", name)
		}
		if st.Update {
			if err := u.updateInPlace(ctx); err != nil {
				return err
			}
		}
		if st.Indexes {
			return u.syncIndexes(ctx, st.Drop)
		}
		return nil
	}
	if exists {
		switch c.Collection.OnExists {
		case "fail":
			return fmt.Errorf("collection %q already exists (collection.on_exists: fail); set on_exists to recreate or reuse", name)
		case "reuse":
			var info *qdrant.CollectionInfo
			if err := u.call(ctx, func(ctx context.Context) (err error) { info, err = u.rt.Qdrant.GetCollectionInfo(ctx, name); return }); err != nil {
				return fmt.Errorf("get collection %q: %s", name, qdrantconn.Message(err))
			}
			if diffs := DiffCollection(c, info); len(diffs) > 0 {
				return fmt.Errorf("collection %q exists with a different config (on_exists: reuse): %s", name, strings.Join(diffs, "; "))
			}
		case "recreate":
			var n uint64
			if err := u.call(ctx, func(ctx context.Context) (err error) {
				n, err = u.rt.Qdrant.Count(ctx, &qdrant.CountPoints{CollectionName: name, Exact: qdrant.PtrOf(true)})
				return
			}); err != nil {
				return fmt.Errorf("count points in %q: %s", name, qdrantconn.Message(err))
			}
			if n > 0 {
				if u.rt.ConfirmRecreate == nil {
					return fmt.Errorf("collection %q holds %d points; refusing to recreate it without confirmation (-y)", name, n)
				}
				if err := u.rt.ConfirmRecreate(name, n); err != nil {
					return err
				}
			}
			if err := u.call(ctx, func(ctx context.Context) error { return u.rt.Qdrant.DeleteCollection(ctx, name) }); err != nil {
				return fmt.Errorf("delete collection %q: %s", name, qdrantconn.Message(err))
			}
			exists = false
		}
	}
	if !exists {
		err := u.call(ctx, func(ctx context.Context) error { return u.rt.Qdrant.CreateCollection(ctx, CreateRequest(c)) })
		switch {
		case err != nil && u.rt.Mode == pipeline.ModePartition && alreadyExists(err):
			// Another partition created it first: reuse it as configured.
			var info *qdrant.CollectionInfo
			if err := u.call(ctx, func(ctx context.Context) (err error) { info, err = u.rt.Qdrant.GetCollectionInfo(ctx, name); return }); err != nil {
				return fmt.Errorf("get collection %q: %s", name, qdrantconn.Message(err))
			}
			if diffs := DiffCollection(c, info); len(diffs) > 0 {
				return fmt.Errorf("collection %q was created by another partition with a different config: %s", name, strings.Join(diffs, "; "))
			}
			exists = true
			u.rt.Log.Info("collection created by another partition", "collection", name)
		case err != nil:
			return fmt.Errorf("create collection %q: %s", name, qdrantconn.Message(err))
		default:
			u.rt.Log.Info("collection created", "collection", name)
		}
	}
	if err := u.createIndexes(ctx); err != nil {
		return err
	}
	if c.Upload.Bulk {
		m := uint64(16)
		if c.Collection.HNSW != nil && c.Collection.HNSW.M != nil {
			m = *c.Collection.HNSW.M
		}
		zero := uint64(0)
		if err := u.call(ctx, func(ctx context.Context) error {
			return u.rt.Qdrant.UpdateCollection(ctx, &qdrant.UpdateCollection{CollectionName: name, HnswConfig: &qdrant.HnswConfigDiff{M: &zero}})
		}); err != nil {
			return fmt.Errorf("bulk mode: set hnsw m=0 on %q: %s", name, qdrantconn.Message(err))
		}
		if err := u.coll.Update(func(s *pipeline.CollectionState) { s.BulkHNSWM = &m; s.BulkApplied = true }); err != nil {
			return err
		}
	}
	created := !exists
	return u.coll.Update(func(s *pipeline.CollectionState) { s.Ready, s.Created = true, created })
}

// checkCount compares, in a collection this pipeline created, the exact
// point count with the rows loaded: fewer points means ids repeated (a
// later row overwrote an earlier point), which is refused unless
// points.allow_duplicate_ids is set.
func (u *Upsert) checkCount(ctx context.Context, rows int64) error {
	c := u.rt.Config
	if !u.coll.Get().Created || c.Points.AllowDuplicateIDs || rows <= 0 || u.rt.Mode == pipeline.ModePartition {
		return nil
	}
	var n uint64
	if err := u.call(ctx, func(ctx context.Context) (err error) {
		n, err = u.rt.Qdrant.Count(ctx, &qdrant.CountPoints{CollectionName: c.Collection.Name, Exact: qdrant.PtrOf(true)})
		return
	}); err != nil {
		return fmt.Errorf("count points in %q: %s", c.Collection.Name, qdrantconn.Message(err))
	}
	if int64(n) >= rows {
		return nil
	}
	msg := fmt.Sprintf("collection %q holds %d points after %d rows were loaded: %d rows reused an id an earlier row had", c.Collection.Name, n, rows, rows-int64(n))
	if col := c.Points.ID.Column; col != "" {
		msg += fmt.Sprintf(" (points.id.column %q)", col)
	}
	if ex := u.dups.examples(); ex != "" {
		msg += "; e.g. " + ex
	}
	return fmt.Errorf("%s. The later rows overwrote the earlier points. Fix the ids, or set points.allow_duplicate_ids: true to accept this, and run again (--full-refresh to reload)", msg)
}

// dupFinder notes ids repeated inside one batch, as examples for the
// error a shortfall gives (memory: one batch's ids, and five examples).
type dupFinder struct {
	mu  sync.Mutex
	off bool
	ex  []string
}

func (f *dupFinder) scan(b *pipeline.Batch) {
	if f.off || b.IDs == nil {
		return
	}
	seen := make(map[pipeline.PointID]int64, len(b.IDs))
	for i, id := range b.IDs {
		row := b.Start + int64(i)
		if first, dup := seen[id]; dup {
			f.mu.Lock()
			if len(f.ex) < 5 {
				f.ex = append(f.ex, fmt.Sprintf("id %s at rows %d and %d", id, first, row))
			}
			full := len(f.ex) >= 5
			f.mu.Unlock()
			if full {
				return
			}
			continue
		}
		seen[id] = row
	}
}

func (f *dupFinder) examples() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return strings.Join(f.ex, ", ")
}

// finishBulk restores the HNSW m saved in state and waits for green.
func (u *Upsert) finishBulk(ctx context.Context) error {
	st := u.coll.Get()
	if !st.BulkApplied || st.BulkRestored || st.BulkHNSWM == nil {
		return nil
	}
	name := u.rt.Config.Collection.Name
	m := *st.BulkHNSWM
	if err := u.call(ctx, func(ctx context.Context) error {
		return u.rt.Qdrant.UpdateCollection(ctx, &qdrant.UpdateCollection{CollectionName: name, HnswConfig: &qdrant.HnswConfigDiff{M: &m}})
	}); err != nil {
		return fmt.Errorf("bulk mode: restore hnsw m=%d on %q: %s", m, name, qdrantconn.Message(err))
	}
	for {
		var info *qdrant.CollectionInfo
		if err := u.call(ctx, func(ctx context.Context) (err error) { info, err = u.rt.Qdrant.GetCollectionInfo(ctx, name); return }); err != nil {
			return fmt.Errorf("bulk mode: wait for %q: %s", name, qdrantconn.Message(err))
		}
		if info.GetStatus() == qdrant.CollectionStatus_Green {
			break
		}
		select {
		case <-time.After(time.Second):
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return u.coll.Update(func(s *pipeline.CollectionState) { s.BulkRestored = true })
}

var distances = map[string]qdrant.Distance{"Cosine": qdrant.Distance_Cosine, "Euclid": qdrant.Distance_Euclid, "Dot": qdrant.Distance_Dot, "Manhattan": qdrant.Distance_Manhattan}
var datatypes = map[string]qdrant.Datatype{"float32": qdrant.Datatype_Float32, "float16": qdrant.Datatype_Float16, "uint8": qdrant.Datatype_Uint8}
var fieldTypes = map[string]qdrant.FieldType{
	"keyword": qdrant.FieldType_FieldTypeKeyword, "integer": qdrant.FieldType_FieldTypeInteger, "float": qdrant.FieldType_FieldTypeFloat,
	"geo": qdrant.FieldType_FieldTypeGeo, "text": qdrant.FieldType_FieldTypeText, "bool": qdrant.FieldType_FieldTypeBool,
	"datetime": qdrant.FieldType_FieldTypeDatetime, "uuid": qdrant.FieldType_FieldTypeUuid,
}

// schemaTypes is how Qdrant reports each index type in payload_schema.
var schemaTypes = map[string]qdrant.PayloadSchemaType{
	"keyword": qdrant.PayloadSchemaType_Keyword, "integer": qdrant.PayloadSchemaType_Integer, "float": qdrant.PayloadSchemaType_Float,
	"geo": qdrant.PayloadSchemaType_Geo, "text": qdrant.PayloadSchemaType_Text, "bool": qdrant.PayloadSchemaType_Bool,
	"datetime": qdrant.PayloadSchemaType_Datetime, "uuid": qdrant.PayloadSchemaType_Uuid,
}

// hnswDiff and optimizersDiff are the settings the file gives (nil: none),
// for creating a collection and for updating one in place.
func hnswDiff(c *config.Config) *qdrant.HnswConfigDiff {
	h := c.Collection.HNSW
	if h == nil {
		return nil
	}
	return &qdrant.HnswConfigDiff{M: h.M, EfConstruct: h.EfConstruct, FullScanThreshold: h.FullScanThreshold, OnDisk: h.OnDisk}
}

func optimizersDiff(c *config.Config) *qdrant.OptimizersConfigDiff {
	o := c.Collection.Optimizers
	if o == nil {
		return nil
	}
	return &qdrant.OptimizersConfigDiff{IndexingThreshold: o.IndexingThreshold, DefaultSegmentNumber: o.DefaultSegmentNumber}
}

// CreateRequest builds the CreateCollection request for a config.
func CreateRequest(c *config.Config) *qdrant.CreateCollection {
	cc := c.Collection
	m := map[string]*qdrant.VectorParams{}
	for n, v := range cc.Vectors {
		p := &qdrant.VectorParams{Size: uint64(v.Size), Distance: distances[v.Distance], OnDisk: v.OnDisk}
		if v.Datatype != "" && v.Datatype != "float32" {
			dt := datatypes[v.Datatype]
			p.Datatype = &dt
		}
		p.QuantizationConfig = Quantization(v.Quantization)
		if v.Multivector != nil {
			p.MultivectorConfig = &qdrant.MultiVectorConfig{Comparator: qdrant.MultiVectorComparator_MaxSim}
		}
		m[n] = p
	}
	req := &qdrant.CreateCollection{CollectionName: cc.Name, VectorsConfig: qdrant.NewVectorsConfigMap(m),
		ShardNumber: cc.ShardNumber, ReplicationFactor: cc.ReplicationFactor, OnDiskPayload: cc.OnDiskPayload}
	if len(cc.SparseVectors) > 0 {
		sm := map[string]*qdrant.SparseVectorParams{}
		for n, sv := range cc.SparseVectors {
			sm[n] = SparseParams(sv)
		}
		req.SparseVectorsConfig = qdrant.NewSparseVectorsConfig(sm)
	}
	req.HnswConfig, req.OptimizersConfig = hnswDiff(c), optimizersDiff(c)
	req.QuantizationConfig = Quantization(cc.Quantization)
	req.WriteConsistencyFactor = cc.WriteConsistencyFactor
	if w := cc.WAL; w != nil {
		req.WalConfig = &qdrant.WalConfigDiff{WalCapacityMb: w.CapacityMB, WalSegmentsAhead: w.SegmentsAhead}
	}
	if sm := cc.StrictMode; sm != nil {
		req.StrictModeConfig = StrictMode(sm)
	}
	req.Metadata = metadata(c)
	return req
}

// metadata is collection.metadata as Qdrant's (nil: none set).
func metadata(c *config.Config) map[string]*qdrant.Value {
	if len(c.Collection.Metadata) == 0 {
		return nil
	}
	md := map[string]any{}
	for k, v := range c.Collection.Metadata {
		md[k] = v
	}
	return qdrant.NewValueMap(md)
}

// StrictMode is the config's strict mode as Qdrant's.
func StrictMode(sm *config.StrictModeConfig) *qdrant.StrictModeConfig {
	out := &qdrant.StrictModeConfig{Enabled: sm.Enabled, MaxQueryLimit: sm.MaxQueryLimit, MaxTimeout: sm.MaxTimeout,
		UnindexedFilteringRetrieve: sm.UnindexedFilteringRetrieve, UnindexedFilteringUpdate: sm.UnindexedFilteringUpdate,
		SearchMaxHnswEf: sm.SearchMaxHNSWEf, SearchAllowExact: sm.SearchAllowExact, UpsertMaxBatchsize: sm.UpsertMaxBatchsize,
		MaxCollectionVectorSizeBytes: sm.MaxCollectionVectorSizeBytes, MaxCollectionPayloadSizeBytes: sm.MaxCollectionPayloadSizeBytes,
		MaxPointsCount: sm.MaxPointsCount, ReadRateLimit: sm.ReadRateLimit, WriteRateLimit: sm.WriteRateLimit}
	if sm.SearchMaxOversampling != nil {
		f := float32(*sm.SearchMaxOversampling)
		out.SearchMaxOversampling = &f
	}
	return out
}

// SparseParams is a sparse vector's config as Qdrant's.
func SparseParams(sv *config.SparseVectorConfig) *qdrant.SparseVectorParams {
	p := &qdrant.SparseVectorParams{}
	if sv.OnDisk != nil || sv.FullScanThreshold != nil {
		p.Index = &qdrant.SparseIndexConfig{OnDisk: sv.OnDisk, FullScanThreshold: sv.FullScanThreshold}
	}
	switch sv.Modifier {
	case "idf":
		p.Modifier = qdrant.Modifier_Idf.Enum()
	case "none":
		p.Modifier = qdrant.Modifier_None.Enum()
	}
	return p
}

var compressions = map[string]qdrant.CompressionRatio{"x4": qdrant.CompressionRatio_x4, "x8": qdrant.CompressionRatio_x8,
	"x16": qdrant.CompressionRatio_x16, "x32": qdrant.CompressionRatio_x32, "x64": qdrant.CompressionRatio_x64}

// Quantization is the config's quantization as Qdrant's (nil when unset).
func Quantization(q *config.QuantizationConfig) *qdrant.QuantizationConfig {
	switch {
	case q == nil:
		return nil
	case q.Scalar != nil:
		s := &qdrant.ScalarQuantization{Type: qdrant.QuantizationType_Int8, AlwaysRam: q.Scalar.AlwaysRAM}
		if q.Scalar.Quantile != nil {
			f := float32(*q.Scalar.Quantile)
			s.Quantile = &f
		}
		return qdrant.NewQuantizationScalar(s)
	case q.Product != nil:
		return qdrant.NewQuantizationProduct(&qdrant.ProductQuantization{Compression: compressions[q.Product.Compression], AlwaysRam: q.Product.AlwaysRAM})
	case q.Binary != nil:
		return qdrant.NewQuantizationBinary(&qdrant.BinaryQuantization{AlwaysRam: q.Binary.AlwaysRAM})
	}
	return nil
}

// quantizationDiff is a quantization as an update sets it (nil: none set;
// the collection keeps its own).
func quantizationDiff(q *config.QuantizationConfig) *qdrant.QuantizationConfigDiff {
	qc := Quantization(q)
	switch {
	case qc.GetScalar() != nil:
		return qdrant.NewQuantizationDiffScalar(qc.GetScalar())
	case qc.GetProduct() != nil:
		return qdrant.NewQuantizationDiffProduct(qc.GetProduct())
	case qc.GetBinary() != nil:
		return qdrant.NewQuantizationDiffBinary(qc.GetBinary())
	}
	return nil
}

// quantString names a quantization for a diff.
func quantString(q *qdrant.QuantizationConfig) string {
	switch {
	case q == nil:
		return "none"
	case q.GetScalar() != nil:
		s := "scalar int8"
		if q.GetScalar().Quantile != nil {
			s += fmt.Sprintf(" quantile %v", q.GetScalar().GetQuantile())
		}
		return s + ram(q.GetScalar().AlwaysRam)
	case q.GetProduct() != nil:
		return "product " + strings.TrimPrefix(q.GetProduct().GetCompression().String(), "CompressionRatio_") + ram(q.GetProduct().AlwaysRam)
	case q.GetBinary() != nil:
		return "binary" + ram(q.GetBinary().AlwaysRam)
	}
	return "unknown"
}

func ram(b *bool) string {
	if b == nil {
		return ""
	}
	return fmt.Sprintf(" always_ram %t", *b)
}

// sameQuantization compares two quantization configs as Qdrant holds them.
func sameQuantization(a, b *qdrant.QuantizationConfig) bool { return proto.Equal(a, b) }

// DiffCollection compares the config with an existing collection: every
// vector (dense, multivector, sparse) and every collection setting the
// config sets (a key left out accepts whatever the server has).
func DiffCollection(c *config.Config, info *qdrant.CollectionInfo) []string {
	var out []string
	add := func(format string, a ...any) { out = append(out, fmt.Sprintf(format, a...)) }
	cfg := info.GetConfig()
	params := cfg.GetParams()
	got := params.GetVectorsConfig().GetParamsMap().GetMap()
	if p := params.GetVectorsConfig().GetParams(); p != nil {
		return []string{"collection has one unnamed vector; the config names vectors"}
	}
	for _, n := range pipeline.SortedKeys(c.Collection.Vectors) {
		v := c.Collection.Vectors[n]
		g, ok := got[n]
		if !ok {
			add("vector %q is missing", n)
			continue
		}
		if g.GetSize() != uint64(v.Size) {
			add("vector %q size %d != %d", n, g.GetSize(), v.Size)
		}
		if g.GetDistance() != distances[v.Distance] {
			add("vector %q distance %s != %s", n, g.GetDistance(), v.Distance)
		}
		if want, have := datatypes[v.Datatype], g.GetDatatype(); v.Datatype != "" && want != have && !(want == qdrant.Datatype_Float32 && have == qdrant.Datatype_Default) {
			add("vector %q datatype %s != %s", n, strings.ToLower(have.String()), v.Datatype)
		}
		if v.OnDisk != nil && g.GetOnDisk() != *v.OnDisk {
			add("vector %q on_disk %t != %t", n, g.GetOnDisk(), *v.OnDisk)
		}
		if want := Quantization(v.Quantization); !sameQuantization(g.GetQuantizationConfig(), want) {
			add("vector %q quantization %s != %s", n, quantString(g.GetQuantizationConfig()), quantString(want))
		}
		switch mv := g.GetMultivectorConfig(); {
		case v.Multivector != nil && mv == nil:
			add("vector %q is a plain dense vector; the config makes it a multivector (max_sim)", n)
		case v.Multivector == nil && mv != nil:
			add("vector %q is a multivector (%s); the config makes it a plain dense vector", n, mv.GetComparator())
		}
	}
	for n := range got {
		if _, ok := c.Collection.Vectors[n]; !ok {
			add("collection has extra vector %q", n)
		}
	}
	gotSparse := params.GetSparseVectorsConfig().GetMap()
	for _, n := range pipeline.SortedKeys(c.Collection.SparseVectors) {
		sv := c.Collection.SparseVectors[n]
		g, ok := gotSparse[n]
		if !ok {
			add("sparse vector %q is missing", n)
			continue
		}
		if sv.Modifier != "" {
			have := "none"
			if g.GetModifier() == qdrant.Modifier_Idf {
				have = "idf"
			}
			if have != sv.Modifier {
				add("sparse vector %q modifier %s != %s", n, have, sv.Modifier)
			}
		}
		if sv.OnDisk != nil && g.GetIndex().GetOnDisk() != *sv.OnDisk {
			add("sparse vector %q on_disk %t != %t", n, g.GetIndex().GetOnDisk(), *sv.OnDisk)
		}
		if sv.FullScanThreshold != nil && g.GetIndex().GetFullScanThreshold() != *sv.FullScanThreshold {
			add("sparse vector %q full_scan_threshold %d != %d", n, g.GetIndex().GetFullScanThreshold(), *sv.FullScanThreshold)
		}
	}
	for n := range gotSparse {
		if _, ok := c.Collection.SparseVectors[n]; !ok {
			add("collection has extra sparse vector %q", n)
		}
	}
	if want := Quantization(c.Collection.Quantization); !sameQuantization(cfg.GetQuantizationConfig(), want) {
		add("quantization %s != %s", quantString(cfg.GetQuantizationConfig()), quantString(want))
	}
	cc := c.Collection
	u32 := func(key string, want *uint32, have uint32) {
		if want != nil && *want != have {
			add("%s %d != %d", key, have, *want)
		}
	}
	u64 := func(key string, want *uint64, have uint64) {
		if want != nil && *want != have {
			add("%s %d != %d", key, have, *want)
		}
	}
	u32("shard_number", cc.ShardNumber, params.GetShardNumber())
	u32("replication_factor", cc.ReplicationFactor, params.GetReplicationFactor())
	u32("write_consistency_factor", cc.WriteConsistencyFactor, params.GetWriteConsistencyFactor())
	if cc.OnDiskPayload != nil && *cc.OnDiskPayload != params.GetOnDiskPayload() {
		add("on_disk_payload %t != %t", params.GetOnDiskPayload(), *cc.OnDiskPayload)
	}
	if h := cc.HNSW; h != nil {
		hc := cfg.GetHnswConfig()
		if !c.Upload.Bulk { // bulk mode sets m=0 while it loads
			u64("hnsw.m", h.M, hc.GetM())
		}
		u64("hnsw.ef_construct", h.EfConstruct, hc.GetEfConstruct())
		u64("hnsw.full_scan_threshold", h.FullScanThreshold, hc.GetFullScanThreshold())
		if h.OnDisk != nil && *h.OnDisk != hc.GetOnDisk() {
			add("hnsw.on_disk %t != %t", hc.GetOnDisk(), *h.OnDisk)
		}
	}
	if o := cc.Optimizers; o != nil {
		oc := cfg.GetOptimizerConfig()
		u64("optimizers.indexing_threshold", o.IndexingThreshold, oc.GetIndexingThreshold())
		u64("optimizers.default_segment_number", o.DefaultSegmentNumber, oc.GetDefaultSegmentNumber())
	}
	if w := cc.WAL; w != nil {
		wc := cfg.GetWalConfig()
		u64("wal.capacity_mb", w.CapacityMB, wc.GetWalCapacityMb())
		u64("wal.segments_ahead", w.SegmentsAhead, wc.GetWalSegmentsAhead())
	}
	if sm := cc.StrictMode; sm != nil {
		out = append(out, diffStrictMode(StrictMode(sm), cfg.GetStrictModeConfig())...)
	}
	md := cfg.GetMetadata()
	for _, k := range pipeline.SortedKeys(cc.Metadata) {
		v, ok := md[k]
		switch {
		case !ok:
			add("metadata %q is missing", k)
		case v.GetStringValue() != cc.Metadata[k]:
			add("metadata %q is %q, the config says %q", k, v.GetStringValue(), cc.Metadata[k])
		}
	}
	slices.Sort(out)
	return out
}

// diffStrictMode names the strict mode fields the config sets that the
// server holds differently (one rule for every field, through protobuf
// reflection).
func diffStrictMode(want, have *qdrant.StrictModeConfig) []string {
	var out []string
	w, h := want.ProtoReflect(), have.ProtoReflect()
	w.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		if !h.IsValid() || !h.Has(fd) {
			out = append(out, fmt.Sprintf("strict_mode.%s is not set on the server; the config says %v", fd.Name(), v.Interface()))
		} else if hv := h.Get(fd); !hv.Equal(v) {
			out = append(out, fmt.Sprintf("strict_mode.%s %v != %v", fd.Name(), hv.Interface(), v.Interface()))
		}
		return true
	})
	return out
}

var _ pipeline.Stage = (*Upsert)(nil)
