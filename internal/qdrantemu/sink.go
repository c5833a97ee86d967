package qdrantemu

import (
	"fmt"

	"github.com/qdrant/go-client/qdrant"
	"google.golang.org/grpc/encoding"
	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
)

// upsertPointsField is UpsertPoints.points' field number.
var upsertPointsField = (&qdrant.UpsertPoints{}).ProtoReflect().Descriptor().Fields().ByName("points").Number()

// sinkCodec is the server codec of Options.Sink: every message is the
// proto codec's except an UpsertPoints, whose points are counted and
// skipped instead of decoded. The handler sees Points holding that many
// nil entries (the count is all a sink keeps). The other fields of the
// request (collection, wait, ...) are decoded as usual.
type sinkCodec struct{ proto encoding.CodecV2 }

func newSinkCodec() sinkCodec { return sinkCodec{proto: encoding.GetCodecV2("proto")} }

func (c sinkCodec) Name() string { return "proto" }

func (c sinkCodec) Marshal(v any) (mem.BufferSlice, error) { return c.proto.Marshal(v) }

func (c sinkCodec) Unmarshal(data mem.BufferSlice, v any) error {
	r, ok := v.(*qdrant.UpsertPoints)
	if !ok {
		return c.proto.Unmarshal(data, v)
	}
	buf := data.MaterializeToBuffer(mem.DefaultBufferPool())
	defer buf.Free()
	b := buf.ReadOnlyData()
	var rest []byte
	n := 0
	for len(b) > 0 {
		num, typ, tl := protowire.ConsumeTag(b)
		if tl < 0 {
			return fmt.Errorf("upsert request: %w", protowire.ParseError(tl))
		}
		vl := protowire.ConsumeFieldValue(num, typ, b[tl:])
		if vl < 0 {
			return fmt.Errorf("upsert request: %w", protowire.ParseError(vl))
		}
		if num == upsertPointsField && typ == protowire.BytesType {
			n++
		} else {
			rest = append(rest, b[:tl+vl]...)
		}
		b = b[tl+vl:]
	}
	if err := proto.Unmarshal(rest, r); err != nil {
		return err
	}
	r.Points = make([]*qdrant.PointStruct, n)
	return nil
}
