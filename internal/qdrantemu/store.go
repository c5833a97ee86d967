package qdrantemu

import (
	"cmp"
	"fmt"
	"maps"
	"math"
	"slices"
	"strings"
	"sync"

	"github.com/google/uuid"
	"github.com/qdrant/go-client/qdrant"
	"github.com/x448/float16"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
)

// pointKey orders point ids the way Qdrant does: every numeric id before
// every UUID, numbers ascending, UUIDs by their bytes.
type pointKey struct {
	isUUID bool
	num    uint64
	uuid   uuid.UUID
}

func (k pointKey) compare(o pointKey) int {
	if k.isUUID != o.isUUID {
		if k.isUUID {
			return 1
		}
		return -1
	}
	if !k.isUUID {
		return cmp.Compare(k.num, o.num)
	}
	return strings.Compare(string(k.uuid[:]), string(o.uuid[:]))
}

func (k pointKey) id() *qdrant.PointId {
	if k.isUUID {
		return qdrant.NewIDUUID(k.uuid.String())
	}
	return qdrant.NewIDNum(k.num)
}

// keyOf converts a wire id into a key with Qdrant's error texts.
func keyOf(id *qdrant.PointId) (pointKey, error) {
	if id == nil {
		return pointKey{}, status.Error(codes.InvalidArgument, "Empty ID is not allowed")
	}
	switch v := id.GetPointIdOptions().(type) {
	case *qdrant.PointId_Num:
		return pointKey{num: v.Num}, nil
	case *qdrant.PointId_Uuid:
		u, err := uuid.Parse(v.Uuid)
		if err != nil {
			return pointKey{}, status.Errorf(codes.InvalidArgument, "Unable to parse UUID: %s", v.Uuid)
		}
		return pointKey{isUUID: true, uuid: u}, nil
	default:
		return pointKey{}, status.Error(codes.InvalidArgument, "No ID options provided")
	}
}

// storedPoint is one point as the emulator keeps it. Vectors are keyed by
// name; the unnamed (default) vector uses the empty name.
type storedPoint struct {
	payload map[string]*qdrant.Value
	vectors map[string][]float32
	// multi holds multivectors (token vectors) and sparse the sparse
	// vectors (sorted by index, as Qdrant keeps them), by name.
	multi  map[string][][]float32
	sparse map[string]sparseVec
}

type sparseVec struct {
	indices []uint32
	values  []float32
}

// sparseParams returns the collection's sparse vector configs.
func (c *collection) sparseParams() map[string]*qdrant.SparseVectorParams {
	return c.cfg.GetParams().GetSparseVectorsConfig().GetMap()
}

// storeDense converts values to the vector's datatype.
func storeDense(data []float32, vp *qdrant.VectorParams) []float32 {
	stored := slices.Clone(data)
	switch vp.GetDatatype() {
	case qdrant.Datatype_Float16:
		for i, f := range stored {
			stored[i] = float16.Fromfloat32(f).Float32()
		}
	case qdrant.Datatype_Uint8:
		for i, f := range stored {
			stored[i] = float32(uint8(math.Max(0, math.Min(255, math.Round(float64(f))))))
		}
	}
	return stored
}

// collection is one collection's config and points. Its mutex guards every
// field; the server's map of collections has its own lock.
type collection struct {
	mu      sync.RWMutex
	name    string
	cfg     *qdrant.CollectionConfig
	named   bool // vectors configured with params_map
	points  map[pointKey]*storedPoint
	indexes map[string]*qdrant.PayloadSchemaInfo
	opSeq   uint64
	// discard keeps no points, only a count (the --discard option).
	discard   bool
	discarded uint64
}

func (c *collection) vectorParams() map[string]*qdrant.VectorParams {
	vc := c.cfg.GetParams().GetVectorsConfig()
	if p := vc.GetParams(); p != nil {
		return map[string]*qdrant.VectorParams{"": p}
	}
	return vc.GetParamsMap().GetMap()
}

func (c *collection) count() uint64 {
	if c.discard {
		return c.discarded
	}
	return uint64(len(c.points))
}

func (c *collection) sortedKeys() []pointKey {
	keys := make([]pointKey, 0, len(c.points))
	for k := range c.points {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, pointKey.compare)
	return keys
}

// denseOf extracts the dense data of a wire vector (new or deprecated field).
func denseOf(v *qdrant.Vector) ([]float32, bool) {
	if d := v.GetDense(); d != nil {
		return d.GetData(), true
	}
	if v.GetSparse() != nil || v.GetMultiDense() != nil || v.GetDocument() != nil || v.GetImage() != nil || v.GetObject() != nil {
		return nil, false
	}
	if v.GetIndices() != nil || v.GetVectorsCount() > 0 {
		return nil, false
	}
	return v.GetData(), true
}

// sparseOf extracts a sparse vector (new or deprecated fields), sorted by
// index as Qdrant stores it.
func sparseOf(v *qdrant.Vector) (sparseVec, bool) {
	var sv sparseVec
	switch {
	case v.GetSparse() != nil:
		sv = sparseVec{indices: slices.Clone(v.GetSparse().GetIndices()), values: slices.Clone(v.GetSparse().GetValues())}
	case v.GetIndices() != nil && v.GetVector() == nil:
		sv = sparseVec{indices: slices.Clone(v.GetIndices().GetData()), values: slices.Clone(v.GetData())}
	default:
		return sv, false
	}
	order := make([]int, len(sv.indices))
	for i := range order {
		order[i] = i
	}
	slices.SortFunc(order, func(a, b int) int { return cmp.Compare(sv.indices[a], sv.indices[b]) })
	out := sparseVec{indices: make([]uint32, len(order)), values: make([]float32, len(order))}
	for i, o := range order {
		out.indices[i], out.values[i] = sv.indices[o], sv.values[o]
	}
	return out, true
}

// multiOf extracts a multivector's token vectors (new or deprecated fields).
func multiOf(v *qdrant.Vector) ([][]float32, bool) {
	if md := v.GetMultiDense(); md != nil {
		out := make([][]float32, len(md.GetVectors()))
		for i, d := range md.GetVectors() {
			out[i] = d.GetData()
		}
		return out, true
	}
	if n := v.GetVectorsCount(); n > 0 && v.GetVector() == nil {
		data := v.GetData()
		dim := len(data) / int(n)
		out := make([][]float32, n)
		for i := range out {
			out[i] = data[i*dim : (i+1)*dim]
		}
		return out, true
	}
	return nil, false
}

// maxMultiComponents is Qdrant's MAX_MULTIVECTOR_FLATTENED_LEN (release
// builds): a multivector holds fewer components than this.
const maxMultiComponents = 1 << 20

// validateVectors is the request validation Qdrant's gRPC API runs before
// an upsert touches the WAL (so it fails even with wait=false): sparse
// vectors need equally long, unique indices; multivectors need at least one
// token vector, none empty, all of one length, fewer than 2^20 components.
// Messages and field paths follow Qdrant's validate.rs and validation.rs
// (the paths as its validator flattens them; read from the source, not
// observed from a running server).
func validateVectors(points []*qdrant.PointStruct) error {
	for i, p := range points {
		var named map[string]*qdrant.Vector
		path := fmt.Sprintf("points[%d].vectors.vectors_options", i)
		switch v := p.GetVectors().GetVectorsOptions().(type) {
		case *qdrant.Vectors_Vector:
			named = map[string]*qdrant.Vector{"": v.Vector}
		case *qdrant.Vectors_Vectors:
			named = v.Vectors.GetVectors()
			path += ".vectors.[]"
		}
		for _, n := range slices.Sorted(maps.Keys(named)) {
			v := named[n]
			var problems []string
			if s := v.GetSparse(); s != nil {
				problems = sparseProblems(s.GetIndices(), s.GetValues())
			} else if v.GetIndices() != nil && v.GetVector() == nil {
				problems = sparseProblems(v.GetIndices().GetData(), v.GetData())
			}
			if md := v.GetMultiDense(); md != nil {
				problems = append(problems, multiProblems(md)...)
			}
			if len(problems) > 0 {
				for k := range problems {
					problems[k] = path + "." + problems[k]
				}
				return status.Errorf(codes.InvalidArgument, "Validation error in body: [%s]", strings.Join(problems, "; "))
			}
		}
	}
	return nil
}

func sparseProblems(indices []uint32, values []float32) []string {
	var out []string
	if len(indices) != len(values) {
		out = append(out, "values: must be the same length as indices")
	}
	seen := make(map[uint32]bool, len(indices))
	for _, i := range indices {
		if seen[i] {
			out = append(out, "indices: must be unique")
			break
		}
		seen[i] = true
	}
	return out
}

func multiProblems(md *qdrant.MultiDenseVector) []string {
	vs := md.GetVectors()
	if len(vs) == 0 {
		return []string{"data: multi vector must not be empty"}
	}
	total := 0
	for _, v := range vs {
		if len(v.GetData()) == 0 {
			return []string{"data: all vectors must be non-empty"}
		}
		total += len(v.GetData())
	}
	if total >= maxMultiComponents {
		return []string{fmt.Sprintf("data: Total size of all vectors (%d) must be less than %d", total, maxMultiComponents)}
	}
	for _, v := range vs {
		if len(v.GetData()) != len(vs[0].GetData()) {
			return []string{fmt.Sprintf("data: all vectors must have the same dimension, found vector with dimension %d", len(v.GetData()))}
		}
	}
	return nil
}

// preparePoint validates a wire point against the collection config and
// returns its key and stored form. Errors carry Qdrant's texts.
func (c *collection) preparePoint(p *qdrant.PointStruct) (pointKey, *storedPoint, error) {
	k, err := keyOf(p.GetId())
	if err != nil {
		return k, nil, err
	}
	if p.GetVectors() == nil {
		return k, nil, status.Error(codes.InvalidArgument, "Expected some vectors")
	}
	params := c.vectorParams()
	sparse := c.sparseParams()
	sp := &storedPoint{payload: p.GetPayload(), vectors: map[string][]float32{}}
	add := func(name string, v *qdrant.Vector) error {
		vp, dense := params[name]
		_, isSparse := sparse[name]
		if !dense && !isSparse {
			return status.Errorf(codes.InvalidArgument, "Wrong input: Not existing vector name error: %s", name)
		}
		sv, gotSparse := sparseOf(v)
		if isSparse != gotSparse {
			return status.Errorf(codes.InvalidArgument, "Wrong input: Conversion between sparse and regular vectors failed")
		}
		if isSparse {
			if sp.sparse == nil {
				sp.sparse = map[string]sparseVec{}
			}
			sp.sparse[name] = sv
			return nil
		}
		toks, gotMulti := multiOf(v)
		if isMulti := vp.GetMultivectorConfig() != nil; isMulti != gotMulti {
			return status.Errorf(codes.InvalidArgument, "Wrong input: Conversion between multi and regular vectors failed")
		}
		if gotMulti {
			stored := make([][]float32, len(toks))
			for i, t := range toks {
				if uint64(len(t)) != vp.GetSize() {
					return status.Errorf(codes.InvalidArgument, "Wrong input: Vector dimension error: expected dim: %d, got %d", vp.GetSize(), len(t))
				}
				stored[i] = storeDense(t, vp)
			}
			if sp.multi == nil {
				sp.multi = map[string][][]float32{}
			}
			sp.multi[name] = stored
			return nil
		}
		data, ok := denseOf(v)
		if !ok {
			return status.Errorf(codes.InvalidArgument, "Wrong input: Conversion between sparse and regular vectors failed")
		}
		if uint64(len(data)) != vp.GetSize() {
			return status.Errorf(codes.InvalidArgument, "Wrong input: Vector dimension error: expected dim: %d, got %d", vp.GetSize(), len(data))
		}
		sp.vectors[name] = storeDense(data, vp)
		return nil
	}
	switch v := p.GetVectors().GetVectorsOptions().(type) {
	case *qdrant.Vectors_Vector:
		if err := add("", v.Vector); err != nil {
			return k, nil, err
		}
	case *qdrant.Vectors_Vectors:
		names := make([]string, 0, len(v.Vectors.GetVectors()))
		for n := range v.Vectors.GetVectors() {
			names = append(names, n)
		}
		slices.Sort(names)
		for _, n := range names {
			if err := add(n, v.Vectors.GetVectors()[n]); err != nil {
				return k, nil, err
			}
		}
	default:
		return k, nil, status.Error(codes.InvalidArgument, "Expected some vectors")
	}
	return k, sp, nil
}

// retrieved renders a stored point the way Qdrant returns it.
func (c *collection) retrieved(k pointKey, sp *storedPoint, wp *qdrant.WithPayloadSelector, wv *qdrant.WithVectorsSelector) *qdrant.RetrievedPoint {
	rp := &qdrant.RetrievedPoint{Id: k.id(), Payload: selectPayload(sp.payload, wp)}
	if wv == nil {
		return rp
	}
	var include map[string]bool
	switch s := wv.GetSelectorOptions().(type) {
	case *qdrant.WithVectorsSelector_Enable:
		if !s.Enable {
			return rp
		}
	case *qdrant.WithVectorsSelector_Include:
		include = map[string]bool{}
		for _, n := range s.Include.GetNames() {
			include[n] = true
		}
	default:
		return rp
	}
	out := func(d []float32) *qdrant.VectorOutput {
		d = slices.Clone(d)
		// Fill the deprecated field too: clients read either.
		return &qdrant.VectorOutput{Data: d, Vector: &qdrant.VectorOutput_Dense{Dense: &qdrant.DenseVector{Data: d}}}
	}
	// Multivectors and sparse vectors come back in the new fields only,
	// as Qdrant sends them.
	outMulti := func(toks [][]float32) *qdrant.VectorOutput {
		md := &qdrant.MultiDenseVector{}
		for _, t := range toks {
			md.Vectors = append(md.Vectors, &qdrant.DenseVector{Data: slices.Clone(t)})
		}
		return &qdrant.VectorOutput{Vector: &qdrant.VectorOutput_MultiDense{MultiDense: md}}
	}
	outSparse := func(sv sparseVec) *qdrant.VectorOutput {
		return &qdrant.VectorOutput{Vector: &qdrant.VectorOutput_Sparse{Sparse: &qdrant.SparseVector{Indices: slices.Clone(sv.indices), Values: slices.Clone(sv.values)}}}
	}
	if !c.named {
		if d, ok := sp.vectors[""]; ok {
			rp.Vectors = &qdrant.VectorsOutput{VectorsOptions: &qdrant.VectorsOutput_Vector{Vector: out(d)}}
		}
		return rp
	}
	m := map[string]*qdrant.VectorOutput{}
	for n, d := range sp.vectors {
		if include == nil || include[n] {
			m[n] = out(d)
		}
	}
	for n, t := range sp.multi {
		if include == nil || include[n] {
			m[n] = outMulti(t)
		}
	}
	for n, sv := range sp.sparse {
		if include == nil || include[n] {
			m[n] = outSparse(sv)
		}
	}
	rp.Vectors = &qdrant.VectorsOutput{VectorsOptions: &qdrant.VectorsOutput_Vectors{Vectors: &qdrant.NamedVectorsOutput{Vectors: m}}}
	return rp
}

func selectPayload(p map[string]*qdrant.Value, wp *qdrant.WithPayloadSelector) map[string]*qdrant.Value {
	if wp == nil || len(p) == 0 {
		return map[string]*qdrant.Value{}
	}
	out := map[string]*qdrant.Value{}
	switch s := wp.GetSelectorOptions().(type) {
	case *qdrant.WithPayloadSelector_Enable:
		if !s.Enable {
			return out
		}
		for k, v := range p {
			out[k] = proto.Clone(v).(*qdrant.Value)
		}
	case *qdrant.WithPayloadSelector_Include:
		for _, f := range s.Include.GetFields() {
			if v, ok := p[f]; ok {
				out[f] = proto.Clone(v).(*qdrant.Value)
			}
		}
	case *qdrant.WithPayloadSelector_Exclude:
		ex := map[string]bool{}
		for _, f := range s.Exclude.GetFields() {
			ex[f] = true
		}
		for k, v := range p {
			if !ex[k] {
				out[k] = proto.Clone(v).(*qdrant.Value)
			}
		}
	}
	return out
}

// validateCollectionName mirrors validate_collection_name_legacy: 1..255
// characters, no '/' and no NUL.
func validateCollectionName(name string) error {
	switch {
	case len(name) < 1 || len(name) > 255:
		return status.Errorf(codes.InvalidArgument, "Validation error in body: [collection_name: length must be between 1 and 255]")
	case strings.ContainsAny(name, "/\x00"):
		return status.Errorf(codes.InvalidArgument, "Validation error in body: [collection_name: collection name cannot contain \"/\" or \"\\0\" char]")
	}
	return nil
}

func notFound(name string) error {
	return status.Errorf(codes.NotFound, "Not found: Collection `%s` doesn't exist!", name)
}

func alreadyExists(name string) error {
	return status.Errorf(codes.AlreadyExists, "Wrong input: Collection `%s` already exists!", name)
}

func validationError(field, msg string) error {
	return status.Error(codes.InvalidArgument, fmt.Sprintf("Validation error in body: [%s: %s]", field, msg))
}
