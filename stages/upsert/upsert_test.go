package upsert

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/qdrant/go-client/qdrant"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/snappipe/snappipe/internal/retry"
	"github.com/snappipe/snappipe/pipeline/config"
)

func TestRetryClassification(t *testing.T) {
	for _, tc := range []struct {
		err   error
		retry bool
	}{
		{status.Error(codes.Unavailable, "x"), true},
		{status.Error(codes.DeadlineExceeded, "x"), true},
		{status.Error(codes.Internal, "x"), true},
		{status.Error(codes.ResourceExhausted, "x"), true},
		{status.Error(codes.Aborted, "x"), true},
		{fmt.Errorf("Upsert() failed: %w", status.Error(codes.Unavailable, "x")), true},
		{status.Error(codes.InvalidArgument, "Wrong input: Vector dimension error: expected dim: 768, got 512"), false},
		{status.Error(codes.NotFound, "x"), false},
		{status.Error(codes.Unauthenticated, "x"), false},
		{errors.New("not a status"), false},
	} {
		err := classify(tc.err)
		if retry.IsPermanent(err) == tc.retry || !errors.Is(err, tc.err) {
			t.Errorf("%v: classified %v", tc.err, err)
		}
	}
	if classify(nil) != nil {
		t.Error("nil classified as an error")
	}
	d, ok := retry.WaitOf(classify(&qdrant.QdrantResourceExhaustedError{Reason: "r", RetryAfterS: 2}))
	if !ok || d != 2*time.Second {
		t.Errorf("retry-after: %v %v", ok, d)
	}
}

// Quantization in the config becomes Qdrant's, collection-wide and per
// vector, and a difference against an existing collection is named.
func TestQuantizationConfig(t *testing.T) {
	q := 0.99
	yes := true
	c := &config.Config{Collection: config.CollectionConfig{Name: "C",
		Quantization: &config.QuantizationConfig{Scalar: &config.ScalarQuantization{Type: "int8", Quantile: &q, AlwaysRAM: &yes}},
		Vectors: map[string]*config.VectorConfig{
			"v": {Size: 4, Distance: "Cosine", Quantization: &config.QuantizationConfig{Product: &config.ProductQuantization{Compression: "x16"}}},
			"w": {Size: 4, Distance: "Dot"},
		}}}
	req := CreateRequest(c)
	s := req.GetQuantizationConfig().GetScalar()
	if s == nil || s.GetType() != qdrant.QuantizationType_Int8 || s.GetQuantile() != float32(0.99) || !s.GetAlwaysRam() {
		t.Fatalf("collection quantization %v", req.GetQuantizationConfig())
	}
	vp := req.GetVectorsConfig().GetParamsMap().GetMap()
	if vp["v"].GetQuantizationConfig().GetProduct().GetCompression() != qdrant.CompressionRatio_x16 || vp["w"].GetQuantizationConfig() != nil {
		t.Fatalf("vector quantization %v %v", vp["v"], vp["w"])
	}
	info := &qdrant.CollectionInfo{Config: &qdrant.CollectionConfig{Params: &qdrant.CollectionParams{VectorsConfig: req.GetVectorsConfig()}, QuantizationConfig: req.GetQuantizationConfig()}}
	if d := DiffCollection(c, info); len(d) != 0 {
		t.Fatalf("same config differs: %v", d)
	}
	c.Collection.Quantization = &config.QuantizationConfig{Binary: &config.BinaryQuantization{}}
	if d := DiffCollection(c, info); len(d) != 1 || d[0] != "quantization scalar int8 quantile 0.99 always_ram true != binary" {
		t.Fatalf("diff %v", d)
	}
}
