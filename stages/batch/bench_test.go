package batch

import (
	"testing"

	"github.com/qdrant/go-client/qdrant"
	"github.com/snappipe/snappipe/pipeline"
	"github.com/snappipe/snappipe/pipeline/config"
)

// BenchmarkBuildPoints joins 256-row blocks of two 768-d sources and a
// 15-column payload into points; it reports points/s.
func BenchmarkBuildPoints(b *testing.B) {
	const n, w = 256, 768
	cfg := &config.Config{
		Collection: config.CollectionConfig{Vectors: map[string]*config.VectorConfig{"image": {Size: w}, "text": {Size: w}}},
		Points: config.PointsConfig{Vectors: map[string]*config.VectorSource{"image": {Source: "image"}, "text": {Source: "text"}},
			Payload: &config.PayloadConfig{Source: "meta"}},
	}
	payloads := make([]map[string]*qdrant.Value, n)
	for i := range payloads {
		payloads[i] = map[string]*qdrant.Value{"caption": qdrant.NewValueString("a cat"), "width": qdrant.NewValueInt(640)}
	}
	blocks := map[string]*pipeline.RowBlock{
		"image": {N: n, Vectors: map[string][]float32{"": make([]float32, n*w)}},
		"text":  {N: n, Vectors: map[string][]float32{"": make([]float32, n*w)}},
		"meta":  {N: n, Payloads: payloads},
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if pts := BuildPoints(cfg, blocks, int64(i*n), n); len(pts) != n {
			b.Fatal(len(pts))
		}
	}
	b.ReportMetric(float64(b.N*n)/b.Elapsed().Seconds(), "points/s")
}
