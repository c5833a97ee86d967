// Package wire encodes qdrant.UpsertPoints without protobuf reflection.
//
// Profiles of `snappipe apply` showed ~60% of CPU in proto.Marshal of
// upsert requests, most of it in the reflective map code for payloads and
// named vectors. This encoder writes the same wire format with plain loops
// for the shapes snappipe sends (numeric/UUID ids, JSON-like payload values,
// named or single dense vectors) and falls back to proto.MarshalAppend for
// any other sub-message, so its output always decodes to an equal message
// (tests check this with proto.Unmarshal + proto.Equal).
package wire

import (
	"encoding/binary"
	"fmt"
	"math"
	"slices"
	"unsafe"

	"github.com/qdrant/go-client/qdrant"
	"github.com/snappipe/snappipe/internal/bufpool"
	"github.com/snappipe/snappipe/internal/half"
	"google.golang.org/grpc/encoding"
	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
)

// Field numbers from go-client v1.17's generated code.
const (
	upsertCollection = 1
	upsertWait       = 2
	upsertPoints     = 3

	pointID      = 1
	pointPayload = 3
	pointVectors = 4

	idNum  = 1
	idUUID = 2

	vectorsSingle = 1
	vectorsNamed  = 2
	namedMap      = 1

	vectorDense      = 101
	vectorSparse     = 102
	vectorMultiDense = 103
	denseData        = 1
	sparseValues     = 1
	sparseIndices    = 2
	multiVectors     = 1

	valueNull   = 1
	valueDouble = 2
	valueInt    = 3
	valueString = 4
	valueBool   = 5
	valueStruct = 6
	valueList   = 7
	structField = 1
	listValues  = 1

	mapKey   = 1
	mapValue = 2
)

// simpleUpsert reports whether only the fields this encoder writes are set.
func simpleUpsert(u *qdrant.UpsertPoints) bool {
	return u.Ordering == nil && u.ShardKeySelector == nil && u.UpdateFilter == nil && u.Timeout == nil && u.UpdateMode == nil &&
		len(u.ProtoReflect().GetUnknown()) == 0
}

// UpsertSize is the encoded size of u.
func UpsertSize(u *qdrant.UpsertPoints) int {
	if !simpleUpsert(u) {
		return proto.Size(u)
	}
	return upsertSize(u, pointSizes(u))
}

// pointSizes sizes every point once; both the total and the length
// prefixes use the result.
func pointSizes(u *qdrant.UpsertPoints) []int {
	sizes := make([]int, len(u.Points))
	for i, p := range u.Points {
		sizes[i] = pointSize(p)
	}
	return sizes
}

func upsertSize(u *qdrant.UpsertPoints, sizes []int) int {
	n := 0
	if u.CollectionName != "" {
		n += 1 + protowire.SizeBytes(len(u.CollectionName))
	}
	if u.Wait != nil {
		n += 2
	}
	for _, sz := range sizes {
		n += 1 + protowire.SizeBytes(sz)
	}
	return n
}

func appendUpsert(b []byte, u *qdrant.UpsertPoints, sizes []int) []byte {
	if u.CollectionName != "" {
		b = appendTag(b, upsertCollection, protowire.BytesType)
		b = protowire.AppendString(b, u.CollectionName)
	}
	if u.Wait != nil {
		b = appendTag(b, upsertWait, protowire.VarintType)
		b = appendVarint(b, protowire.EncodeBool(*u.Wait))
	}
	for i, p := range u.Points {
		b = appendTag(b, upsertPoints, protowire.BytesType)
		b = appendVarint(b, uint64(sizes[i]))
		b = appendPoint(b, p)
	}
	return b
}

func msgSize(m proto.Message) int { return proto.Size(m) }

func appendMsg(b []byte, m proto.Message) []byte {
	out, _ := proto.MarshalOptions{}.MarshalAppend(b, m)
	return out
}

func pointSize(p *qdrant.PointStruct) int {
	if p == nil {
		return 0
	}
	if len(p.ProtoReflect().GetUnknown()) > 0 {
		return msgSize(p)
	}
	n := 0
	if p.Id != nil {
		n += 1 + protowire.SizeBytes(idSize(p.Id))
	}
	for k, v := range p.Payload {
		n += 1 + protowire.SizeBytes(entrySize(k, v))
	}
	if p.Vectors != nil {
		n += 1 + protowire.SizeBytes(vectorsSize(p.Vectors))
	}
	return n
}

func appendPoint(b []byte, p *qdrant.PointStruct) []byte {
	if p == nil {
		return b
	}
	if len(p.ProtoReflect().GetUnknown()) > 0 {
		return appendMsg(b, p)
	}
	if p.Id != nil {
		b = appendTag(b, pointID, protowire.BytesType)
		b = appendVarint(b, uint64(idSize(p.Id)))
		b = appendID(b, p.Id)
	}
	for k, v := range p.Payload {
		b = appendTag(b, pointPayload, protowire.BytesType)
		b = appendVarint(b, uint64(entrySize(k, v)))
		b = appendEntry(b, k, v)
	}
	if p.Vectors != nil {
		b = appendTag(b, pointVectors, protowire.BytesType)
		b = appendVarint(b, uint64(vectorsSize(p.Vectors)))
		b = appendVectors(b, p.Vectors)
	}
	return b
}

func idSize(id *qdrant.PointId) int {
	switch o := id.PointIdOptions.(type) {
	case *qdrant.PointId_Num:
		return 1 + protowire.SizeVarint(o.Num)
	case *qdrant.PointId_Uuid:
		return 1 + protowire.SizeBytes(len(o.Uuid))
	}
	return msgSize(id)
}

func appendID(b []byte, id *qdrant.PointId) []byte {
	switch o := id.PointIdOptions.(type) {
	case *qdrant.PointId_Num:
		b = appendTag(b, idNum, protowire.VarintType)
		return appendVarint(b, o.Num)
	case *qdrant.PointId_Uuid:
		b = appendTag(b, idUUID, protowire.BytesType)
		return protowire.AppendString(b, o.Uuid)
	}
	return appendMsg(b, id)
}

// Map entries: key (field 1) and value message (field 2), both always
// written, as the Go protobuf runtime does.
func entrySize(k string, v *qdrant.Value) int { return mapEntrySize(k, valueSize(v)) }

func appendEntry(b []byte, k string, v *qdrant.Value) []byte {
	b = appendTag(b, mapKey, protowire.BytesType)
	b = protowire.AppendString(b, k)
	b = appendTag(b, mapValue, protowire.BytesType)
	b = appendVarint(b, uint64(valueSize(v)))
	return appendValue(b, v)
}

func valueSize(v *qdrant.Value) int {
	if v == nil {
		return 0
	}
	if len(v.ProtoReflect().GetUnknown()) > 0 {
		return msgSize(v)
	}
	switch k := v.Kind.(type) {
	case nil:
		return 0
	case *qdrant.Value_NullValue:
		return 1 + protowire.SizeVarint(uint64(k.NullValue))
	case *qdrant.Value_DoubleValue:
		return 1 + 8
	case *qdrant.Value_IntegerValue:
		return 1 + protowire.SizeVarint(uint64(k.IntegerValue))
	case *qdrant.Value_StringValue:
		return 1 + protowire.SizeBytes(len(k.StringValue))
	case *qdrant.Value_BoolValue:
		return 2
	case *qdrant.Value_StructValue:
		return 1 + protowire.SizeBytes(structSize(k.StructValue))
	case *qdrant.Value_ListValue:
		return 1 + protowire.SizeBytes(listSize(k.ListValue))
	}
	return msgSize(v)
}

func appendValue(b []byte, v *qdrant.Value) []byte {
	if v == nil {
		return b
	}
	if len(v.ProtoReflect().GetUnknown()) > 0 {
		return appendMsg(b, v)
	}
	switch k := v.Kind.(type) {
	case nil:
		return b
	case *qdrant.Value_NullValue:
		b = appendTag(b, valueNull, protowire.VarintType)
		return appendVarint(b, uint64(k.NullValue))
	case *qdrant.Value_DoubleValue:
		b = appendTag(b, valueDouble, protowire.Fixed64Type)
		return protowire.AppendFixed64(b, math.Float64bits(k.DoubleValue))
	case *qdrant.Value_IntegerValue:
		b = appendTag(b, valueInt, protowire.VarintType)
		return appendVarint(b, uint64(k.IntegerValue))
	case *qdrant.Value_StringValue:
		b = appendTag(b, valueString, protowire.BytesType)
		return protowire.AppendString(b, k.StringValue)
	case *qdrant.Value_BoolValue:
		b = appendTag(b, valueBool, protowire.VarintType)
		return appendVarint(b, protowire.EncodeBool(k.BoolValue))
	case *qdrant.Value_StructValue:
		b = appendTag(b, valueStruct, protowire.BytesType)
		b = appendVarint(b, uint64(structSize(k.StructValue)))
		return appendStruct(b, k.StructValue)
	case *qdrant.Value_ListValue:
		b = appendTag(b, valueList, protowire.BytesType)
		b = appendVarint(b, uint64(listSize(k.ListValue)))
		return appendList(b, k.ListValue)
	}
	return appendMsg(b, v)
}

func structSize(s *qdrant.Struct) int {
	if s == nil {
		return 0
	}
	if len(s.ProtoReflect().GetUnknown()) > 0 {
		return msgSize(s)
	}
	n := 0
	for k, v := range s.Fields {
		n += 1 + protowire.SizeBytes(entrySize(k, v))
	}
	return n
}

func appendStruct(b []byte, s *qdrant.Struct) []byte {
	if s == nil {
		return b
	}
	if len(s.ProtoReflect().GetUnknown()) > 0 {
		return appendMsg(b, s)
	}
	for k, v := range s.Fields {
		b = appendTag(b, structField, protowire.BytesType)
		b = appendVarint(b, uint64(entrySize(k, v)))
		b = appendEntry(b, k, v)
	}
	return b
}

func listSize(l *qdrant.ListValue) int {
	if l == nil {
		return 0
	}
	if len(l.ProtoReflect().GetUnknown()) > 0 {
		return msgSize(l)
	}
	n := 0
	for _, v := range l.Values {
		n += 1 + protowire.SizeBytes(valueSize(v))
	}
	return n
}

func appendList(b []byte, l *qdrant.ListValue) []byte {
	if l == nil {
		return b
	}
	if len(l.ProtoReflect().GetUnknown()) > 0 {
		return appendMsg(b, l)
	}
	for _, v := range l.Values {
		b = appendTag(b, listValues, protowire.BytesType)
		b = appendVarint(b, uint64(valueSize(v)))
		b = appendValue(b, v)
	}
	return b
}

func vectorsSize(vs *qdrant.Vectors) int {
	if len(vs.ProtoReflect().GetUnknown()) > 0 {
		return msgSize(vs)
	}
	switch o := vs.VectorsOptions.(type) {
	case nil:
		return 0
	case *qdrant.Vectors_Vector:
		return 1 + protowire.SizeBytes(vectorSize(o.Vector))
	case *qdrant.Vectors_Vectors:
		return 1 + protowire.SizeBytes(namedSize(o.Vectors))
	}
	return msgSize(vs)
}

func appendVectors(b []byte, vs *qdrant.Vectors) []byte {
	if len(vs.ProtoReflect().GetUnknown()) > 0 {
		return appendMsg(b, vs)
	}
	switch o := vs.VectorsOptions.(type) {
	case nil:
		return b
	case *qdrant.Vectors_Vector:
		b = appendTag(b, vectorsSingle, protowire.BytesType)
		b = appendVarint(b, uint64(vectorSize(o.Vector)))
		return appendVector(b, o.Vector)
	case *qdrant.Vectors_Vectors:
		b = appendTag(b, vectorsNamed, protowire.BytesType)
		b = appendVarint(b, uint64(namedSize(o.Vectors)))
		return appendNamed(b, o.Vectors)
	}
	return appendMsg(b, vs)
}

func namedSize(nv *qdrant.NamedVectors) int {
	if nv == nil {
		return 0
	}
	if len(nv.ProtoReflect().GetUnknown()) > 0 {
		return msgSize(nv)
	}
	n := 0
	for k, v := range nv.Vectors {
		n += 1 + protowire.SizeBytes(vecEntrySize(k, v))
	}
	return n
}

func appendNamed(b []byte, nv *qdrant.NamedVectors) []byte {
	if nv == nil {
		return b
	}
	if len(nv.ProtoReflect().GetUnknown()) > 0 {
		return appendMsg(b, nv)
	}
	for k, v := range nv.Vectors {
		b = appendTag(b, namedMap, protowire.BytesType)
		b = appendVarint(b, uint64(vecEntrySize(k, v)))
		b = appendTag(b, mapKey, protowire.BytesType)
		b = protowire.AppendString(b, k)
		b = appendTag(b, mapValue, protowire.BytesType)
		b = appendVarint(b, uint64(vectorSize(v)))
		b = appendVector(b, v)
	}
	return b
}

func vecEntrySize(k string, v *qdrant.Vector) int {
	return 1 + protowire.SizeBytes(len(k)) + 1 + protowire.SizeBytes(vectorSize(v))
}

// denseOnly reports whether v is a plain dense vector (new field only).
func denseOnly(v *qdrant.Vector) (*qdrant.DenseVector, bool) {
	if v == nil || len(v.Data) > 0 || v.Indices != nil || v.VectorsCount != nil || len(v.ProtoReflect().GetUnknown()) > 0 {
		return nil, false
	}
	d, ok := v.Vector.(*qdrant.Vector_Dense)
	if !ok || d.Dense == nil || len(d.Dense.ProtoReflect().GetUnknown()) > 0 {
		return nil, false
	}
	return d.Dense, true
}

func denseSize(d *qdrant.DenseVector) int {
	if len(d.Data) == 0 {
		return 0
	}
	return 1 + protowire.SizeBytes(4*len(d.Data))
}

func vectorSize(v *qdrant.Vector) int {
	d, ok := denseOnly(v)
	if !ok {
		if v == nil {
			return 0
		}
		return msgSize(v)
	}
	return 2 + protowire.SizeBytes(denseSize(d)) // field 101 takes a 2-byte tag
}

func appendVector(b []byte, v *qdrant.Vector) []byte {
	d, ok := denseOnly(v)
	if !ok {
		if v == nil {
			return b
		}
		return appendMsg(b, v)
	}
	b = appendTag(b, vectorDense, protowire.BytesType)
	b = appendVarint(b, uint64(denseSize(d)))
	if len(d.Data) == 0 {
		return b
	}
	b = appendTag(b, denseData, protowire.BytesType)
	b = appendVarint(b, uint64(4*len(d.Data)))
	return appendFloats(b, d.Data)
}

// littleEndian is true on hosts whose float32 memory layout is the wire's.
var littleEndian = binary.NativeEndian.Uint16([]byte{1, 0}) == 1

// appendFloats appends packed fixed32 values: one copy on little-endian
// hosts (protobuf's wire order), a loop elsewhere.
// appendHalfs appends little-endian float16 values (h) as packed float32,
// converting straight into b.
func appendHalfs(b []byte, h []byte) []byte {
	n := len(h) / 2
	if !littleEndian || n == 0 {
		fs := make([]float32, n)
		half.LittleEndian(fs, h)
		return appendFloats(b, fs)
	}
	b = slices.Grow(b, 4*n)
	off := len(b)
	b = b[:off+4*n]
	half.LittleEndian(unsafe.Slice((*float32)(unsafe.Pointer(&b[off])), n), h)
	return b
}

func appendFloats(b []byte, fs []float32) []byte {
	if littleEndian {
		return append(b, unsafe.Slice((*byte)(unsafe.Pointer(unsafe.SliceData(fs))), 4*len(fs))...)
	}
	for _, f := range fs {
		b = protowire.AppendFixed32(b, math.Float32bits(f))
	}
	return b
}

// Marshal encodes v into a new slice: a sink-neutral *Upsert batch with
// AppendBatch, UpsertPoints with AppendUpsert, anything else with
// proto.Marshal.
func Marshal(v any) ([]byte, error) {
	if u, ok := v.(*Upsert); ok {
		m := measure(u)
		return m.append(make([]byte, 0, m.total())), nil
	}
	if u, ok := v.(*qdrant.UpsertPoints); ok && simpleUpsert(u) {
		sizes := pointSizes(u)
		return appendUpsert(make([]byte, 0, upsertSize(u, sizes)), u, sizes), nil
	}
	return proto.Marshal(v.(proto.Message))
}

// Codec is a gRPC codec (gRPC's buffer API) that encodes as Marshal does;
// an upsert batch goes into a buffer from a pool that gRPC hands back once
// the bytes are on the wire, instead of a fresh (and zeroed) allocation per
// request, and, when the Upsert has a Hold, its float32 vectors are sent
// from the batch's memory (see lend.go). Use it per call:
// grpc.ForceCodecV2(wire.Codec{}).
type Codec struct{}

// Name is "proto": the bytes are standard protobuf.
func (Codec) Name() string { return "proto" }

// Marshal encodes v.
func (Codec) Marshal(v any) (mem.BufferSlice, error) {
	if u, ok := v.(*Upsert); ok {
		m := measure(u)
		if ld := lenderFor(u); ld != nil {
			return m.marshalLending(ld), nil
		}
		bp := requestPool.Get(m.total())
		*bp = m.append((*bp)[:0])
		return mem.BufferSlice{mem.NewBuffer(bp, requestPool)}, nil
	}
	b, err := Marshal(v)
	if err != nil {
		return nil, err
	}
	return mem.BufferSlice{mem.SliceBuffer(b)}, nil
}

// Unmarshal decodes a response as gRPC's own proto codec does.
func (Codec) Unmarshal(data mem.BufferSlice, v any) error {
	m, ok := v.(proto.Message)
	if !ok {
		return fmt.Errorf("failed to unmarshal, message is %T, want proto.Message", v)
	}
	buf := data.MaterializeToBuffer(mem.DefaultBufferPool())
	defer buf.Free()
	return proto.Unmarshal(buf.ReadOnlyData(), m)
}

// requestPool holds request buffers (contents undefined: the encoder
// writes every byte it returns).
var requestPool = bytePool{bufpool.NewList[byte](16)}

// bytePool is a bufpool list as gRPC's mem.BufferPool.
type bytePool struct{ bufpool.List[byte] }

var (
	_ mem.BufferPool   = bytePool{}
	_ encoding.CodecV2 = Codec{}
)

// appendVarint is protowire.AppendVarint with the one-byte case inlined
// (tags, small lengths and flags are most of a request's varints).
func appendVarint(b []byte, v uint64) []byte {
	if v < 0x80 {
		return append(b, byte(v))
	}
	return protowire.AppendVarint(b, v)
}

// appendTag is protowire.AppendTag with the one-byte case (field
// numbers below 16) inlined.
func appendTag(b []byte, num protowire.Number, typ protowire.Type) []byte {
	if uint32(num)-1 < 15 { // 1..15
		return append(b, byte(num)<<3|byte(typ))
	}
	return appendLongTag(b, num, typ)
}

//go:noinline
func appendLongTag(b []byte, num protowire.Number, typ protowire.Type) []byte {
	return protowire.AppendTag(b, num, typ)
}
