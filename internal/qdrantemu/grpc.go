package qdrantemu

import (
	"context"
	"slices"
	"strconv"
	"time"

	"github.com/qdrant/go-client/qdrant"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
)

type qdrantService struct {
	qdrant.UnimplementedQdrantServer
	s *Server
}

func (q *qdrantService) HealthCheck(context.Context, *qdrant.HealthCheckRequest) (*qdrant.HealthCheckReply, error) {
	commit := "emulator"
	return &qdrant.HealthCheckReply{Title: "qdrant - vector search engine", Version: Version, Commit: &commit}, nil
}

type collectionsService struct {
	qdrant.UnimplementedCollectionsServer
	s *Server
}

func defaultConfig() *qdrant.CollectionConfig {
	u := func(v uint64) *uint64 { return &v }
	f := func(v float64) *float64 { return &v }
	b := func(v bool) *bool { return &v }
	one := uint32(1)
	return &qdrant.CollectionConfig{
		Params: &qdrant.CollectionParams{ShardNumber: 1, ReplicationFactor: &one, WriteConsistencyFactor: &one, OnDiskPayload: true},
		HnswConfig: &qdrant.HnswConfigDiff{M: u(16), EfConstruct: u(100), FullScanThreshold: u(10000),
			MaxIndexingThreads: u(0), OnDisk: b(false)},
		OptimizerConfig: &qdrant.OptimizersConfigDiff{DeletedThreshold: f(0.2), VacuumMinVectorNumber: u(1000),
			DefaultSegmentNumber: u(0), IndexingThreshold: u(10000), FlushIntervalSec: u(5)},
		WalConfig: &qdrant.WalConfigDiff{WalCapacityMb: u(32), WalSegmentsAhead: u(0)},
	}
}

// configFromCreate validates a CreateCollection request and builds the
// config Get will echo.
func configFromCreate(r *qdrant.CreateCollection) (*qdrant.CollectionConfig, bool, error) {
	if err := validateCollectionName(r.GetCollectionName()); err != nil {
		return nil, false, err
	}
	cfg := defaultConfig()
	named := false
	vc := r.GetVectorsConfig()
	check := func(field string, p *qdrant.VectorParams) error {
		if p.GetSize() < 1 || p.GetSize() > 65536 {
			return validationError(field+".size", "value "+itoa(p.GetSize())+" invalid, must be from 1 to 65536")
		}
		if p.GetDistance() == qdrant.Distance_UnknownDistance || qdrant.Distance_name[int32(p.GetDistance())] == "" {
			return status.Errorf(codes.InvalidArgument, "Unable to convert distance: %d", p.GetDistance())
		}
		if hc := p.GetHnswConfig(); hc != nil && hc.EfConstruct != nil && hc.GetEfConstruct() < 4 {
			return validationError(field+".hnsw_config.ef_construct", "value "+itoa(hc.GetEfConstruct())+" invalid, must be 4 or larger")
		}
		return nil
	}
	switch {
	case vc.GetParams() != nil:
		if err := check("vectors_config", vc.GetParams()); err != nil {
			return nil, false, err
		}
	case vc.GetParamsMap() != nil:
		named = true
		names := make([]string, 0, len(vc.GetParamsMap().GetMap()))
		for n := range vc.GetParamsMap().GetMap() {
			names = append(names, n)
		}
		slices.Sort(names)
		for _, n := range names {
			if n == "" {
				return nil, false, validationError("vectors_config", "vector name must not be empty")
			}
			if err := check("vectors_config."+n, vc.GetParamsMap().GetMap()[n]); err != nil {
				return nil, false, err
			}
		}
	default:
		named = true // sparse-only or vectorless collections use named vectors
		vc = &qdrant.VectorsConfig{Config: &qdrant.VectorsConfig_ParamsMap{ParamsMap: &qdrant.VectorParamsMap{Map: map[string]*qdrant.VectorParams{}}}}
	}
	cfg.Params.VectorsConfig = proto.Clone(vc).(*qdrant.VectorsConfig)
	if r.ShardNumber != nil {
		if r.GetShardNumber() < 1 {
			return nil, false, validationError("shard_number", "value 0 invalid, must be 1 or larger")
		}
		cfg.Params.ShardNumber = r.GetShardNumber()
	}
	if r.ReplicationFactor != nil {
		if r.GetReplicationFactor() < 1 {
			return nil, false, validationError("replication_factor", "value 0 invalid, must be 1 or larger")
		}
		v := r.GetReplicationFactor()
		cfg.Params.ReplicationFactor = &v
	}
	if r.WriteConsistencyFactor != nil {
		v := r.GetWriteConsistencyFactor()
		cfg.Params.WriteConsistencyFactor = &v
	}
	if r.OnDiskPayload != nil {
		cfg.Params.OnDiskPayload = r.GetOnDiskPayload()
	}
	if h := r.GetHnswConfig(); h != nil {
		if h.EfConstruct != nil && h.GetEfConstruct() < 4 {
			return nil, false, validationError("hnsw_config.ef_construct", "value "+itoa(h.GetEfConstruct())+" invalid, must be 4 or larger")
		}
		proto.Merge(cfg.HnswConfig, h)
	}
	if o := r.GetOptimizersConfig(); o != nil {
		proto.Merge(cfg.OptimizerConfig, o)
	}
	if w := r.GetWalConfig(); w != nil {
		proto.Merge(cfg.WalConfig, w)
	}
	if q := r.GetQuantizationConfig(); q != nil {
		cfg.QuantizationConfig = proto.Clone(q).(*qdrant.QuantizationConfig)
	}
	if sm := r.GetStrictModeConfig(); sm != nil {
		cfg.StrictModeConfig = proto.Clone(sm).(*qdrant.StrictModeConfig)
	}
	if sv := r.GetSparseVectorsConfig(); sv != nil {
		cfg.Params.SparseVectorsConfig = proto.Clone(sv).(*qdrant.SparseVectorConfig)
	}
	if len(r.GetMetadata()) > 0 {
		cfg.Metadata = r.GetMetadata()
	}
	return cfg, named, nil
}

func itoa(v uint64) string { return strconv.FormatUint(v, 10) }

func (c *collectionsService) Create(ctx context.Context, r *qdrant.CreateCollection) (*qdrant.CollectionOperationResponse, error) {
	start := time.Now()
	cfg, named, err := configFromCreate(r)
	if err != nil {
		return nil, err
	}
	s := c.s
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.collections[r.GetCollectionName()]; ok {
		return nil, alreadyExists(r.GetCollectionName())
	}
	s.collections[r.GetCollectionName()] = &collection{name: r.GetCollectionName(), cfg: cfg, named: named,
		points: map[pointKey]*storedPoint{}, indexes: map[string]*qdrant.PayloadSchemaInfo{}, discard: s.opts.Discard}
	s.record(Op{At: start, Kind: "create", Collection: r.GetCollectionName(), HNSWM: cfg.GetHnswConfig().GetM(), ShardNumber: cfg.GetParams().GetShardNumber()})
	s.log.Info("collection created", "collection", r.GetCollectionName())
	return &qdrant.CollectionOperationResponse{Result: true, Time: since(start)}, nil
}

func (c *collectionsService) Get(ctx context.Context, r *qdrant.GetCollectionInfoRequest) (*qdrant.GetCollectionInfoResponse, error) {
	start := time.Now()
	col, err := c.s.get(r.GetCollectionName())
	if err != nil {
		return nil, err
	}
	return &qdrant.GetCollectionInfoResponse{Result: col.info(), Time: since(start)}, nil
}

// info renders CollectionInfo; the emulator has no optimizer, so a
// collection is always green.
func (c *collection) info() *qdrant.CollectionInfo {
	c.mu.RLock()
	defer c.mu.RUnlock()
	n := c.count()
	segs := uint64(c.cfg.GetParams().GetShardNumber())
	schema := map[string]*qdrant.PayloadSchemaInfo{}
	for f, si := range c.indexes {
		si = proto.Clone(si).(*qdrant.PayloadSchemaInfo)
		cnt := uint64(0)
		for _, p := range c.points {
			if _, ok := p.payload[f]; ok {
				cnt++
			}
		}
		si.Points = &cnt
		schema[f] = si
	}
	zero := uint64(0)
	return &qdrant.CollectionInfo{
		Status:              qdrant.CollectionStatus_Green,
		OptimizerStatus:     &qdrant.OptimizerStatus{Ok: true},
		SegmentsCount:       segs,
		Config:              proto.Clone(c.cfg).(*qdrant.CollectionConfig),
		PayloadSchema:       schema,
		PointsCount:         &n,
		IndexedVectorsCount: &zero,
	}
}

func (c *collectionsService) List(ctx context.Context, r *qdrant.ListCollectionsRequest) (*qdrant.ListCollectionsResponse, error) {
	start := time.Now()
	c.s.mu.RLock()
	names := make([]string, 0, len(c.s.collections))
	for n := range c.s.collections {
		names = append(names, n)
	}
	c.s.mu.RUnlock()
	slices.Sort(names)
	out := &qdrant.ListCollectionsResponse{Time: since(start)}
	for _, n := range names {
		out.Collections = append(out.Collections, &qdrant.CollectionDescription{Name: n})
	}
	return out, nil
}

func (c *collectionsService) Delete(ctx context.Context, r *qdrant.DeleteCollection) (*qdrant.CollectionOperationResponse, error) {
	start := time.Now()
	ok := c.s.deleteCollection(start, r.GetCollectionName())
	// Qdrant answers result=false, not an error, for a missing collection.
	return &qdrant.CollectionOperationResponse{Result: ok, Time: since(start)}, nil
}

func (c *collectionsService) CollectionExists(ctx context.Context, r *qdrant.CollectionExistsRequest) (*qdrant.CollectionExistsResponse, error) {
	start := time.Now()
	c.s.mu.RLock()
	_, ok := c.s.collections[r.GetCollectionName()]
	c.s.mu.RUnlock()
	return &qdrant.CollectionExistsResponse{Result: &qdrant.CollectionExists{Exists: ok}, Time: since(start)}, nil
}

func (c *collectionsService) Update(ctx context.Context, r *qdrant.UpdateCollection) (_ *qdrant.CollectionOperationResponse, err error) {
	start := time.Now()
	col, err := c.s.get(r.GetCollectionName())
	if err != nil {
		return nil, err
	}
	col.mu.Lock()
	defer col.mu.Unlock()
	defer func() {
		if err == nil {
			c.s.record(Op{At: start, Kind: "update", Collection: col.name, HNSWM: col.cfg.GetHnswConfig().GetM()})
		}
	}()
	if h := r.GetHnswConfig(); h != nil {
		if h.EfConstruct != nil && h.GetEfConstruct() < 4 {
			return nil, validationError("hnsw_config.ef_construct", "value "+itoa(h.GetEfConstruct())+" invalid, must be 4 or larger")
		}
		proto.Merge(col.cfg.HnswConfig, h)
	}
	if o := r.GetOptimizersConfig(); o != nil {
		proto.Merge(col.cfg.OptimizerConfig, o)
	}
	if q := r.GetQuantizationConfig(); q != nil {
		qc, err := quantizationFromDiff(q)
		if err != nil {
			return nil, err
		}
		col.cfg.QuantizationConfig = qc
	}
	if p := r.GetParams(); p != nil {
		if p.ReplicationFactor != nil {
			v := p.GetReplicationFactor()
			col.cfg.Params.ReplicationFactor = &v
		}
		if p.WriteConsistencyFactor != nil {
			v := p.GetWriteConsistencyFactor()
			col.cfg.Params.WriteConsistencyFactor = &v
		}
		if p.OnDiskPayload != nil {
			col.cfg.Params.OnDiskPayload = p.GetOnDiskPayload()
		}
	}
	if vd := r.GetVectorsConfig(); vd != nil {
		params := map[string]*qdrant.VectorParams{}
		if col.named {
			params = col.cfg.Params.VectorsConfig.GetParamsMap().GetMap()
		}
		apply := func(name string, d *qdrant.VectorParamsDiff) error {
			var vp *qdrant.VectorParams
			if name == "" && !col.named {
				vp = col.cfg.Params.VectorsConfig.GetParams()
			} else {
				vp = params[name]
			}
			if vp == nil {
				return status.Errorf(codes.InvalidArgument, "Wrong input: Not existing vector name error: %s", name)
			}
			if d.GetHnswConfig() != nil {
				if vp.HnswConfig == nil {
					vp.HnswConfig = &qdrant.HnswConfigDiff{}
				}
				proto.Merge(vp.HnswConfig, d.GetHnswConfig())
			}
			if d.OnDisk != nil {
				v := d.GetOnDisk()
				vp.OnDisk = &v
			}
			if q := d.GetQuantizationConfig(); q != nil {
				qc, err := quantizationFromDiff(q)
				if err != nil {
					return err
				}
				vp.QuantizationConfig = qc
			}
			return nil
		}
		if p := vd.GetParams(); p != nil {
			if err := apply("", p); err != nil {
				return nil, err
			}
		}
		for n, d := range vd.GetParamsMap().GetMap() {
			if err := apply(n, d); err != nil {
				return nil, err
			}
		}
	}
	if sm := r.GetStrictModeConfig(); sm != nil {
		// As Qdrant's update_strict_mode_config: the fields set are
		// merged into the collection's.
		if col.cfg.StrictModeConfig == nil {
			col.cfg.StrictModeConfig = &qdrant.StrictModeConfig{}
		}
		proto.Merge(col.cfg.StrictModeConfig, sm)
	}
	if len(r.GetMetadata()) > 0 {
		if col.cfg.Metadata == nil {
			col.cfg.Metadata = map[string]*qdrant.Value{}
		}
		for k, v := range r.GetMetadata() {
			col.cfg.Metadata[k] = v
		}
	}
	return &qdrant.CollectionOperationResponse{Result: true, Time: since(start)}, nil
}

// quantizationFromDiff is the quantization an update sets, as Qdrant's
// update_quantization_config_from_diff: the new one replaces the old;
// disabled removes it (nil).
func quantizationFromDiff(q *qdrant.QuantizationConfigDiff) (*qdrant.QuantizationConfig, error) {
	switch {
	case q.GetScalar() != nil:
		return qdrant.NewQuantizationScalar(q.GetScalar()), nil
	case q.GetProduct() != nil:
		return qdrant.NewQuantizationProduct(q.GetProduct()), nil
	case q.GetBinary() != nil:
		return qdrant.NewQuantizationBinary(q.GetBinary()), nil
	case q.GetDisabled() != nil:
		return nil, nil
	}
	return nil, validationError("quantization_config", "one of scalar, product, binary or disabled is required")
}

type pointsService struct {
	qdrant.UnimplementedPointsServer
	s *Server
}

func (p *pointsService) Upsert(ctx context.Context, r *qdrant.UpsertPoints) (resp *qdrant.PointsOperationResponse, err error) {
	start := time.Now()
	col, err := p.s.get(r.GetCollectionName())
	if err != nil {
		return nil, err
	}
	wait := r.GetWait()
	op := Op{At: start, Kind: "upsert", Collection: col.name, Points: len(r.GetPoints()), Wait: wait}
	col.mu.RLock()
	op.HNSWM = col.cfg.GetHnswConfig().GetM()
	col.mu.RUnlock()
	defer func() { op.Code = status.Code(err); p.s.record(op) }()
	if err := p.s.injectUpsertFault(ctx, len(r.GetPoints())); err != nil {
		return nil, err
	}
	if r.GetUpdateFilter() != nil || r.GetShardKeySelector() != nil {
		return nil, status.Error(codes.Unimplemented, "qdrant emulator: update_filter and shard_key_selector are not supported")
	}
	if p.s.opts.Sink {
		// Points counted by sinkCodec, not decoded: nothing to validate.
		col.mu.Lock()
		col.discarded += uint64(len(r.GetPoints()))
		col.opSeq++
		opID := col.opSeq
		col.mu.Unlock()
		return &qdrant.PointsOperationResponse{Result: &qdrant.UpdateResult{OperationId: &opID, Status: qdrant.UpdateStatus_Completed}, Time: since(start)}, nil
	}
	if err := validateVectors(r.GetPoints()); err != nil {
		return nil, err
	}
	col.mu.RLock()
	sm := col.cfg.GetStrictModeConfig()
	col.mu.RUnlock()
	if sm.GetEnabled() && sm.UpsertMaxBatchsize != nil && uint64(len(r.GetPoints())) > sm.GetUpsertMaxBatchsize() {
		// Qdrant's strict mode check (verification/update.rs, check_limit_opt).
		return nil, status.Errorf(codes.InvalidArgument, "Bad request: Limit exceeded %d > %d for \"upsert limit\". Help: Reduce the \"upsert limit\" parameter to or below %d.",
			len(r.GetPoints()), sm.GetUpsertMaxBatchsize(), sm.GetUpsertMaxBatchsize())
	}
	// Validation happens "at apply time" (after the WAL write in Qdrant):
	// prepare every point first so a bad batch changes nothing.
	type prepared struct {
		k  pointKey
		sp *storedPoint
	}
	var applyErr error
	batch := make([]prepared, 0, len(r.GetPoints()))
	col.mu.RLock()
	for _, pt := range r.GetPoints() {
		k, sp, err := col.preparePoint(pt)
		if err != nil {
			// A malformed id fails at conversion time even with wait=false.
			if _, idErr := keyOf(pt.GetId()); idErr != nil || pt.GetVectors() == nil {
				col.mu.RUnlock()
				return nil, err
			}
			applyErr = err
			break
		}
		batch = append(batch, prepared{k, sp})
	}
	col.mu.RUnlock()
	mode := r.GetUpdateMode()
	apply := func() {
		col.mu.Lock()
		defer col.mu.Unlock()
		for _, b := range batch {
			if col.discard {
				col.discarded++
				continue
			}
			_, exists := col.points[b.k]
			switch {
			case mode == qdrant.UpdateMode_InsertOnly && exists, mode == qdrant.UpdateMode_UpdateOnly && !exists:
				continue
			}
			col.points[b.k] = b.sp
		}
	}
	col.mu.Lock()
	col.opSeq++
	opID := col.opSeq
	col.mu.Unlock()
	if applyErr == nil {
		p.s.faultMu.Lock()
		delay := p.s.faults.AsyncApplyDelay
		p.s.faultMu.Unlock()
		if !wait && delay > 0 {
			p.s.later(delay, apply) // acknowledged now, visible later
		} else {
			apply()
		}
	}
	if applyErr != nil {
		if wait || p.s.opts.StrictWait {
			return nil, applyErr
		}
		// Qdrant acknowledges after the WAL write and drops the apply error.
		p.s.log.Warn("upsert failed at apply time; dropped (wait=false)", "collection", col.name, "err", applyErr)
	}
	st := qdrant.UpdateStatus_Acknowledged
	if wait {
		st = qdrant.UpdateStatus_Completed
	}
	return &qdrant.PointsOperationResponse{Result: &qdrant.UpdateResult{OperationId: &opID, Status: st}, Time: since(start)}, nil
}

func (p *pointsService) Get(ctx context.Context, r *qdrant.GetPoints) (*qdrant.GetResponse, error) {
	start := time.Now()
	col, err := p.s.get(r.GetCollectionName())
	if err != nil {
		return nil, err
	}
	col.mu.RLock()
	defer col.mu.RUnlock()
	out := &qdrant.GetResponse{}
	seen := map[pointKey]bool{}
	for _, id := range r.GetIds() {
		k, err := keyOf(id)
		if err != nil {
			return nil, err
		}
		if sp, ok := col.points[k]; ok && !seen[k] {
			seen[k] = true
			out.Result = append(out.Result, col.retrieved(k, sp, r.GetWithPayload(), r.GetWithVectors()))
		}
	}
	out.Time = since(start)
	return out, nil
}

func (p *pointsService) Count(ctx context.Context, r *qdrant.CountPoints) (*qdrant.CountResponse, error) {
	start := time.Now()
	col, err := p.s.get(r.GetCollectionName())
	if err != nil {
		return nil, err
	}
	if r.GetFilter() != nil {
		return nil, status.Error(codes.Unimplemented, "qdrant emulator: filters are not supported")
	}
	col.mu.RLock()
	n := col.count()
	col.mu.RUnlock()
	return &qdrant.CountResponse{Result: &qdrant.CountResult{Count: n}, Time: since(start)}, nil
}

func (p *pointsService) Scroll(ctx context.Context, r *qdrant.ScrollPoints) (*qdrant.ScrollResponse, error) {
	start := time.Now()
	col, err := p.s.get(r.GetCollectionName())
	if err != nil {
		return nil, err
	}
	if r.GetFilter() != nil || r.GetOrderBy() != nil {
		return nil, status.Error(codes.Unimplemented, "qdrant emulator: filter and order_by are not supported")
	}
	limit := 10
	if r.Limit != nil {
		if r.GetLimit() < 1 {
			return nil, validationError("limit", "value 0 invalid, must be 1 or larger")
		}
		limit = int(r.GetLimit())
	}
	var from *pointKey
	if r.GetOffset() != nil {
		k, err := keyOf(r.GetOffset())
		if err != nil {
			return nil, err
		}
		from = &k
	}
	wp := r.GetWithPayload()
	if wp == nil {
		wp = qdrant.NewWithPayload(true) // Scroll returns payload by default
	}
	col.mu.RLock()
	defer col.mu.RUnlock()
	keys := col.sortedKeys()
	i := 0
	if from != nil {
		i, _ = slices.BinarySearchFunc(keys, *from, pointKey.compare)
	}
	out := &qdrant.ScrollResponse{}
	for ; i < len(keys) && len(out.Result) < limit; i++ {
		out.Result = append(out.Result, col.retrieved(keys[i], col.points[keys[i]], wp, r.GetWithVectors()))
	}
	if i < len(keys) {
		out.NextPageOffset = keys[i].id()
	}
	out.Time = since(start)
	return out, nil
}

func (p *pointsService) Delete(ctx context.Context, r *qdrant.DeletePoints) (*qdrant.PointsOperationResponse, error) {
	start := time.Now()
	col, err := p.s.get(r.GetCollectionName())
	if err != nil {
		return nil, err
	}
	ids := r.GetPoints().GetPoints().GetIds()
	if r.GetPoints().GetFilter() != nil {
		return nil, status.Error(codes.Unimplemented, "qdrant emulator: delete by filter is not supported")
	}
	keys := make([]pointKey, 0, len(ids))
	for _, id := range ids {
		k, err := keyOf(id)
		if err != nil {
			return nil, err
		}
		keys = append(keys, k)
	}
	col.mu.Lock()
	for _, k := range keys {
		delete(col.points, k)
	}
	col.opSeq++
	op := col.opSeq
	col.mu.Unlock()
	return &qdrant.PointsOperationResponse{Result: &qdrant.UpdateResult{OperationId: &op, Status: waitStatus(r.GetWait())}, Time: since(start)}, nil
}

func waitStatus(wait bool) qdrant.UpdateStatus {
	if wait {
		return qdrant.UpdateStatus_Completed
	}
	return qdrant.UpdateStatus_Acknowledged
}

var fieldTypeToSchema = map[qdrant.FieldType]qdrant.PayloadSchemaType{
	qdrant.FieldType_FieldTypeKeyword:  qdrant.PayloadSchemaType_Keyword,
	qdrant.FieldType_FieldTypeInteger:  qdrant.PayloadSchemaType_Integer,
	qdrant.FieldType_FieldTypeFloat:    qdrant.PayloadSchemaType_Float,
	qdrant.FieldType_FieldTypeGeo:      qdrant.PayloadSchemaType_Geo,
	qdrant.FieldType_FieldTypeText:     qdrant.PayloadSchemaType_Text,
	qdrant.FieldType_FieldTypeBool:     qdrant.PayloadSchemaType_Bool,
	qdrant.FieldType_FieldTypeDatetime: qdrant.PayloadSchemaType_Datetime,
	qdrant.FieldType_FieldTypeUuid:     qdrant.PayloadSchemaType_Uuid,
}

func (p *pointsService) CreateFieldIndex(ctx context.Context, r *qdrant.CreateFieldIndexCollection) (*qdrant.PointsOperationResponse, error) {
	start := time.Now()
	col, err := p.s.get(r.GetCollectionName())
	if err != nil {
		return nil, err
	}
	if r.FieldType == nil {
		return nil, status.Error(codes.InvalidArgument, "Wrong input: Field type is not specified")
	}
	st, ok := fieldTypeToSchema[r.GetFieldType()]
	if !ok {
		return nil, status.Errorf(codes.InvalidArgument, "Unable to convert field type: %d", r.GetFieldType())
	}
	col.mu.Lock()
	info := &qdrant.PayloadSchemaInfo{DataType: st}
	if r.GetFieldIndexParams() != nil {
		info.Params = proto.Clone(r.GetFieldIndexParams()).(*qdrant.PayloadIndexParams)
	}
	col.indexes[r.GetFieldName()] = info
	col.opSeq++
	op := col.opSeq
	col.mu.Unlock()
	return &qdrant.PointsOperationResponse{Result: &qdrant.UpdateResult{OperationId: &op, Status: waitStatus(r.GetWait())}, Time: since(start)}, nil
}

func (p *pointsService) DeleteFieldIndex(ctx context.Context, r *qdrant.DeleteFieldIndexCollection) (*qdrant.PointsOperationResponse, error) {
	start := time.Now()
	col, err := p.s.get(r.GetCollectionName())
	if err != nil {
		return nil, err
	}
	col.mu.Lock()
	delete(col.indexes, r.GetFieldName())
	col.opSeq++
	op := col.opSeq
	col.mu.Unlock()
	return &qdrant.PointsOperationResponse{Result: &qdrant.UpdateResult{OperationId: &op, Status: waitStatus(r.GetWait())}, Time: since(start)}, nil
}

type snapshotsService struct {
	qdrant.UnimplementedSnapshotsServer
	s *Server
}

func (ss *snapshotsService) Create(ctx context.Context, r *qdrant.CreateSnapshotRequest) (*qdrant.CreateSnapshotResponse, error) {
	start := time.Now()
	d, err := ss.s.createSnapshot(ctx, r.GetCollectionName())
	if err != nil {
		return nil, err
	}
	return &qdrant.CreateSnapshotResponse{SnapshotDescription: d.proto(), Time: since(start)}, nil
}

func (ss *snapshotsService) List(ctx context.Context, r *qdrant.ListSnapshotsRequest) (*qdrant.ListSnapshotsResponse, error) {
	start := time.Now()
	ds, err := ss.s.listSnapshots(r.GetCollectionName())
	if err != nil {
		return nil, err
	}
	out := &qdrant.ListSnapshotsResponse{Time: since(start)}
	for _, d := range ds {
		out.SnapshotDescriptions = append(out.SnapshotDescriptions, d.proto())
	}
	return out, nil
}

func (ss *snapshotsService) Delete(ctx context.Context, r *qdrant.DeleteSnapshotRequest) (*qdrant.DeleteSnapshotResponse, error) {
	start := time.Now()
	if err := ss.s.deleteSnapshot(r.GetCollectionName(), r.GetSnapshotName()); err != nil {
		return nil, err
	}
	return &qdrant.DeleteSnapshotResponse{Time: since(start)}, nil
}
