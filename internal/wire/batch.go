package wire

import (
	"fmt"
	"math"
	"slices"
	"strings"

	"github.com/snappipe/snappipe/pipeline"
	"google.golang.org/protobuf/encoding/protowire"
)

// Upsert is one sink-neutral batch to send as a qdrant.UpsertPoints
// request. The upsert stage is the only place snappipe's rows become
// Qdrant's types, and it does so here, straight into protobuf bytes: no
// qdrant.PointStruct is built (the codec's Marshal encodes an *Upsert).
type Upsert struct {
	Collection string
	Wait       bool
	Batch      *pipeline.Batch
	// Hold, when set, lets Codec send the batch's float32 dense vectors
	// from the batch's own memory instead of copying them into the
	// request: each request it encodes holds the batch until gRPC has
	// written the bytes (see Hold). Nil: every byte is copied.
	Hold *Hold
}

// AppendBatch appends the UpsertPoints encoding of u to b.
func AppendBatch(b []byte, u *Upsert) []byte { return measure(u).append(b) }

// BatchSize is the encoded size of u.
func BatchSize(u *Upsert) int { return measure(u).total() }

// measured is a batch sized once: its layout (shared by every point) and
// every point's size (payload sizes walk the values), which the total and
// the length prefixes both use.
type measured struct {
	u     *Upsert
	lay   vecLayout
	sizes []int
}

func measure(u *Upsert) *measured {
	m := &measured{u: u, lay: vecLayoutOf(u.Batch), sizes: make([]int, u.Batch.N)}
	for i := range m.sizes {
		m.sizes[i] = batchPointSize(u.Batch, i, &m.lay)
	}
	return m
}

func (m *measured) total() int {
	n := 2 // wait
	if m.u.Collection != "" {
		n += 1 + protowire.SizeBytes(len(m.u.Collection))
	}
	for _, sz := range m.sizes {
		n += 1 + protowire.SizeBytes(sz)
	}
	return n
}

func (m *measured) append(b []byte) []byte { return m.appendLending(b, nil) }

// appendLending appends the request, leaving out the vectors of the
// columns ld lends (their length prefixes are written) and recording
// where each would have gone.
func (m *measured) appendLending(b []byte, ld *lender) []byte {
	if m.u.Collection != "" {
		b = appendTag(b, upsertCollection, protowire.BytesType)
		b = protowire.AppendString(b, m.u.Collection)
	}
	b = appendTag(b, upsertWait, protowire.VarintType)
	b = appendVarint(b, protowire.EncodeBool(m.u.Wait))
	for i, sz := range m.sizes {
		b = appendTag(b, upsertPoints, protowire.BytesType)
		b = appendVarint(b, uint64(sz))
		b = appendBatchPoint(b, m.u.Batch, i, &m.lay, ld)
	}
	return b
}

func pidSize(id pipeline.PointID) int {
	if id.UUID != "" {
		return 1 + protowire.SizeBytes(len(id.UUID))
	}
	return 1 + protowire.SizeVarint(id.Num)
}

func appendPID(b []byte, id pipeline.PointID) []byte {
	if id.UUID != "" {
		b = appendTag(b, idUUID, protowire.BytesType)
		return protowire.AppendString(b, id.UUID)
	}
	b = appendTag(b, idNum, protowire.VarintType)
	return appendVarint(b, id.Num)
}

// vecs of point i: NamedVectors{map<name, Vector{dense{data}}>}.
func denseEntrySize(name string, n int) int {
	dense := 0
	if n > 0 {
		dense = 1 + protowire.SizeBytes(4*n)
	}
	vec := 2 + protowire.SizeBytes(dense)
	return 1 + protowire.SizeBytes(len(name)) + 1 + protowire.SizeBytes(vec)
}

// vecLayout is what every point of a batch shares: the dense vectors'
// encoded size (the same for every point) and, when the batch has
// multivector or sparse vectors, the order of all named entries (by name,
// as a deterministic protobuf map is written).
type vecLayout struct {
	// payload is the payload's column order (by key, as a deterministic
	// protobuf map is written); keyPre holds, per key, the bytes of a map
	// entry before its value's length: key tag, key, value tag.
	payload []int
	keyPre  [][]byte
	dense   int
	order   []vecRef // nil: dense vectors only, in bt.Vectors order
	any     bool
}

type vecRef struct {
	kind byte // 'd'ense, 'm'ulti, 's'parse
	i    int
	name string
}

func vecLayoutOf(bt *pipeline.Batch) vecLayout {
	l := vecLayout{any: len(bt.Vectors)+len(bt.Multi)+len(bt.Sparse) > 0}
	if p := bt.Payload; p != nil {
		l.payload = p.SortedKeys()
		l.keyPre = make([][]byte, len(p.Keys))
		for k, key := range p.Keys {
			b := appendTag(nil, mapKey, protowire.BytesType)
			b = protowire.AppendString(b, key)
			l.keyPre[k] = appendTag(b, mapValue, protowire.BytesType)
		}
	}
	for _, v := range bt.Vectors {
		l.dense += 1 + protowire.SizeBytes(denseEntrySize(v.Name, v.Width))
	}
	if len(bt.Multi)+len(bt.Sparse) == 0 {
		return l
	}
	for i, v := range bt.Vectors {
		l.order = append(l.order, vecRef{'d', i, v.Name})
	}
	for i, v := range bt.Multi {
		l.order = append(l.order, vecRef{'m', i, v.Name})
	}
	for i, v := range bt.Sparse {
		l.order = append(l.order, vecRef{'s', i, v.Name})
	}
	slices.SortFunc(l.order, func(a, b vecRef) int { return strings.Compare(a.name, b.name) })
	return l
}

// named is the NamedVectors size of point i.
func (l *vecLayout) named(bt *pipeline.Batch, i int) int {
	n := l.dense
	for _, m := range bt.Multi {
		n += 1 + protowire.SizeBytes(multiEntrySize(m.Name, m.Col, i))
	}
	for _, s := range bt.Sparse {
		n += 1 + protowire.SizeBytes(sparseEntrySize(s.Name, s.Col, i))
	}
	return n
}

// Vector{multi_dense: MultiDenseVector{vectors: [DenseVector{data}]}}.
func multiBody(m *pipeline.MultiColumn, i int) (md, dense int) {
	if m.Width > 0 {
		dense = 1 + protowire.SizeBytes(4*m.Width)
	}
	return m.Tokens(i) * (1 + protowire.SizeBytes(dense)), dense
}

func multiVecSize(m *pipeline.MultiColumn, i int) int {
	md, _ := multiBody(m, i)
	return 2 + protowire.SizeBytes(md)
}

func multiEntrySize(name string, m *pipeline.MultiColumn, i int) int {
	return 1 + protowire.SizeBytes(len(name)) + 1 + protowire.SizeBytes(multiVecSize(m, i))
}

// Vector{sparse: SparseVector{values (packed), indices (packed varints)}}.
func sparseBody(s *pipeline.SparseColumn, i int) (body, idxBytes int) {
	idx, vals := s.Row(i)
	if len(vals) > 0 {
		body += 1 + protowire.SizeBytes(4*len(vals))
	}
	for _, x := range idx {
		idxBytes += protowire.SizeVarint(uint64(x))
	}
	if len(idx) > 0 {
		body += 1 + protowire.SizeBytes(idxBytes)
	}
	return body, idxBytes
}

func sparseEntrySize(name string, s *pipeline.SparseColumn, i int) int {
	body, _ := sparseBody(s, i)
	return 1 + protowire.SizeBytes(len(name)) + 1 + protowire.SizeBytes(2+protowire.SizeBytes(body))
}

func batchPointSize(bt *pipeline.Batch, i int, l *vecLayout) int {
	n := 1 + protowire.SizeBytes(pidSize(bt.ID(i)))
	if p := bt.Payload; p != nil {
		row := p.Vals[i*len(p.Keys) : (i+1)*len(p.Keys)]
		for k := range row {
			vs := pvalueSize(p, &row[k])
			n += 1 + protowire.SizeBytes(len(l.keyPre[k])+protowire.SizeBytes(vs))
		}
	}
	if l.any {
		n += 1 + protowire.SizeBytes(1+protowire.SizeBytes(l.named(bt, i)))
	}
	return n
}

func appendBatchPoint(b []byte, bt *pipeline.Batch, i int, l *vecLayout, ld *lender) []byte {
	id := bt.ID(i)
	b = appendTag(b, pointID, protowire.BytesType)
	b = appendVarint(b, uint64(pidSize(id)))
	b = appendPID(b, id)
	if p := bt.Payload; p != nil {
		row := p.Vals[i*len(p.Keys) : (i+1)*len(p.Keys)]
		for _, k := range l.payload {
			v, pre := &row[k], l.keyPre[k]
			vs := pvalueSize(p, v)
			b = appendTag(b, pointPayload, protowire.BytesType)
			b = appendVarint(b, uint64(len(pre)+protowire.SizeBytes(vs)))
			b = append(b, pre...)
			b = appendVarint(b, uint64(vs))
			b = appendPValue(b, p, v)
		}
	}
	if !l.any {
		return b
	}
	named := l.named(bt, i)
	b = appendTag(b, pointVectors, protowire.BytesType)
	b = appendVarint(b, uint64(1+protowire.SizeBytes(named)))
	b = appendTag(b, vectorsNamed, protowire.BytesType)
	b = appendVarint(b, uint64(named))
	if l.order == nil {
		for k := range bt.Vectors {
			b = appendDenseEntry(b, &bt.Vectors[k], i, k, ld)
		}
		return b
	}
	for _, r := range l.order {
		switch r.kind {
		case 'd':
			b = appendDenseEntry(b, &bt.Vectors[r.i], i, r.i, ld)
		case 'm':
			b = appendMultiEntry(b, &bt.Multi[r.i], i)
		case 's':
			b = appendSparseEntry(b, &bt.Sparse[r.i], i)
		}
	}
	return b
}

// appendDenseEntry appends point i's entry of dense column k (v); when
// ld lends the column, the values are left out and their place recorded.
func appendDenseEntry(b []byte, v *pipeline.NamedVector, i, k int, ld *lender) []byte {
	var data []float32
	var h, raw []byte
	n := v.Width
	switch {
	case v.Half != nil:
		h = v.Half[2*i*n : 2*(i+1)*n]
	case v.Runs != nil:
		raw = v.Runs.Row(i)
	default:
		data = v.Data[i*n : (i+1)*n]
	}
	dense := 0
	if n > 0 {
		dense = 1 + protowire.SizeBytes(4*n)
	}
	b = appendTag(b, namedMap, protowire.BytesType)
	b = appendVarint(b, uint64(denseEntrySize(v.Name, n)))
	b = appendTag(b, mapKey, protowire.BytesType)
	b = protowire.AppendString(b, v.Name)
	b = appendTag(b, mapValue, protowire.BytesType)
	b = appendVarint(b, uint64(2+protowire.SizeBytes(dense)))
	b = appendTag(b, vectorDense, protowire.BytesType)
	b = appendVarint(b, uint64(dense))
	if n > 0 {
		b = appendTag(b, denseData, protowire.BytesType)
		b = appendVarint(b, uint64(4*n))
		if h != nil {
			return appendHalfs(b, h)
		}
		if ld != nil && ld.col[k] {
			ld.cuts = append(ld.cuts, cut{off: len(b), col: k})
			return b
		}
		if raw != nil {
			return append(b, raw...) // little-endian float32, as the wire has them
		}
		b = appendFloats(b, data)
	}
	return b
}

func appendMultiEntry(b []byte, v *pipeline.NamedMulti, i int) []byte {
	m := v.Col
	vec := multiVecSize(m, i)
	b = appendTag(b, namedMap, protowire.BytesType)
	b = appendVarint(b, uint64(multiEntrySize(v.Name, m, i)))
	b = appendTag(b, mapKey, protowire.BytesType)
	b = protowire.AppendString(b, v.Name)
	b = appendTag(b, mapValue, protowire.BytesType)
	b = appendVarint(b, uint64(vec))
	b = appendTag(b, vectorMultiDense, protowire.BytesType)
	md, dense := multiBody(m, i)
	b = appendVarint(b, uint64(md))
	row := m.Row(i)
	for t := 0; t < m.Tokens(i); t++ {
		b = appendTag(b, multiVectors, protowire.BytesType)
		b = appendVarint(b, uint64(dense))
		if m.Width > 0 {
			b = appendTag(b, denseData, protowire.BytesType)
			b = appendVarint(b, uint64(4*m.Width))
			b = appendFloats(b, row[t*m.Width:(t+1)*m.Width])
		}
	}
	return b
}

func appendSparseEntry(b []byte, v *pipeline.NamedSparse, i int) []byte {
	s := v.Col
	body, idxBytes := sparseBody(s, i)
	idx, vals := s.Row(i)
	b = appendTag(b, namedMap, protowire.BytesType)
	b = appendVarint(b, uint64(sparseEntrySize(v.Name, s, i)))
	b = appendTag(b, mapKey, protowire.BytesType)
	b = protowire.AppendString(b, v.Name)
	b = appendTag(b, mapValue, protowire.BytesType)
	b = appendVarint(b, uint64(2+protowire.SizeBytes(body)))
	b = appendTag(b, vectorSparse, protowire.BytesType)
	b = appendVarint(b, uint64(body))
	if len(vals) > 0 {
		b = appendTag(b, sparseValues, protowire.BytesType)
		b = appendVarint(b, uint64(4*len(vals)))
		b = appendFloats(b, vals)
	}
	if len(idx) > 0 {
		b = appendTag(b, sparseIndices, protowire.BytesType)
		b = appendVarint(b, uint64(idxBytes))
		for _, x := range idx {
			b = appendVarint(b, uint64(x))
		}
	}
	return b
}

// Payload values are plain Go values (pipeline's row types): nil, bool,
// int64, float64, string, []any, map[string]any. Other Go numbers are
// widened; anything else is sent as its text.
func normalize(v any) any {
	switch v.(type) {
	case []any, map[string]any:
		return v
	}
	if s, ok := pipeline.ScalarOf(v); ok {
		return s.Plain()
	}
	return fmt.Sprint(v)
}

// pvalueSize is the encoded size of a payload pipeline.Value (a qdrant.Value).
func pvalueSize(p *pipeline.PayloadBlock, v *pipeline.Value) int {
	switch v.Kind {
	case pipeline.Null, pipeline.Bool:
		return 2
	case pipeline.Int:
		return 1 + protowire.SizeVarint(v.Num)
	case pipeline.Float:
		return 1 + 8
	case pipeline.String:
		return 1 + protowire.SizeBytes(len(v.Str))
	}
	return anySize(p.Others[v.Num])
}

// mapEntrySize is the size of a map<string, Value> entry whose value
// encodes in vs bytes.
func mapEntrySize(k string, vs int) int {
	return 1 + protowire.SizeBytes(len(k)) + 1 + protowire.SizeBytes(vs)
}

func appendPValue(b []byte, p *pipeline.PayloadBlock, v *pipeline.Value) []byte {
	switch v.Kind {
	case pipeline.Null:
		b = appendTag(b, valueNull, protowire.VarintType)
		return appendVarint(b, 0)
	case pipeline.Bool:
		b = appendTag(b, valueBool, protowire.VarintType)
		return appendVarint(b, v.Num)
	case pipeline.Int:
		b = appendTag(b, valueInt, protowire.VarintType)
		return appendVarint(b, v.Num)
	case pipeline.Float:
		b = appendTag(b, valueDouble, protowire.Fixed64Type)
		return protowire.AppendFixed64(b, v.Num)
	case pipeline.String:
		b = appendTag(b, valueString, protowire.BytesType)
		return protowire.AppendString(b, v.Str)
	}
	return appendAny(b, p.Others[v.Num])
}

func anyEntrySize(k string, v any) int {
	return mapEntrySize(k, anySize(v))
}

func appendAnyEntry(b []byte, k string, v any) []byte {
	b = appendTag(b, mapKey, protowire.BytesType)
	b = protowire.AppendString(b, k)
	b = appendTag(b, mapValue, protowire.BytesType)
	b = appendVarint(b, uint64(anySize(v)))
	return appendAny(b, v)
}

func anySize(v any) int {
	switch x := normalize(v).(type) {
	case nil:
		return 2 // null_value: NULL_VALUE (0)
	case bool:
		return 2
	case int64:
		return 1 + protowire.SizeVarint(uint64(x))
	case float64:
		return 1 + 8
	case string:
		return 1 + protowire.SizeBytes(len(x))
	case []any:
		n := 0
		for _, e := range x {
			n += 1 + protowire.SizeBytes(anySize(e))
		}
		return 1 + protowire.SizeBytes(n)
	case map[string]any:
		n := 0
		for k, e := range x {
			n += 1 + protowire.SizeBytes(anyEntrySize(k, e))
		}
		return 1 + protowire.SizeBytes(n)
	}
	panic("unreachable")
}

func appendAny(b []byte, v any) []byte {
	switch x := normalize(v).(type) {
	case nil:
		b = appendTag(b, valueNull, protowire.VarintType)
		return appendVarint(b, 0)
	case bool:
		b = appendTag(b, valueBool, protowire.VarintType)
		return appendVarint(b, protowire.EncodeBool(x))
	case int64:
		b = appendTag(b, valueInt, protowire.VarintType)
		return appendVarint(b, uint64(x))
	case float64:
		b = appendTag(b, valueDouble, protowire.Fixed64Type)
		return protowire.AppendFixed64(b, math.Float64bits(x))
	case string:
		b = appendTag(b, valueString, protowire.BytesType)
		return protowire.AppendString(b, x)
	case []any:
		n := 0
		for _, e := range x {
			n += 1 + protowire.SizeBytes(anySize(e))
		}
		b = appendTag(b, valueList, protowire.BytesType)
		b = appendVarint(b, uint64(n))
		for _, e := range x {
			b = appendTag(b, listValues, protowire.BytesType)
			b = appendVarint(b, uint64(anySize(e)))
			b = appendAny(b, e)
		}
		return b
	case map[string]any:
		n := 0
		for k, e := range x {
			n += 1 + protowire.SizeBytes(anyEntrySize(k, e))
		}
		b = appendTag(b, valueStruct, protowire.BytesType)
		b = appendVarint(b, uint64(n))
		for k, e := range x {
			b = appendTag(b, structField, protowire.BytesType)
			b = appendVarint(b, uint64(anyEntrySize(k, e)))
			b = appendAnyEntry(b, k, e)
		}
		return b
	}
	panic("unreachable")
}
