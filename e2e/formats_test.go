package e2e_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/snappipe/snappipe/internal/qdrantemu"
	"github.com/snappipe/snappipe/internal/sample"
	"github.com/snappipe/snappipe/pipeline"
)

// formatVal is the formula scripts/gen_format_fixtures.py wrote with numpy.
func formatVec(kind string, i, dim int) []float32 {
	out := make([]float32, dim)
	for j := range out {
		v := i*31 + j*7
		switch kind {
		case "img":
			out[j] = float32(v%251)/8 - 15
		case "txt":
			out[j] = float32(v%199)/4 - 20
		case "bvecs":
			out[j] = float32(v % 256)
		}
	}
	return out
}

// npz (stored and deflated), fvecs and bvecs files written by numpy load
// exactly, with payload from a paired Parquet, locally and over HTTP, with
// and without a row limit.
func TestNewFormatsEndToEnd(t *testing.T) {
	fx := filepath.Join(repoRoot(t), "testdata", "formats")
	data := t.TempDir()
	if err := sample.Generate(sample.Options{Rows: 300, Dim: 4, Seed: 8, Out: data}); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"emb_stored.npz", "emb_deflated.npz", "emb.fvecs", "emb.bvecs"} {
		b, _ := os.ReadFile(filepath.Join(fx, f))
		os.WriteFile(filepath.Join(data, f), b, 0o644)
	}
	files, url := serveCounting(t, data)
	meta := parquetRows(t, filepath.Join(data, "metadata_0000.parquet"))
	for _, tc := range []struct {
		name, loc string
		limit     int
	}{
		{"local", "path: " + data, 0},
		{"http", "url: " + url, 0},
		{"http-limit", "url: " + url, 70},
		{"local-limit", "path: " + data, 70},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, qdrantemu.Options{})
			src := func(f string) string {
				k, v, _ := strings.Cut(tc.loc, ": ")
				return fmt.Sprintf(`{ %s: "%s/%s"`, k, v, f)
			}
			limit := ""
			if tc.limit > 0 {
				limit = fmt.Sprintf("  limit: %d\n", tc.limit)
			}
			cfg := e.load(t, t.TempDir(), fmt.Sprintf(`version: 1
name: formats
qdrant: { url: "${QDRANT_URL}", grpc_port: "${QDRANT_GRPC_PORT}" }
collection:
  name: F
  vectors:
    a: { size: 12, distance: Dot }
    b: { size: 12, distance: Dot }
    c: { size: 12, distance: Dot }
    d: { size: 12, distance: Euclid }
sources:
  meta: %s }
  stored: %s, array: img }
  deflated: %s, array: txt }
  fv: %s }
  bv: %s }
points:
%s  vectors: { a: stored, b: deflated, c: fv, d: bv }
  payload: { source: meta }
upload: { batch_size: 32 }
snapshot: { destination: out }
`, src("metadata_0000.parquet"), src("emb_stored.npz"), src("emb_deflated.npz"), src("emb.fvecs"), src("emb.bvecs"), limit))
			before := files.Of("emb.fvecs")
			if _, err := e.apply(t, cfg, pipeline.ApplyOptions{}); err != nil {
				t.Fatal(err)
			}
			n := 300
			if tc.limit > 0 {
				n = tc.limit
			}
			pts := e.scroll(t, "F")
			if len(pts) != n {
				t.Fatalf("%d points, want %d", len(pts), n)
			}
			for i, p := range pts {
				for name, kind := range map[string]string{"a": "img", "b": "txt", "c": "img", "d": "bvecs"} {
					if !equalF32(vectorOf(p, name), formatVec(kind, i, 12)) {
						t.Fatalf("point %d vector %s = %v, want %v", i, name, vectorOf(p, name), formatVec(kind, i, 12))
					}
				}
				if p.GetPayload()["key"].GetStringValue() != meta[i]["key"].GetStringValue() {
					t.Fatalf("point %d payload %v", i, p.GetPayload())
				}
			}
			if tc.name == "http-limit" {
				// fvecs: only the 70 records the limit needs (plus a probe).
				if got := files.Of("emb.fvecs") - before; got > 70*52+4096 {
					t.Fatalf("fetched %d bytes of emb.fvecs for 70 records", got)
				}
			}
		})
	}
}

// A malformed fvecs file fails naming the file and the record, and
// nothing is written.
func TestMalformedFvecsWritesNothing(t *testing.T) {
	fx := filepath.Join(repoRoot(t), "testdata", "formats")
	dir := t.TempDir()
	b, _ := os.ReadFile(filepath.Join(fx, "emb.fvecs"))
	os.WriteFile(filepath.Join(dir, "cut.fvecs"), b[:len(b)-7], 0o644)
	bad := append([]byte(nil), b...)
	bad[40*52] = 13 // record 40's dimension
	os.WriteFile(filepath.Join(dir, "bad.fvecs"), bad, 0o644)
	for file, msg := range map[string]string{
		"cut.fvecs": "cut.fvecs): fvecs: size 15593 is not a whole number of 52-byte records (dimension 12): record 299 is cut short",
		"bad.fvecs": "bad.fvecs): fvecs: record 40 has dimension 13, record 0 has 12",
	} {
		t.Run(file, func(t *testing.T) {
			e := newEnv(t, qdrantemu.Options{})
			cfg := e.load(t, dir, fmt.Sprintf(`version: 1
name: bad-%s
qdrant: { url: "${QDRANT_URL}", grpc_port: "${QDRANT_GRPC_PORT}" }
collection:
  name: B
  vectors: { v: { size: 12, distance: Dot } }
sources:
  v: { path: %s }
points: { vectors: { v: v } }
upload: { batch_size: 1000 }
snapshot: { destination: out }
`, strings.TrimSuffix(file, ".fvecs"), file))
			_, err := e.apply(t, cfg, pipeline.ApplyOptions{})
			if err == nil || !strings.Contains(err.Error(), msg) {
				t.Fatalf("err = %v, want %q", err, msg)
			}
			if n := e.srv.Stats().UpsertPoints; n != 0 {
				t.Fatalf("%d points were sent", n)
			}
		})
	}
}
