package wire

import (
	"encoding/binary"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"unsafe"

	"github.com/qdrant/go-client/qdrant"
	"github.com/snappipe/snappipe/internal/qvalue"
	"github.com/snappipe/snappipe/pipeline"
	"github.com/x448/float16"
	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/proto"
)

func randAny(r *rand.Rand, depth int) any {
	switch r.IntN(8) {
	case 0:
		return nil
	case 1:
		return r.IntN(2) == 0
	case 2:
		return int64(r.Uint64())
	case 3:
		return r.NormFloat64() * 1e6
	case 4:
		return fmt.Sprintf("s%d ✓ %x", r.IntN(1000), r.Uint32())
	case 5:
		if depth > 0 {
			l := make([]any, r.IntN(4))
			for i := range l {
				l[i] = randAny(r, depth-1)
			}
			return l
		}
	case 6:
		if depth > 0 {
			m := map[string]any{}
			for i := r.IntN(4); i > 0; i-- {
				m[fmt.Sprintf("k%d", r.IntN(10))] = randAny(r, depth-1)
			}
			return m
		}
	}
	return ""
}

// randBatch makes a batch with random ids (or row ids), vectors (some
// empty) and payloads.
func randBatch(r *rand.Rand) *pipeline.Batch {
	n := 1 + r.IntN(20)
	b := &pipeline.Batch{Seq: 3, Start: int64(r.IntN(1 << 40)), N: n}
	for _, name := range []string{"image", "text", "z"}[:r.IntN(4)] {
		w := []int{0, 1, 2, 3, 4, 40, 77}[r.IntN(7)] // 0: empty dense vectors
		v := pipeline.NamedVector{Name: name, Width: w, Data: make([]float32, n*w)}
		for i := range v.Data {
			v.Data[i] = float32(r.NormFloat64())
		}
		if r.IntN(2) == 0 { // float16 rows (an npy <f2 source), converted by the encoder
			v.Half = make([]byte, 0, 2*n*w)
			for _, f := range v.Data {
				v.Half = binary.LittleEndian.AppendUint16(v.Half, float16.Fromfloat32(f).Bits())
			}
			v.Data = nil
		}
		b.Vectors = append(b.Vectors, v)
	}
	if r.IntN(2) == 0 { // multivectors: 1..4 tokens per point
		for _, name := range []string{"colbert", "a-tokens"}[:1+r.IntN(2)] {
			w := 1 + r.IntN(4)
			m := &pipeline.MultiColumn{Width: w, Offsets: []int{0}}
			for i := 0; i < n; i++ {
				for t := 1 + r.IntN(4); t > 0; t-- {
					for k := 0; k < w; k++ {
						m.Data = append(m.Data, float32(r.NormFloat64()))
					}
				}
				m.Offsets = append(m.Offsets, len(m.Data)/w)
			}
			b.Multi = append(b.Multi, pipeline.NamedMulti{Name: name, Col: m})
		}
	}
	if r.IntN(2) == 0 { // sparse: 0..6 entries per point, indices up to 2^32-1
		for _, name := range []string{"splade", "bm25"}[:1+r.IntN(2)] {
			s := &pipeline.SparseColumn{Offsets: []int{0}}
			for i := 0; i < n; i++ {
				for k := r.IntN(7); k > 0; k-- {
					s.Indices = append(s.Indices, uint32(r.Uint64()>>uint(r.IntN(64))))
					s.Values = append(s.Values, float32(r.NormFloat64()))
				}
				s.Offsets = append(s.Offsets, len(s.Indices))
			}
			b.Sparse = append(b.Sparse, pipeline.NamedSparse{Name: name, Col: s})
		}
	}
	if r.IntN(2) == 0 {
		b.IDs = make([]pipeline.PointID, n)
		for i := range b.IDs {
			if r.IntN(2) == 0 {
				b.IDs[i] = pipeline.PointID{Num: r.Uint64()}
			} else {
				b.IDs[i] = pipeline.PointID{UUID: fmt.Sprintf("%08x-0000-4000-8000-%012x", r.Uint32(), r.Uint64()>>16)}
			}
		}
	}
	if r.IntN(3) > 0 {
		b.Payload = randPayload(r, n, 2)
	}
	return b
}

// randPayload makes n rows of up to 6 keys (every row has every key; a
// nil value is a null), values nested up to depth.
func randPayload(r *rand.Rand, n, depth int) *pipeline.PayloadBlock {
	keys := r.Perm(8)[:r.IntN(7)]
	rows := make([]map[string]any, n)
	for i := range rows {
		m := map[string]any{}
		for _, k := range keys {
			m[fmt.Sprintf("f%d", k)] = randAny(r, depth)
		}
		rows[i] = m
	}
	return pipeline.PayloadFromRows(rows)
}

// reference builds the request the obvious way, with go-client's types.
func reference(u *Upsert) *qdrant.UpsertPoints {
	wait := u.Wait
	req := &qdrant.UpsertPoints{CollectionName: u.Collection, Wait: &wait}
	b := u.Batch
	for i := 0; i < b.N; i++ {
		p := &qdrant.PointStruct{Id: qvalue.ID(b.ID(i))}
		if len(b.Vectors)+len(b.Multi)+len(b.Sparse) > 0 {
			vm := map[string]*qdrant.Vector{}
			for _, v := range b.Vectors {
				var data []float32
				if v.Half == nil {
					data = v.Data[i*v.Width : (i+1)*v.Width]
				} else { // converted independently of internal/half
					for k := i * v.Width; k < (i+1)*v.Width; k++ {
						data = append(data, float16.Frombits(binary.LittleEndian.Uint16(v.Half[2*k:])).Float32())
					}
				}
				vm[v.Name] = qdrant.NewVectorDense(data)
			}
			for _, v := range b.Multi {
				var toks [][]float32
				row := v.Col.Row(i)
				for t := 0; t < v.Col.Tokens(i); t++ {
					toks = append(toks, row[t*v.Col.Width:(t+1)*v.Col.Width])
				}
				vm[v.Name] = qdrant.NewVectorMulti(toks)
			}
			for _, v := range b.Sparse {
				idx, vals := v.Col.Row(i)
				vm[v.Name] = qdrant.NewVectorSparse(idx, vals)
			}
			p.Vectors = qdrant.NewVectorsMap(vm)
		}
		if b.Payload != nil && len(b.Payload.Keys) > 0 {
			p.Payload = qvalue.Payload(b.Payload.Row(i))
		}
		req.Points = append(req.Points, p)
	}
	return req
}

// The batch encoder's bytes decode to the same request go-client's types
// would make, for random batches; the size is exact.
func TestAppendBatchMatchesReference(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 11))
	for k := 0; k < 2000; k++ {
		u := &Upsert{Collection: "LAION-5B", Wait: r.IntN(4) > 0, Batch: randBatch(r)}
		got := AppendBatch(nil, u)
		if len(got) != BatchSize(u) {
			t.Fatalf("case %d: size %d, BatchSize %d", k, len(got), BatchSize(u))
		}
		var dec qdrant.UpsertPoints
		if err := proto.Unmarshal(got, &dec); err != nil {
			t.Fatalf("case %d: %v", k, err)
		}
		want := reference(u)
		if !proto.Equal(&dec, want) {
			t.Fatalf("case %d:\n got %v\nwant %v", k, &dec, want)
		}
		// The codec encodes it the same way (map order aside).
		viaCodec, err := Marshal(u)
		var dec2 qdrant.UpsertPoints
		if err != nil || len(viaCodec) != len(got) || proto.Unmarshal(viaCodec, &dec2) != nil || !proto.Equal(&dec2, want) {
			t.Fatalf("case %d: codec differs (%v)", k, err)
		}
	}
}

// The encoder's bytes are exactly deterministic proto.Marshal's: payload
// keys and named vectors of every kind (dense, multi-dense, sparse) in name
// order, fields in number order. (Payload values here are scalars and lists:
// a nested map is written in Go's random order.)
func TestAppendBatchBytesEqualProtoMarshal(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 5))
	kinds := map[string]int{}
	for k := 0; k < 2000; k++ {
		b := randBatch(r)
		if b.Payload != nil { // scalars, and lists of scalars in some keys
			keys := r.Perm(8)[:r.IntN(7)]
			rows := make([]map[string]any, b.N)
			for i := range rows {
				rows[i] = map[string]any{}
				for _, k := range keys {
					if k%2 == 0 {
						rows[i][fmt.Sprintf("f%d", k)] = []any{randAny(r, 0), randAny(r, 0)}
					} else {
						rows[i][fmt.Sprintf("f%d", k)] = randAny(r, 0)
					}
				}
			}
			b.Payload = pipeline.PayloadFromRows(rows)
		}
		u := &Upsert{Collection: "c", Wait: true, Batch: b}
		want, err := proto.MarshalOptions{Deterministic: true}.Marshal(reference(u))
		if err != nil {
			t.Fatal(err)
		}
		if got := AppendBatch(nil, u); string(got) != string(want) {
			t.Fatalf("case %d: %d bytes, proto.Marshal gives %d (multi %d, sparse %d)", k, len(got), len(want), len(b.Multi), len(b.Sparse))
		}
		kinds[fmt.Sprintf("multi=%t sparse=%t", len(b.Multi) > 0, len(b.Sparse) > 0)]++
	}
	if len(kinds) != 4 {
		t.Fatalf("random batches did not cover every combination: %v", kinds)
	}
}

func TestNormalizeWidens(t *testing.T) {
	for in, want := range map[any]any{int(3): int64(3), int32(-3): int64(-3), uint32(7): int64(7), uint64(1 << 63): float64(1 << 63), float32(0.5): 0.5} {
		if got := normalize(in); got != want {
			t.Errorf("normalize(%T %v) = %T %v", in, in, got, got)
		}
	}
}

// Codec writes the same bytes as Marshal, into buffers that return to a
// pool once freed; a reused buffer holds only the new request's bytes.
func TestCodecReusesBuffers(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 9))
	var prev *byte
	reused := 0
	for k := 0; k < 300; k++ {
		u := &Upsert{Collection: "c", Wait: true, Batch: randBatch(r)}
		want, err := Marshal(u)
		if err != nil {
			t.Fatal(err)
		}
		bs, err := Codec{}.Marshal(u)
		if err != nil {
			t.Fatal(err)
		}
		got := bs.Materialize()
		var a, b qdrant.UpsertPoints
		if err := proto.Unmarshal(got, &a); err != nil {
			t.Fatal(err)
		}
		if err := proto.Unmarshal(want, &b); err != nil {
			t.Fatal(err)
		}
		// (equal messages, not bytes: nested payload maps are written in Go's map order)
		if len(got) != len(want) || !proto.Equal(&a, &b) {
			t.Fatalf("case %d: Codec wrote %d bytes unlike Marshal's %d", k, len(got), len(want))
		}
		if len(bs) == 1 && len(bs[0].ReadOnlyData()) > 0 {
			if p := &bs[0].ReadOnlyData()[0]; p == prev {
				reused++
			}
			prev = &bs[0].ReadOnlyData()[0]
		}
		bs.Free()
		var back qdrant.UpsertPoints
		if err := (Codec{}).Unmarshal(mem.BufferSlice{mem.SliceBuffer(want)}, &back); err != nil || back.CollectionName != "c" {
			t.Fatalf("unmarshal: %v %v", err, back.CollectionName)
		}
	}
	t.Logf("%d of 300 requests reused the previous buffer", reused)
}

// With a Hold, Codec sends wide float32 vectors from the batch's memory:
// the bytes are a request equal to Marshal's, the vector segments are the
// batch's own memory, and the batch is released once, only when its owner
// and every request encoded from it (a retry encodes again) are done.
func TestCodecLendsVectors(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 11))
	lentRequests := 0
	for k := 0; k < 100; k++ {
		bt := randBatch(r)
		for _, name := range []string{"wide", "wider"}[:1+r.IntN(2)] {
			w := []int{255, 256, 300, 768}[r.IntN(4)]
			v := pipeline.NamedVector{Name: name, Width: w, Data: make([]float32, bt.N*w)}
			for i := range v.Data {
				v.Data[i] = float32(r.NormFloat64())
			}
			bt.Vectors = append(bt.Vectors, v)
		}
		slices.SortFunc(bt.Vectors, func(a, b pipeline.NamedVector) int { return strings.Compare(a.Name, b.Name) })
		released := 0
		h := NewHold(func() { released++ })
		u := &Upsert{Collection: "c", Wait: true, Batch: bt, Hold: h}
		want, err := Marshal(u)
		if err != nil {
			t.Fatal(err)
		}
		var sent []mem.BufferSlice
		for try := 0; try < 1+r.IntN(3); try++ { // a retry encodes the batch again
			bs, err := Codec{}.Marshal(u)
			if err != nil {
				t.Fatal(err)
			}
			got := bs.Materialize()
			var a, b qdrant.UpsertPoints
			if proto.Unmarshal(got, &a) != nil || proto.Unmarshal(want, &b) != nil || len(got) != len(want) || !proto.Equal(&a, &b) {
				t.Fatalf("case %d: the lent request (%d bytes) differs from Marshal's (%d)", k, len(got), len(want))
			}
			sent = append(sent, bs)
		}
		// Which segments are the batch's memory.
		lent := 0
		for _, s := range sent[0] {
			d := s.ReadOnlyData()
			for _, v := range bt.Vectors {
				if len(d) > 0 && len(v.Data) > 0 && v.Half == nil &&
					uintptr(unsafe.Pointer(&d[0])) >= uintptr(unsafe.Pointer(&v.Data[0])) &&
					uintptr(unsafe.Pointer(&d[0])) < uintptr(unsafe.Pointer(&v.Data[0]))+uintptr(4*len(v.Data)) {
					lent++
				}
			}
		}
		wantLent := 0
		for _, v := range bt.Vectors {
			if v.Half == nil && v.Width >= 256 {
				wantLent += bt.N
			}
		}
		if lent != wantLent {
			t.Fatalf("case %d: %d vectors sent from the batch's memory, want %d", k, lent, wantLent)
		}
		if lent > 0 {
			lentRequests++
		}
		// Release waits for the owner and every request, in any order.
		ownerFirst := r.IntN(2) == 0
		if ownerFirst {
			h.Put()
		}
		for _, bs := range sent {
			if released != 0 && lent > 0 {
				t.Fatalf("case %d: released while a request was not freed", k)
			}
			bs.Free()
		}
		if !ownerFirst {
			if released != 0 {
				t.Fatalf("case %d: released before its owner was done", k)
			}
			h.Put()
		}
		if released != 1 {
			t.Fatalf("case %d: released %d times, want once", k, released)
		}
	}
	if lentRequests < 50 {
		t.Fatalf("only %d of 100 requests lent vectors", lentRequests)
	}
}

// A vector column held as runs of rows (pipeline.Runs, a reader's pages
// borrowed) encodes to the same bytes as the same values in one buffer,
// copied (Marshal) or sent from the runs (the codec lends them).
func TestRunsEncodeAsData(t *testing.T) {
	r := rand.New(rand.NewPCG(12, 13))
	for k := 0; k < 100; k++ {
		bt := randBatch(r)
		bt.Payload = nil // nested payload maps are written in map order: not byte for byte
		w := []int{3, 256, 768}[r.IntN(3)]
		v := pipeline.NamedVector{Name: "runs", Width: w, Data: make([]float32, bt.N*w)}
		for i := range v.Data {
			v.Data[i] = float32(r.NormFloat64())
		}
		bt.Vectors = append(bt.Vectors, v)
		slices.SortFunc(bt.Vectors, func(a, b pipeline.NamedVector) int { return strings.Compare(a.Name, b.Name) })
		want, err := Marshal(&Upsert{Collection: "c", Batch: bt})
		if err != nil {
			t.Fatal(err)
		}
		// The same column as runs of 1..N rows, in buffers of their own.
		for i := range bt.Vectors {
			if bt.Vectors[i].Name != "runs" {
				continue
			}
			runs := &pipeline.Runs{Width: w}
			for at := 0; at < bt.N; {
				n := 1 + r.IntN(bt.N-at)
				part := make([]byte, 0, 4*n*w)
				for _, f := range bt.Vectors[i].Data[at*w : (at+n)*w] {
					part = binary.LittleEndian.AppendUint32(part, math.Float32bits(f))
				}
				runs.Add(part)
				at += n
			}
			bt.Vectors[i] = pipeline.NamedVector{Name: "runs", Width: w, Runs: runs}
		}
		got, err := Marshal(&Upsert{Collection: "c", Batch: bt})
		if err != nil || !slices.Equal(got, want) {
			t.Fatalf("case %d: Marshal of the runs differs (%v)", k, err)
		}
		bs, err := Codec{}.Marshal(&Upsert{Collection: "c", Batch: bt, Hold: NewHold(func() {})})
		if err != nil || !slices.Equal(bs.Materialize(), want) {
			t.Fatalf("case %d: the codec's request from the runs differs (%v)", k, err)
		}
		bs.Free()
	}
}
