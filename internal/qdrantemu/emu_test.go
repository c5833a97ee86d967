package qdrantemu_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime/multipart"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/qdrant/go-client/qdrant"
	"github.com/snappipe/snappipe/internal/qdrantemu"
	"github.com/snappipe/snappipe/internal/testkit"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/mem"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
)

func start(t *testing.T, opts qdrantemu.Options) (*qdrantemu.Server, *qdrant.Client) {
	t.Helper()
	return testkit.Emulator(t, opts)
}

func named768(t *testing.T, c *qdrant.Client, name string) { namedDim(t, c, name, 768) }

func namedDim(t *testing.T, c *qdrant.Client, name string, dim uint64) {
	t.Helper()
	err := c.CreateCollection(context.Background(), &qdrant.CreateCollection{
		CollectionName: name,
		VectorsConfig: qdrant.NewVectorsConfigMap(map[string]*qdrant.VectorParams{
			"image": {Size: dim, Distance: qdrant.Distance_Cosine, Datatype: qdrant.Datatype_Float16.Enum()},
			"text":  {Size: dim, Distance: qdrant.Distance_Cosine},
		}),
		ShardNumber: qdrant.PtrOf(uint32(2)),
	})
	if err != nil {
		t.Fatal(err)
	}
}

func vec(n int, seed float32) []float32 {
	v := make([]float32, n)
	for i := range v {
		v[i] = seed + float32(i%64)/64 // exact in float16
	}
	return v
}

func TestHealthCheck(t *testing.T) {
	_, c := start(t, qdrantemu.Options{})
	r, err := c.HealthCheck(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if r.GetTitle() != "qdrant - vector search engine" || r.GetVersion() != "1.17.1" {
		t.Fatalf("health = %v", r)
	}
}

func TestCollectionLifecycle(t *testing.T) {
	_, c := start(t, qdrantemu.Options{})
	ctx := context.Background()
	named768(t, c, "LAION-5B")
	exists, err := c.CollectionExists(ctx, "LAION-5B")
	if err != nil || !exists {
		t.Fatalf("exists = %v, %v", exists, err)
	}
	info, err := c.GetCollectionInfo(ctx, "LAION-5B")
	if err != nil {
		t.Fatal(err)
	}
	if info.GetStatus() != qdrant.CollectionStatus_Green || info.GetPointsCount() != 0 || info.GetConfig().GetParams().GetShardNumber() != 2 {
		t.Fatalf("info = %v", info)
	}
	m := info.GetConfig().GetParams().GetVectorsConfig().GetParamsMap().GetMap()
	if m["image"].GetSize() != 768 || m["image"].GetDatatype() != qdrant.Datatype_Float16 || m["text"].GetDistance() != qdrant.Distance_Cosine {
		t.Fatalf("vectors config = %v", m)
	}
	if info.GetConfig().GetHnswConfig().GetM() != 16 {
		t.Fatalf("default hnsw m = %d", info.GetConfig().GetHnswConfig().GetM())
	}
	err = c.UpdateCollection(ctx, &qdrant.UpdateCollection{CollectionName: "LAION-5B",
		HnswConfig: &qdrant.HnswConfigDiff{M: qdrant.PtrOf(uint64(0))}, OptimizersConfig: &qdrant.OptimizersConfigDiff{IndexingThreshold: qdrant.PtrOf(uint64(0))}})
	if err != nil {
		t.Fatal(err)
	}
	info, _ = c.GetCollectionInfo(ctx, "LAION-5B")
	if info.GetConfig().GetHnswConfig().GetM() != 0 || info.GetConfig().GetOptimizerConfig().GetIndexingThreshold() != 0 || info.GetConfig().GetHnswConfig().GetEfConstruct() != 100 {
		t.Fatalf("update not echoed: %v", info.GetConfig())
	}
	// Quantization is replaced by an update, as Qdrant does
	// (update_quantization_config_from_diff), and removed by disabled.
	for _, q := range []*qdrant.QuantizationConfigDiff{
		qdrant.NewQuantizationDiffBinary(&qdrant.BinaryQuantization{}),
		qdrant.NewQuantizationDiffScalar(&qdrant.ScalarQuantization{Type: qdrant.QuantizationType_Int8}),
		qdrant.NewQuantizationDiffDisabled(),
	} {
		if err := c.UpdateCollection(ctx, &qdrant.UpdateCollection{CollectionName: "LAION-5B", QuantizationConfig: q}); err != nil {
			t.Fatal(err)
		}
		info, _ = c.GetCollectionInfo(ctx, "LAION-5B")
		got := info.GetConfig().GetQuantizationConfig()
		if (q.GetBinary() != nil) != (got.GetBinary() != nil) || (q.GetScalar() != nil) != (got.GetScalar() != nil) || q.GetDisabled() != nil && got != nil {
			t.Fatalf("after %v: quantization %v", q, got)
		}
	}
	names, err := c.ListCollections(ctx)
	if err != nil || len(names) != 1 || names[0] != "LAION-5B" {
		t.Fatalf("list = %v %v", names, err)
	}
	if err := c.DeleteCollection(ctx, "LAION-5B"); err != nil {
		t.Fatal(err)
	}
	exists, _ = c.CollectionExists(ctx, "LAION-5B")
	if exists {
		t.Fatal("still exists after delete")
	}
}

func TestErrors(t *testing.T) {
	_, c := start(t, qdrantemu.Options{})
	ctx := context.Background()
	named768(t, c, "c")
	good := func(id *qdrant.PointId, vs *qdrant.Vectors) error {
		_, err := c.Upsert(ctx, &qdrant.UpsertPoints{CollectionName: "c", Wait: qdrant.PtrOf(true),
			Points: []*qdrant.PointStruct{{Id: id, Vectors: vs}}})
		return err
	}
	both := qdrant.NewVectorsMap(map[string]*qdrant.Vector{"image": qdrant.NewVectorDense(vec(768, 0)), "text": qdrant.NewVectorDense(vec(768, 0))})
	cases := []struct {
		name string
		err  error
		code codes.Code
		msg  string
	}{
		{"missing collection", func() error { _, err := c.GetCollectionInfo(ctx, "nope"); return err }(), codes.NotFound, "Not found: Collection `nope` doesn't exist!"},
		{"exists", c.CreateCollection(ctx, &qdrant.CreateCollection{CollectionName: "c", VectorsConfig: qdrant.NewVectorsConfig(&qdrant.VectorParams{Size: 4, Distance: qdrant.Distance_Dot})}), codes.AlreadyExists, "Wrong input: Collection `c` already exists!"},
		{"dimension", good(qdrant.NewIDNum(1), qdrant.NewVectorsMap(map[string]*qdrant.Vector{"image": qdrant.NewVectorDense(vec(512, 0))})), codes.InvalidArgument, "Wrong input: Vector dimension error: expected dim: 768, got 512"},
		{"vector name", good(qdrant.NewIDNum(1), qdrant.NewVectorsMap(map[string]*qdrant.Vector{"foo": qdrant.NewVectorDense(vec(768, 0))})), codes.InvalidArgument, "Wrong input: Not existing vector name error: foo"},
		{"uuid", good(qdrant.NewIDUUID("x"), both), codes.InvalidArgument, "Unable to parse UUID: x"},
		{"no vectors", good(qdrant.NewIDNum(1), nil), codes.InvalidArgument, "Expected some vectors"},
		{"collection name", c.CreateCollection(ctx, &qdrant.CreateCollection{CollectionName: "a/b", VectorsConfig: qdrant.NewVectorsConfig(&qdrant.VectorParams{Size: 4, Distance: qdrant.Distance_Dot})}), codes.InvalidArgument, "Validation error in body: [collection_name:"},
		{"size", c.CreateCollection(ctx, &qdrant.CreateCollection{CollectionName: "z", VectorsConfig: qdrant.NewVectorsConfig(&qdrant.VectorParams{Size: 65537, Distance: qdrant.Distance_Dot})}), codes.InvalidArgument, "Validation error in body: [vectors_config.size:"},
		{"upsert missing collection", func() error {
			_, err := c.Upsert(ctx, &qdrant.UpsertPoints{CollectionName: "nope", Points: []*qdrant.PointStruct{{Id: qdrant.NewIDNum(1), Vectors: both}}})
			return err
		}(), codes.NotFound, "Not found: Collection `nope` doesn't exist!"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			st := grpcStatus(tc.err)
			if tc.err == nil || st.Code() != tc.code || !strings.HasPrefix(st.Message(), tc.msg) {
				t.Fatalf("got %v (code %v), want %v %q", tc.err, st.Code(), tc.code, tc.msg)
			}
		})
	}
	n, _ := c.Count(ctx, &qdrant.CountPoints{CollectionName: "c", Exact: qdrant.PtrOf(true)})
	if n != 0 {
		t.Fatalf("failed upserts wrote %d points", n)
	}
}

func TestWaitFalseDropsApplyErrors(t *testing.T) {
	_, c := start(t, qdrantemu.Options{})
	ctx := context.Background()
	named768(t, c, "c")
	r, err := c.Upsert(ctx, &qdrant.UpsertPoints{CollectionName: "c", Wait: qdrant.PtrOf(false),
		Points: []*qdrant.PointStruct{{Id: qdrant.NewIDNum(1), Vectors: qdrant.NewVectorsMap(map[string]*qdrant.Vector{"image": qdrant.NewVectorDense(vec(5, 0))})}}})
	if err != nil || r.GetStatus() != qdrant.UpdateStatus_Acknowledged {
		t.Fatalf("wait=false bad dim: %v %v", r, err)
	}
	n, _ := c.Count(ctx, &qdrant.CountPoints{CollectionName: "c", Exact: qdrant.PtrOf(true)})
	if n != 0 {
		t.Fatalf("dropped op applied: %d", n)
	}
	r, err = c.Upsert(ctx, &qdrant.UpsertPoints{CollectionName: "c", Wait: qdrant.PtrOf(true),
		Points: []*qdrant.PointStruct{{Id: qdrant.NewIDNum(1), Vectors: qdrant.NewVectorsMap(map[string]*qdrant.Vector{"text": qdrant.NewVectorDense(vec(768, 0))})}}})
	if err != nil || r.GetStatus() != qdrant.UpdateStatus_Completed {
		t.Fatalf("wait=true: %v %v", r, err)
	}
}

func payloadOf(i int) map[string]*qdrant.Value {
	return map[string]*qdrant.Value{
		"s":     qdrant.NewValueString(fmt.Sprintf("row-%d ✓", i)),
		"i":     qdrant.NewValueInt(int64(i) * -7),
		"f":     qdrant.NewValueDouble(float64(i) / 3),
		"b":     qdrant.NewValueBool(i%2 == 0),
		"null":  qdrant.NewValueNull(),
		"list":  qdrant.NewValueFromList(qdrant.NewValueInt(1), qdrant.NewValueString("x")),
		"inner": qdrant.NewValueStruct(&qdrant.Struct{Fields: map[string]*qdrant.Value{"k": qdrant.NewValueDouble(0.1)}}),
	}
}

func fill(t *testing.T, c *qdrant.Client, name string, n int) { fillDim(t, c, name, n, 768) }

func fillDim(t *testing.T, c *qdrant.Client, name string, n, dim int) {
	t.Helper()
	ctx := context.Background()
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for b := w * 64; b < n; b += 4 * 64 {
				var pts []*qdrant.PointStruct
				for i := b; i < min(b+64, n); i++ {
					pts = append(pts, &qdrant.PointStruct{Id: qdrant.NewIDNum(uint64(i)), Payload: payloadOf(i),
						Vectors: qdrant.NewVectorsMap(map[string]*qdrant.Vector{"image": qdrant.NewVectorDense(vec(dim, float32(i%7))), "text": qdrant.NewVectorDense(vec(dim, -float32(i%5)))})})
				}
				if _, err := c.Upsert(ctx, &qdrant.UpsertPoints{CollectionName: name, Wait: qdrant.PtrOf(true), Points: pts}); err != nil {
					errs <- err
					return
				}
			}
		}(w)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
}

func TestPointsCountScrollGet(t *testing.T) {
	_, c := start(t, qdrantemu.Options{})
	ctx := context.Background()
	named768(t, c, "c")
	fill(t, c, "c", 300)
	u := "6f1c6d2a-3a8b-4c9e-9f00-0a1b2c3d4e5f"
	if _, err := c.Upsert(ctx, &qdrant.UpsertPoints{CollectionName: "c", Wait: qdrant.PtrOf(true), Points: []*qdrant.PointStruct{{Id: qdrant.NewIDUUID(u),
		Vectors: qdrant.NewVectorsMap(map[string]*qdrant.Vector{"text": qdrant.NewVectorDense(vec(768, 1))})}}}); err != nil {
		t.Fatal(err)
	}
	n, err := c.Count(ctx, &qdrant.CountPoints{CollectionName: "c", Exact: qdrant.PtrOf(true)})
	if err != nil || n != 301 {
		t.Fatalf("count = %d %v", n, err)
	}
	// Scroll in pages of 100: ascending numeric ids, then the UUID.
	var got []*qdrant.RetrievedPoint
	var off *qdrant.PointId
	for {
		res, next, err := c.ScrollAndOffset(ctx, &qdrant.ScrollPoints{CollectionName: "c", Offset: off, Limit: qdrant.PtrOf(uint32(100)),
			WithPayload: qdrant.NewWithPayload(true), WithVectors: qdrant.NewWithVectors(true)})
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, res...)
		if next == nil {
			break
		}
		off = next
	}
	if len(got) != 301 {
		t.Fatalf("scrolled %d", len(got))
	}
	for i := 0; i < 300; i++ {
		p := got[i]
		if p.GetId().GetNum() != uint64(i) {
			t.Fatalf("order: %d at %d", p.GetId().GetNum(), i)
		}
		if !proto.Equal(&qdrant.Struct{Fields: p.GetPayload()}, &qdrant.Struct{Fields: payloadOf(i)}) {
			t.Fatalf("payload %d = %v", i, p.GetPayload())
		}
		img := p.GetVectors().GetVectors().GetVectors()["image"]
		want := vec(768, float32(i%7))
		if len(img.GetDense().GetData()) != 768 || img.GetDense().GetData()[767] != want[767] || img.GetData()[5] != want[5] {
			t.Fatalf("vector %d wrong", i)
		}
	}
	if got[300].GetId().GetUuid() != u {
		t.Fatalf("last = %v", got[300].GetId())
	}
	pts, err := c.Get(ctx, &qdrant.GetPoints{CollectionName: "c", Ids: []*qdrant.PointId{qdrant.NewIDNum(7), qdrant.NewIDNum(9999)},
		WithPayload: qdrant.NewWithPayloadInclude("s")})
	if err != nil || len(pts) != 1 || len(pts[0].GetPayload()) != 1 || pts[0].GetPayload()["s"].GetStringValue() != "row-7 ✓" || pts[0].GetVectors() != nil {
		t.Fatalf("get = %v %v", pts, err)
	}
	if _, err := c.Delete(ctx, &qdrant.DeletePoints{CollectionName: "c", Wait: qdrant.PtrOf(true), Points: qdrant.NewPointsSelector(qdrant.NewIDNum(7))}); err != nil {
		t.Fatal(err)
	}
	n, _ = c.Count(ctx, &qdrant.CountPoints{CollectionName: "c", Exact: qdrant.PtrOf(true)})
	if n != 300 {
		t.Fatalf("after delete %d", n)
	}
	// Field indexes show in payload_schema.
	if _, err := c.CreateFieldIndex(ctx, &qdrant.CreateFieldIndexCollection{CollectionName: "c", FieldName: "s", FieldType: qdrant.FieldType_FieldTypeKeyword.Enum(), Wait: qdrant.PtrOf(true)}); err != nil {
		t.Fatal(err)
	}
	info, _ := c.GetCollectionInfo(ctx, "c")
	if info.GetPayloadSchema()["s"].GetDataType() != qdrant.PayloadSchemaType_Keyword || info.GetPayloadSchema()["s"].GetPoints() != 299 {
		t.Fatalf("payload schema = %v", info.GetPayloadSchema())
	}
	if _, err := c.DeleteFieldIndex(ctx, &qdrant.DeleteFieldIndexCollection{CollectionName: "c", FieldName: "s"}); err != nil {
		t.Fatal(err)
	}
	info, _ = c.GetCollectionInfo(ctx, "c")
	if len(info.GetPayloadSchema()) != 0 {
		t.Fatalf("index not deleted: %v", info.GetPayloadSchema())
	}
}

func TestLargeMessage(t *testing.T) {
	_, c := start(t, qdrantemu.Options{Discard: true})
	named768(t, c, "c")
	// ~2000 points × 2 × 768 floats ≈ 12 MiB, far above grpc-go's 4 MiB default.
	var pts []*qdrant.PointStruct
	for i := 0; i < 2000; i++ {
		pts = append(pts, &qdrant.PointStruct{Id: qdrant.NewIDNum(uint64(i)), Vectors: qdrant.NewVectorsMap(map[string]*qdrant.Vector{"image": qdrant.NewVectorDense(vec(768, 0)), "text": qdrant.NewVectorDense(vec(768, 0))})})
	}
	if _, err := c.Upsert(context.Background(), &qdrant.UpsertPoints{CollectionName: "c", Wait: qdrant.PtrOf(true), Points: pts}); err != nil {
		t.Fatal(err)
	}
	n, _ := c.Count(context.Background(), &qdrant.CountPoints{CollectionName: "c", Exact: qdrant.PtrOf(true)})
	if n != 2000 {
		t.Fatalf("discard count = %d", n)
	}
}

type envelope struct {
	Result json.RawMessage `json:"result"`
	Status any             `json:"status"`
	Time   *float64        `json:"time"`
}

func rest(t *testing.T, method, url, key string, body io.Reader, ctype string) (int, []byte, http.Header) {
	t.Helper()
	req, _ := http.NewRequest(method, url, body)
	if key != "" {
		req.Header.Set("api-key", key)
	}
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b, resp.Header
}

func TestSnapshotRoundTrip(t *testing.T) {
	srv, c := start(t, qdrantemu.Options{APIKey: "K"})
	ctx := context.Background()
	// 10 000 points with 32-d vectors: the race detector makes 768-d slow.
	namedDim(t, c, "LAION-5B", 32)
	fillDim(t, c, "LAION-5B", 10000, 32)
	if _, err := c.CreateFieldIndex(ctx, &qdrant.CreateFieldIndexCollection{CollectionName: "LAION-5B", FieldName: "b", FieldType: qdrant.FieldType_FieldTypeBool.Enum()}); err != nil {
		t.Fatal(err)
	}
	d, err := c.CreateSnapshot(ctx, "LAION-5B")
	if err != nil {
		t.Fatal(err)
	}
	if !regexp.MustCompile(fmt.Sprintf(`^LAION-5B-%d-\d{4}-\d\d-\d\d-\d\d-\d\d-\d\d\.snapshot$`, srv.PeerID())).MatchString(d.GetName()) {
		t.Fatalf("name = %s", d.GetName())
	}
	list, err := c.ListSnapshots(ctx, "LAION-5B")
	if err != nil || len(list) != 1 || list[0].GetChecksum() != d.GetChecksum() || list[0].GetSize() != d.GetSize() {
		t.Fatalf("list = %v %v", list, err)
	}
	base := srv.URL() + "/collections/LAION-5B/snapshots/"
	code, body, hdr := rest(t, "GET", base+d.GetName(), "K", nil, "")
	sum := sha256.Sum256(body)
	if code != 200 || hex.EncodeToString(sum[:]) != d.GetChecksum() || int64(len(body)) != d.GetSize() || hdr.Get("Content-Type") != "application/octet-stream" {
		t.Fatalf("download: %d, %d bytes, sha %x vs %s", code, len(body), sum, d.GetChecksum())
	}
	sidecar, _ := os.ReadFile(filepath.Join(srv.SnapshotsDir(), "LAION-5B", d.GetName()+".checksum"))
	if string(sidecar) != d.GetChecksum() {
		t.Fatalf("sidecar %q", sidecar)
	}
	// Range → 206.
	req, _ := http.NewRequest("GET", base+d.GetName(), nil)
	req.Header.Set("api-key", "K")
	req.Header.Set("Range", "bytes=100-")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	part, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 206 || !bytes.Equal(part, body[100:]) {
		t.Fatalf("range: %d, %d bytes", resp.StatusCode, len(part))
	}

	// Upload into a fresh emulator, first with a wrong checksum.
	srv2, c2 := start(t, qdrantemu.Options{})
	upload := func(checksum string) (int, []byte) {
		var buf bytes.Buffer
		mw := multipart.NewWriter(&buf)
		fw, _ := mw.CreateFormFile("snapshot", d.GetName())
		fw.Write(body)
		mw.Close()
		return func() (int, []byte) {
			code, b, _ := rest(t, "POST", srv2.URL()+"/collections/LAION-5B/snapshots/upload?priority=snapshot&checksum="+checksum, "", &buf, mw.FormDataContentType())
			return code, b
		}()
	}
	code, b := upload(strings.Repeat("0", 64))
	if code != 400 || !strings.Contains(string(b), "Snapshot checksum mismatch: expected 000") {
		t.Fatalf("bad checksum upload: %d %s", code, b)
	}
	code, b = upload(strings.ToUpper(d.GetChecksum()))
	if code != 200 {
		t.Fatalf("upload: %d %s", code, b)
	}
	comparePoints(t, c, c2, "LAION-5B", 10000)
	info, _ := c2.GetCollectionInfo(ctx, "LAION-5B")
	if info.GetPayloadSchema()["b"].GetDataType() != qdrant.PayloadSchemaType_Bool || info.GetConfig().GetParams().GetShardNumber() != 2 {
		t.Fatalf("restored config: %v", info)
	}

	// Recover over http from the first emulator into a third one.
	srv3, c3 := start(t, qdrantemu.Options{})
	loc, _ := json.Marshal(map[string]any{"location": base + d.GetName(), "checksum": d.GetChecksum(), "api_key": "K", "priority": "snapshot"})
	code, b, _ = rest(t, "PUT", srv3.URL()+"/collections/copy/snapshots/recover", "", bytes.NewReader(loc), "application/json")
	if code != 200 {
		t.Fatalf("recover: %d %s", code, b)
	}
	comparePointsNamed(t, c, "LAION-5B", c3, "copy", 10000)

	// Delete removes the file and its sidecar.
	code, _, _ = rest(t, "DELETE", base+d.GetName(), "K", nil, "")
	if code != 200 {
		t.Fatalf("delete: %d", code)
	}
	if _, err := os.Stat(filepath.Join(srv.SnapshotsDir(), "LAION-5B", d.GetName()+".checksum")); !errors.Is(err, os.ErrNotExist) {
		t.Fatal("sidecar left behind")
	}
	code, b, _ = rest(t, "GET", base+d.GetName(), "K", nil, "")
	if code != 404 || !strings.Contains(string(b), "Not found: Snapshot "+d.GetName()+" not found") {
		t.Fatalf("missing snapshot: %d %s", code, b)
	}
}

// grpcStatus unwraps go-client's QdrantError to the server's status.
func grpcStatus(err error) *status.Status {
	var se interface{ GRPCStatus() *status.Status }
	if errors.As(err, &se) {
		return se.GRPCStatus()
	}
	return status.Convert(err)
}

func scrollAll(t *testing.T, c *qdrant.Client, name string) []*qdrant.RetrievedPoint {
	t.Helper()
	var out []*qdrant.RetrievedPoint
	var off *qdrant.PointId
	for {
		res, next, err := c.ScrollAndOffset(context.Background(), &qdrant.ScrollPoints{CollectionName: name, Offset: off, Limit: qdrant.PtrOf(uint32(300)),
			WithPayload: qdrant.NewWithPayload(true), WithVectors: qdrant.NewWithVectors(true)})
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, res...)
		if next == nil {
			return out
		}
		off = next
	}
}

func TestMain(m *testing.M) {
	slog.SetDefault(slog.New(slog.DiscardHandler)) // go-client's plaintext-key warning
	os.Exit(m.Run())
}

func comparePoints(t *testing.T, a, b *qdrant.Client, name string, n int) {
	comparePointsNamed(t, a, name, b, name, n)
}

func comparePointsNamed(t *testing.T, a *qdrant.Client, an string, b *qdrant.Client, bn string, n int) {
	t.Helper()
	sa, sb := scrollAll(t, a, an), scrollAll(t, b, bn)
	if len(sa) != n || len(sb) != n {
		t.Fatalf("points: %d vs %d, want %d", len(sa), len(sb), n)
	}
	det := proto.MarshalOptions{Deterministic: true}
	for i := range sa {
		ba, _ := det.Marshal(sa[i])
		bb, _ := det.Marshal(sb[i])
		if !bytes.Equal(ba, bb) {
			t.Fatalf("point %d differs", i)
		}
	}
}

func TestAuth(t *testing.T) {
	srv, _ := start(t, qdrantemu.Options{APIKey: "secret"})
	host, port, _ := net.SplitHostPort(srv.GRPCAddr())
	p, _ := strconv.Atoi(port)
	bad, err := qdrant.NewClient(&qdrant.Config{Host: host, Port: p, APIKey: "wrong", SkipCompatibilityCheck: true})
	if err != nil {
		t.Fatal(err)
	}
	defer bad.Close()
	_, err = bad.ListCollections(context.Background())
	if status.Code(err) != codes.Unauthenticated {
		t.Fatalf("wrong key: %v", err)
	}
	if _, err := bad.HealthCheck(context.Background()); err != nil {
		t.Fatalf("health needs no key: %v", err)
	}
	for _, path := range []string{"/", "/healthz", "/readyz", "/livez"} {
		if code, _, _ := rest(t, "GET", srv.URL()+path, "", nil, ""); code != 200 {
			t.Fatalf("%s: %d", path, code)
		}
	}
	if code, _, _ := rest(t, "GET", srv.URL()+"/collections", "", nil, ""); code != 401 {
		t.Fatalf("no key: %d", code)
	}
	req, _ := http.NewRequest("GET", srv.URL()+"/collections", nil)
	req.Header.Set("Authorization", "Bearer secret")
	resp, err := http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("bearer: %v %v", resp, err)
	}
	resp.Body.Close()
}

func TestRESTEnvelopes(t *testing.T) {
	srv, c := start(t, qdrantemu.Options{})
	named768(t, c, "c")
	fill(t, c, "c", 10)
	code, b, _ := rest(t, "GET", srv.URL()+"/collections/c", "", nil, "")
	var env envelope
	json.Unmarshal(b, &env)
	if code != 200 || env.Status != "ok" || env.Time == nil {
		t.Fatalf("get: %d %s", code, b)
	}
	var info struct {
		PointsCount int `json:"points_count"`
		Config      struct {
			Params struct {
				Vectors map[string]struct {
					Size     int    `json:"size"`
					Distance string `json:"distance"`
				} `json:"vectors"`
			} `json:"params"`
		} `json:"config"`
	}
	json.Unmarshal(env.Result, &info)
	if info.PointsCount != 10 || info.Config.Params.Vectors["image"].Size != 768 || info.Config.Params.Vectors["text"].Distance != "Cosine" {
		t.Fatalf("info: %s", env.Result)
	}
	code, b, _ = rest(t, "GET", srv.URL()+"/collections/nope", "", nil, "")
	if code != 404 || string(b) == "" || !strings.Contains(string(b), `{"status":{"error":"Not found: Collection `+"`nope`"+` doesn't exist!"}`) {
		t.Fatalf("404: %d %s", code, b)
	}
	code, b, _ = rest(t, "POST", srv.URL()+"/collections/c/snapshots?wait=false", "", nil, "")
	if code != 202 || !strings.Contains(string(b), `"status":"accepted"`) || strings.Contains(string(b), "result") {
		t.Fatalf("wait=false: %d %s", code, b)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		_, b, _ = rest(t, "GET", srv.URL()+"/collections/c/snapshots", "", nil, "")
		json.Unmarshal(b, &env)
		var list []map[string]any
		json.Unmarshal(env.Result, &list)
		if len(list) == 1 {
			if _, ok := list[0]["checksum"]; !ok || !regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d$`).MatchString(list[0]["creation_time"].(string)) {
				t.Fatalf("description: %v", list[0])
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("background snapshot never listed")
		}
		time.Sleep(20 * time.Millisecond)
	}
	code, b, _ = rest(t, "POST", srv.URL()+"/collections/c/snapshots", "", nil, "")
	json.Unmarshal(b, &env)
	var d map[string]any
	json.Unmarshal(env.Result, &d)
	if code != 200 || d["name"] == nil || d["size"].(float64) <= 0 {
		t.Fatalf("create: %d %s", code, b)
	}
}

func TestFaults(t *testing.T) {
	srv, c := start(t, qdrantemu.Options{})
	ctx := context.Background()
	named768(t, c, "c")
	pt := []*qdrant.PointStruct{{Id: qdrant.NewIDNum(1), Vectors: qdrant.NewVectorsMap(map[string]*qdrant.Vector{"text": qdrant.NewVectorDense(vec(768, 0))})}}
	up := func() error {
		_, err := c.Upsert(ctx, &qdrant.UpsertPoints{CollectionName: "c", Wait: qdrant.PtrOf(true), Points: pt})
		return err
	}
	srv.SetFaults(qdrantemu.Faults{FailUpserts: 2, FailCode: codes.ResourceExhausted, RetryAfter: 3})
	for i := 0; i < 2; i++ {
		var re *qdrant.QdrantResourceExhaustedError
		if err := up(); !errors.As(err, &re) || re.RetryAfterS != 3 {
			t.Fatalf("attempt %d: %v", i, err)
		}
	}
	if err := up(); err != nil {
		t.Fatalf("third: %v", err)
	}
	for _, code := range []codes.Code{codes.Unavailable, codes.Internal} {
		srv.SetFaults(qdrantemu.Faults{FailUpserts: 1, FailCode: code})
		if err := up(); status.Code(err) != code {
			t.Fatalf("%v: %v", code, err)
		}
	}
	// Seeded random failures are reproducible.
	pattern := func() string {
		srv.SetFaults(qdrantemu.Faults{FailRate: 0.5, Seed: 42})
		var sb strings.Builder
		for i := 0; i < 20; i++ {
			if up() != nil {
				sb.WriteByte('x')
			} else {
				sb.WriteByte('.')
			}
		}
		return sb.String()
	}
	p1, p2 := pattern(), pattern()
	if p1 != p2 || !strings.Contains(p1, "x") || !strings.Contains(p1, ".") {
		t.Fatalf("fail-rate patterns %s %s", p1, p2)
	}
	// Upsert delay honours the caller's deadline.
	srv.SetFaults(qdrantemu.Faults{UpsertDelay: 2 * time.Second})
	dctx, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
	_, err := c.Upsert(dctx, &qdrant.UpsertPoints{CollectionName: "c", Wait: qdrant.PtrOf(true), Points: pt})
	cancel()
	if status.Code(err) != codes.DeadlineExceeded {
		t.Fatalf("delay: %v", err)
	}
	// Snapshot creation outlives the caller's deadline.
	srv.SetFaults(qdrantemu.Faults{SnapshotDelay: 300 * time.Millisecond})
	sctx, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	_, err = c.CreateSnapshot(sctx, "c")
	cancel()
	if status.Code(err) != codes.DeadlineExceeded {
		t.Fatalf("snapshot deadline: %v", err)
	}
	var list []*qdrant.SnapshotDescription
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if list, _ = c.ListSnapshots(ctx, "c"); len(list) > 0 {
			break
		}
	}
	if len(list) != 1 {
		t.Fatalf("background snapshot: %v", list)
	}
	// Two snapshots in the same second get different names.
	srv.SetFaults(qdrantemu.Faults{TruncateDownloadAfter: 10})
	d1, err1 := c.CreateSnapshot(ctx, "c")
	d2, err2 := c.CreateSnapshot(ctx, "c")
	if err1 != nil || err2 != nil || d1.GetName() == d2.GetName() {
		t.Fatalf("same-second names: %v %v %v %v", d1, d2, err1, err2)
	}
	// Truncated download: the client sees an unexpected EOF.
	resp, err := http.Get(srv.URL() + "/collections/c/snapshots/" + d1.GetName())
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err == nil || len(got) != 10 {
		t.Fatalf("truncated download: %d bytes, %v", len(got), err)
	}
}

func TestRecoverFromFileLocation(t *testing.T) {
	srv, c := start(t, qdrantemu.Options{})
	namedDim(t, c, "src", 8)
	fillDim(t, c, "src", 500, 8)
	d, err := c.CreateSnapshot(context.Background(), "src")
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(srv.SnapshotsDir(), "src", d.GetName())
	body, _ := json.Marshal(map[string]any{"location": "file://" + path, "checksum": d.GetChecksum()})
	code, b, _ := rest(t, "PUT", srv.URL()+"/collections/dst/snapshots/recover", "", bytes.NewReader(body), "application/json")
	if code != 200 {
		t.Fatalf("recover: %d %s", code, b)
	}
	comparePointsNamed(t, c, "src", c, "dst", 500)
	// Outside the snapshots directory: refused, as Qdrant does.
	body, _ = json.Marshal(map[string]any{"location": "file:///etc/passwd"})
	code, b, _ = rest(t, "PUT", srv.URL()+"/collections/dst/snapshots/recover", "", bytes.NewReader(body), "application/json")
	if code != 400 {
		t.Fatalf("outside dir: %d %s", code, b)
	}
	// Wrong checksum.
	body, _ = json.Marshal(map[string]any{"location": "file://" + path, "checksum": strings.Repeat("a", 64)})
	code, b, _ = rest(t, "PUT", srv.URL()+"/collections/dst/snapshots/recover", "", bytes.NewReader(body), "application/json")
	if code != 400 || !strings.Contains(string(b), "Snapshot checksum mismatch") {
		t.Fatalf("bad checksum: %d %s", code, b)
	}
}

// A sink counts the points of an upsert without decoding them: a point
// the emulator would refuse (a wrong vector size) is counted too, the
// other fields of the request still apply (an unknown collection is
// refused), and the rest of the API works as usual.
func TestSinkCountsWithoutDecoding(t *testing.T) {
	_, c := start(t, qdrantemu.Options{Sink: true})
	named768(t, c, "c")
	ctx := context.Background()
	var pts []*qdrant.PointStruct
	for i := 0; i < 300; i++ {
		size := 768
		if i == 7 {
			size = 3 // refused without Sink
		}
		pts = append(pts, &qdrant.PointStruct{Id: qdrant.NewIDNum(uint64(i)), Vectors: qdrant.NewVectorsMap(map[string]*qdrant.Vector{"image": qdrant.NewVectorDense(vec(size, 0)), "text": qdrant.NewVectorDense(vec(768, 0))})})
	}
	for _, batch := range [][]*qdrant.PointStruct{pts[:256], pts[256:]} {
		if _, err := c.Upsert(ctx, &qdrant.UpsertPoints{CollectionName: "c", Wait: qdrant.PtrOf(true), Points: batch}); err != nil {
			t.Fatal(err)
		}
	}
	n, err := c.Count(ctx, &qdrant.CountPoints{CollectionName: "c", Exact: qdrant.PtrOf(true)})
	if err != nil || n != 300 {
		t.Fatalf("count = %d, %v; want 300", n, err)
	}
	if _, err := c.Upsert(ctx, &qdrant.UpsertPoints{CollectionName: "missing", Wait: qdrant.PtrOf(true), Points: pts[:2]}); status.Code(err) != codes.NotFound {
		t.Fatalf("upsert into a missing collection: %v", err)
	}
	// The points are not decoded at all: one that is not even a
	// protobuf message is counted.
	req, _ := proto.Marshal(&qdrant.UpsertPoints{CollectionName: "c", Wait: qdrant.PtrOf(true)})
	req = protowire.AppendTag(req, 3, protowire.BytesType)
	req = protowire.AppendBytes(req, []byte{0xff, 0xff})
	var resp qdrant.PointsOperationResponse
	if err := c.GetGrpcClient().Conn().Invoke(ctx, "/qdrant.Points/Upsert", req, &resp, grpc.ForceCodecV2(rawCodec{})); err != nil {
		t.Fatal(err)
	}
	if n, err := c.Count(ctx, &qdrant.CountPoints{CollectionName: "c", Exact: qdrant.PtrOf(true)}); err != nil || n != 301 {
		t.Fatalf("count = %d, %v; want 301", n, err)
	}
	if _, err := c.CreateSnapshot(ctx, "c"); err != nil {
		t.Fatal(err)
	}
}

// rawCodec sends a []byte request as it is and decodes the response as
// protobuf.
type rawCodec struct{}

func (rawCodec) Name() string { return "proto" }
func (rawCodec) Marshal(v any) (mem.BufferSlice, error) {
	return mem.BufferSlice{mem.SliceBuffer(v.([]byte))}, nil
}
func (rawCodec) Unmarshal(data mem.BufferSlice, v any) error {
	return proto.Unmarshal(data.Materialize(), v.(proto.Message))
}
