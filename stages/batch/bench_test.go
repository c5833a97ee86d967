package batch

import (
	"testing"

	"github.com/snappipe/snappipe/pipeline"
	"github.com/snappipe/snappipe/pipeline/config"
)

// BenchmarkJoin joins 256-row blocks of two 768-d sources and a payload
// into a batch; it reports points/s.
func BenchmarkJoin(b *testing.B) {
	const n, w = 256, 768
	cfg := &config.Config{
		Collection: config.CollectionConfig{Vectors: map[string]*config.VectorConfig{"image": {Size: w}, "text": {Size: w}}},
		Points: config.PointsConfig{Vectors: map[string]*config.VectorSource{"image": {Source: "image"}, "text": {Source: "text"}},
			Payload: &config.PayloadConfig{Source: "meta"}},
	}
	payloads := make([]map[string]any, n)
	for i := range payloads {
		payloads[i] = map[string]any{"caption": "a cat", "width": int64(640)}
	}
	blocks := map[string]*pipeline.RowBlock{
		"image": {N: n, Vectors: map[string][]float32{"": make([]float32, n*w)}},
		"text":  {N: n, Vectors: map[string][]float32{"": make([]float32, n*w)}},
		"meta":  {N: n, Payload: pipeline.PayloadFromRows(payloads)},
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if bt := Join(cfg, blocks, int64(i), int64(i*n), n); bt.N != n {
			b.Fatal(bt.N)
		}
	}
	b.ReportMetric(float64(b.N*n)/b.Elapsed().Seconds(), "points/s")
}
