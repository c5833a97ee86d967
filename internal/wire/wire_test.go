package wire

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/qdrant/go-client/qdrant"
	"github.com/snappipe/snappipe/pipeline"
	"google.golang.org/protobuf/proto"
)

func randValue(r *rand.Rand, depth int) *qdrant.Value {
	switch r.IntN(9) {
	case 0:
		return qdrant.NewValueNull()
	case 1:
		return qdrant.NewValueDouble([]float64{0, -0.0, math.Inf(1), r.NormFloat64(), math.MaxFloat64, math.SmallestNonzeroFloat64}[r.IntN(6)])
	case 2:
		return qdrant.NewValueInt([]int64{0, -1, math.MinInt64, math.MaxInt64, r.Int64()}[r.IntN(5)])
	case 3:
		return qdrant.NewValueString([]string{"", "a", "åß✓ 東京 😀", string(make([]byte, 300))}[r.IntN(4)])
	case 4:
		return qdrant.NewValueBool(r.IntN(2) == 0)
	case 5:
		if depth > 0 {
			m := map[string]*qdrant.Value{}
			for i := 0; i < r.IntN(4); i++ {
				m[fmt.Sprint("k", i)] = randValue(r, depth-1)
			}
			return qdrant.NewValueStruct(&qdrant.Struct{Fields: m})
		}
	case 6:
		if depth > 0 {
			var vs []*qdrant.Value
			for i := 0; i < r.IntN(4); i++ {
				vs = append(vs, randValue(r, depth-1))
			}
			return qdrant.NewValueFromList(vs...)
		}
	case 7:
		return &qdrant.Value{} // no kind set
	}
	return qdrant.NewValueString("leaf")
}

func randVec(r *rand.Rand, n int) []float32 {
	v := make([]float32, n)
	for i := range v {
		v[i] = float32(r.NormFloat64())
	}
	return v
}

func randUpsert(r *rand.Rand) *qdrant.UpsertPoints {
	u := &qdrant.UpsertPoints{CollectionName: "LAION-5B"}
	if r.IntN(2) == 0 {
		u.Wait = proto.Bool(r.IntN(2) == 0)
	}
	for i := 0; i < r.IntN(20); i++ {
		p := &qdrant.PointStruct{}
		switch r.IntN(3) {
		case 0:
			p.Id = qdrant.NewIDNum(r.Uint64() >> r.IntN(64))
		case 1:
			p.Id = qdrant.NewIDUUID("6f1c6d2a-3a8b-4c9e-9f00-0a1b2c3d4e5f")
		}
		if r.IntN(4) > 0 {
			p.Payload = map[string]*qdrant.Value{}
			for k := 0; k < r.IntN(16); k++ {
				p.Payload[fmt.Sprint("col", k)] = randValue(r, 3)
			}
		}
		switch r.IntN(5) {
		case 0:
			p.Vectors = qdrant.NewVectorsDense(randVec(r, r.IntN(10)))
		case 1, 2:
			p.Vectors = qdrant.NewVectorsMap(map[string]*qdrant.Vector{"image": qdrant.NewVectorDense(randVec(r, 768)), "text": qdrant.NewVectorDense(randVec(r, 3))})
		case 3:
			// Shapes the encoder hands to proto: sparse and deprecated data.
			p.Vectors = qdrant.NewVectorsMap(map[string]*qdrant.Vector{"s": qdrant.NewVectorSparse([]uint32{1, 5}, []float32{0.5, 2}), "old": {Data: []float32{1, 2}}})
		}
		u.Points = append(u.Points, p)
	}
	if r.IntN(10) == 0 {
		u.Timeout = proto.Uint64(5)
	}
	return u
}

// TestEquivalentToProto: every encoding decodes to an equal message and
// has the size proto computes.
func TestEquivalentToProto(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for i := 0; i < 2000; i++ {
		u := randUpsert(r)
		b, err := Marshal(u)
		if err != nil {
			t.Fatal(err)
		}
		if len(b) != proto.Size(u) || UpsertSize(u) != len(b) {
			t.Fatalf("case %d: size %d, UpsertSize %d, proto.Size %d", i, len(b), UpsertSize(u), proto.Size(u))
		}
		var back qdrant.UpsertPoints
		if err := proto.Unmarshal(b, &back); err != nil {
			t.Fatalf("case %d: %v", i, err)
		}
		if !proto.Equal(u, &back) {
			t.Fatalf("case %d: decoded message differs", i)
		}
	}
}

func BenchmarkMarshal(b *testing.B) {
	r := rand.New(rand.NewPCG(3, 4))
	u := &qdrant.UpsertPoints{CollectionName: "c", Wait: proto.Bool(true)}
	for i := 0; i < 256; i++ {
		pl := map[string]*qdrant.Value{}
		for k := 0; k < 15; k++ {
			pl[fmt.Sprint("col", k)] = qdrant.NewValueString("some caption text")
		}
		u.Points = append(u.Points, &qdrant.PointStruct{Id: qdrant.NewIDNum(uint64(i)), Payload: pl,
			Vectors: qdrant.NewVectorsMap(map[string]*qdrant.Vector{"image": qdrant.NewVectorDense(randVec(r, 768)), "text": qdrant.NewVectorDense(randVec(r, 768))})})
	}
	b.Run("proto", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			proto.Marshal(u)
		}
	})
	b.Run("wire", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			Marshal(u)
		}
	})
	// The same request from a sink-neutral batch (what the upsert stage
	// sends): no PointStruct is built at all.
	bt := &pipeline.Batch{N: 256}
	rows := make([]map[string]any, 256)
	img, txt := pipeline.NamedVector{Name: "image", Width: 768}, pipeline.NamedVector{Name: "text", Width: 768}
	for i := 0; i < 256; i++ {
		pl := map[string]any{}
		for k := 0; k < 15; k++ {
			pl[fmt.Sprint("col", k)] = "some caption text"
		}
		rows[i] = pl
		img.Data = append(img.Data, randVec(r, 768)...)
		txt.Data = append(txt.Data, randVec(r, 768)...)
	}
	bt.Vectors = []pipeline.NamedVector{img, txt}
	bt.Payload = pipeline.PayloadFromRows(rows)
	nu := &Upsert{Collection: "c", Wait: true, Batch: bt}
	b.Run("batch", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			Marshal(nu)
		}
	})
}
