package qdrantemu

import (
	"encoding/binary"
	"fmt"
	"io"

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
	// The request is walked where gRPC received it (no copy into one
	// buffer): a sink should cost next to nothing beside the client it
	// measures.
	rd := data.Reader()
	defer rd.Close()
	var rest []byte
	n := 0
	for rd.Remaining() > 0 {
		tag, err := binary.ReadUvarint(rd)
		if err != nil {
			return fmt.Errorf("upsert request: %w", err)
		}
		num, typ := protowire.DecodeTag(tag)
		if num == upsertPointsField && typ == protowire.BytesType {
			l, err := binary.ReadUvarint(rd)
			if err != nil || l > uint64(rd.Remaining()) {
				return fmt.Errorf("upsert request: a point's length is cut short")
			}
			rd.Discard(int(l))
			n++
			continue
		}
		rest = protowire.AppendVarint(rest, tag)
		var size uint64
		switch typ {
		case protowire.VarintType:
			x, err := binary.ReadUvarint(rd)
			if err != nil {
				return fmt.Errorf("upsert request: %w", err)
			}
			rest = protowire.AppendVarint(rest, x)
			continue
		case protowire.Fixed32Type:
			size = 4
		case protowire.Fixed64Type:
			size = 8
		case protowire.BytesType:
			if size, err = binary.ReadUvarint(rd); err != nil {
				return fmt.Errorf("upsert request: %w", err)
			}
			rest = protowire.AppendVarint(rest, size)
		default:
			return fmt.Errorf("upsert request: field %d has wire type %d", num, typ)
		}
		if size > uint64(rd.Remaining()) {
			return fmt.Errorf("upsert request: field %d is cut short", num)
		}
		at := len(rest)
		rest = append(rest, make([]byte, size)...)
		if _, err := io.ReadFull(rd, rest[at:]); err != nil {
			return fmt.Errorf("upsert request: %w", err)
		}
	}
	if err := proto.Unmarshal(rest, r); err != nil {
		return err
	}
	r.Points = make([]*qdrant.PointStruct, n)
	return nil
}
