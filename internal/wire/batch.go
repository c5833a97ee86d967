package wire

import (
	"fmt"
	"math"

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
}

// AppendBatch appends the UpsertPoints encoding of u to b.
func AppendBatch(b []byte, u *Upsert) []byte {
	return appendBatch(b, u, batchSizes(u))
}

// BatchSize is the encoded size of u.
func BatchSize(u *Upsert) int { return batchTotal(u, batchSizes(u)) }

// batchSizes sizes every point once (payload sizes walk the maps); the
// total and the length prefixes both use them.
func batchSizes(u *Upsert) []int {
	named := namedVecsSize(u.Batch)
	sizes := make([]int, u.Batch.N)
	for i := range sizes {
		sizes[i] = batchPointSize(u.Batch, i, named)
	}
	return sizes
}

func batchTotal(u *Upsert, sizes []int) int {
	n := 2 // wait
	if u.Collection != "" {
		n += 1 + protowire.SizeBytes(len(u.Collection))
	}
	for _, sz := range sizes {
		n += 1 + protowire.SizeBytes(sz)
	}
	return n
}

func appendBatch(b []byte, u *Upsert, sizes []int) []byte {
	if u.Collection != "" {
		b = protowire.AppendTag(b, upsertCollection, protowire.BytesType)
		b = protowire.AppendString(b, u.Collection)
	}
	b = protowire.AppendTag(b, upsertWait, protowire.VarintType)
	b = protowire.AppendVarint(b, protowire.EncodeBool(u.Wait))
	named := namedVecsSize(u.Batch)
	for i, sz := range sizes {
		b = protowire.AppendTag(b, upsertPoints, protowire.BytesType)
		b = protowire.AppendVarint(b, uint64(sz))
		b = appendBatchPoint(b, u.Batch, i, named)
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
		b = protowire.AppendTag(b, idUUID, protowire.BytesType)
		return protowire.AppendString(b, id.UUID)
	}
	b = protowire.AppendTag(b, idNum, protowire.VarintType)
	return protowire.AppendVarint(b, id.Num)
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

func namedVecsSize(bt *pipeline.Batch) int {
	n := 0
	for _, v := range bt.Vectors {
		n += 1 + protowire.SizeBytes(denseEntrySize(v.Name, v.Width))
	}
	return n
}

func batchPointSize(bt *pipeline.Batch, i, named int) int {
	n := 1 + protowire.SizeBytes(pidSize(bt.ID(i)))
	if bt.Payloads != nil {
		for k, v := range bt.Payloads[i] {
			n += 1 + protowire.SizeBytes(anyEntrySize(k, v))
		}
	}
	if len(bt.Vectors) > 0 {
		n += 1 + protowire.SizeBytes(1+protowire.SizeBytes(named))
	}
	return n
}

func appendBatchPoint(b []byte, bt *pipeline.Batch, i, named int) []byte {
	id := bt.ID(i)
	b = protowire.AppendTag(b, pointID, protowire.BytesType)
	b = protowire.AppendVarint(b, uint64(pidSize(id)))
	b = appendPID(b, id)
	if bt.Payloads != nil {
		for k, v := range bt.Payloads[i] {
			b = protowire.AppendTag(b, pointPayload, protowire.BytesType)
			b = protowire.AppendVarint(b, uint64(anyEntrySize(k, v)))
			b = appendAnyEntry(b, k, v)
		}
	}
	if len(bt.Vectors) == 0 {
		return b
	}
	b = protowire.AppendTag(b, pointVectors, protowire.BytesType)
	b = protowire.AppendVarint(b, uint64(1+protowire.SizeBytes(named)))
	b = protowire.AppendTag(b, vectorsNamed, protowire.BytesType)
	b = protowire.AppendVarint(b, uint64(named))
	for _, v := range bt.Vectors {
		data := v.Data[i*v.Width : (i+1)*v.Width]
		dense := 0
		if len(data) > 0 {
			dense = 1 + protowire.SizeBytes(4*len(data))
		}
		b = protowire.AppendTag(b, namedMap, protowire.BytesType)
		b = protowire.AppendVarint(b, uint64(denseEntrySize(v.Name, len(data))))
		b = protowire.AppendTag(b, mapKey, protowire.BytesType)
		b = protowire.AppendString(b, v.Name)
		b = protowire.AppendTag(b, mapValue, protowire.BytesType)
		b = protowire.AppendVarint(b, uint64(2+protowire.SizeBytes(dense)))
		b = protowire.AppendTag(b, vectorDense, protowire.BytesType)
		b = protowire.AppendVarint(b, uint64(dense))
		if len(data) > 0 {
			b = protowire.AppendTag(b, denseData, protowire.BytesType)
			b = protowire.AppendVarint(b, uint64(4*len(data)))
			b = appendFloats(b, data)
		}
	}
	return b
}

// Payload values are plain Go values (pipeline's row types): nil, bool,
// int64, float64, string, []any, map[string]any. Other Go numbers are
// widened; anything else is sent as its text.
func normalize(v any) any {
	switch x := v.(type) {
	case nil, bool, int64, float64, string, []any, map[string]any:
		return v
	case int:
		return int64(x)
	case int32:
		return int64(x)
	case uint32:
		return int64(x)
	case uint64:
		if x > math.MaxInt64 {
			return float64(x)
		}
		return int64(x)
	case float32:
		return float64(x)
	}
	return fmt.Sprint(v)
}

func anyEntrySize(k string, v any) int {
	return 1 + protowire.SizeBytes(len(k)) + 1 + protowire.SizeBytes(anySize(v))
}

func appendAnyEntry(b []byte, k string, v any) []byte {
	b = protowire.AppendTag(b, mapKey, protowire.BytesType)
	b = protowire.AppendString(b, k)
	b = protowire.AppendTag(b, mapValue, protowire.BytesType)
	b = protowire.AppendVarint(b, uint64(anySize(v)))
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
		b = protowire.AppendTag(b, valueNull, protowire.VarintType)
		return protowire.AppendVarint(b, 0)
	case bool:
		b = protowire.AppendTag(b, valueBool, protowire.VarintType)
		return protowire.AppendVarint(b, protowire.EncodeBool(x))
	case int64:
		b = protowire.AppendTag(b, valueInt, protowire.VarintType)
		return protowire.AppendVarint(b, uint64(x))
	case float64:
		b = protowire.AppendTag(b, valueDouble, protowire.Fixed64Type)
		return protowire.AppendFixed64(b, math.Float64bits(x))
	case string:
		b = protowire.AppendTag(b, valueString, protowire.BytesType)
		return protowire.AppendString(b, x)
	case []any:
		n := 0
		for _, e := range x {
			n += 1 + protowire.SizeBytes(anySize(e))
		}
		b = protowire.AppendTag(b, valueList, protowire.BytesType)
		b = protowire.AppendVarint(b, uint64(n))
		for _, e := range x {
			b = protowire.AppendTag(b, listValues, protowire.BytesType)
			b = protowire.AppendVarint(b, uint64(anySize(e)))
			b = appendAny(b, e)
		}
		return b
	case map[string]any:
		n := 0
		for k, e := range x {
			n += 1 + protowire.SizeBytes(anyEntrySize(k, e))
		}
		b = protowire.AppendTag(b, valueStruct, protowire.BytesType)
		b = protowire.AppendVarint(b, uint64(n))
		for k, e := range x {
			b = protowire.AppendTag(b, structField, protowire.BytesType)
			b = protowire.AppendVarint(b, uint64(anyEntrySize(k, e)))
			b = appendAnyEntry(b, k, e)
		}
		return b
	}
	panic("unreachable")
}
