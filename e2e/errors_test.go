package e2e_test

import (
	"bytes"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/snappipe/snappipe/internal/npy"
	"github.com/snappipe/snappipe/internal/qdrantemu"
	"github.com/snappipe/snappipe/pipeline"
)

// writeNpy writes a C-order <f4 array of rows x width (value = row).
func writeNpy(t *testing.T, path string, rows, width int) {
	t.Helper()
	var b bytes.Buffer
	if err := npy.WriteHeader(&b, "<f4", int64(rows), width); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < rows*width; i++ {
		b.Write([]byte{0, 0, 0x80, 0x3f}) // 1.0
	}
	if err := os.WriteFile(path, b.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestApplyErrors(t *testing.T) {
	data := filepath.Join(repoRoot(t), "testdata", "sample")
	cases := []struct {
		name  string
		setup func(t *testing.T, dir string) (sources, extra string)
		want  string
	}{
		{"limit above rows", func(t *testing.T, dir string) (string, string) {
			return fmt.Sprintf("  image: { path: %s/img_emb_0000.npy }\n  text: { path: %s/text_emb_0000.npy }\n", data, data), "points:\n  limit: 5000\n  vectors: { image: image, text: text }\n"
		}, "sources hold fewer rows than points.limit 5000: image has 2000, text has 2000"},
		{"misaligned", func(t *testing.T, dir string) (string, string) {
			writeNpy(t, filepath.Join(dir, "short.npy"), 1999, 768)
			return fmt.Sprintf("  image: { path: %s/img_emb_0000.npy }\n  text: { path: short.npy }\n", data), "points:\n  vectors: { image: image, text: text }\n"
		}, "sources are not aligned: row counts differ (image 2000, text 1999)"},
		{"wrong width", func(t *testing.T, dir string) (string, string) {
			writeNpy(t, filepath.Join(dir, "narrow.npy"), 2000, 512)
			return fmt.Sprintf("  image: { path: %s/img_emb_0000.npy }\n  text: { path: narrow.npy }\n", data), "points:\n  vectors: { image: image, text: text }\n"
		}, `vector "text": source text (npy v1.0 <f4 C-order shape (2000, 512)) has width 512, collection.vectors.text.size is 768`},
		{"bad npy header", func(t *testing.T, dir string) (string, string) {
			os.WriteFile(filepath.Join(dir, "bad.npy"), []byte("\x93NUMPY\x01\x00\x10\x00{'descr': '<i8'}"), 0o644)
			return fmt.Sprintf("  image: { path: %s/img_emb_0000.npy }\n  text: { path: bad.npy }\n", data), "points:\n  vectors: { image: image, text: text }\n"
		}, "malformed .npy header"},
		{"not npy", func(t *testing.T, dir string) (string, string) {
			os.WriteFile(filepath.Join(dir, "x.npy"), []byte("hello world, not numpy"), 0o644)
			return fmt.Sprintf("  image: { path: %s/img_emb_0000.npy }\n  text: { path: x.npy }\n", data), "points:\n  vectors: { image: image, text: text }\n"
		}, "not a .npy file"},
		{"truncated npy", func(t *testing.T, dir string) (string, string) {
			b, _ := os.ReadFile(filepath.Join(data, "text_emb_0000.npy"))
			os.WriteFile(filepath.Join(dir, "cut.npy"), b[:len(b)/2], 0o644)
			return fmt.Sprintf("  image: { path: %s/img_emb_0000.npy }\n  text: { path: cut.npy }\n", data), "points:\n  vectors: { image: image, text: text }\n"
		}, "file is truncated"},
		{"missing file", func(t *testing.T, dir string) (string, string) {
			return fmt.Sprintf("  image: { path: %s/img_emb_0000.npy }\n  text: { path: nope.npy }\n", data), "points:\n  vectors: { image: image, text: text }\n"
		}, "nope.npy: no such file or directory"},
		{"404 source", func(t *testing.T, dir string) (string, string) {
			srv := httptest.NewServer(http.NotFoundHandler())
			t.Cleanup(srv.Close)
			return fmt.Sprintf("  image: { path: %s/img_emb_0000.npy }\n  text: { url: %s/text_emb_0000.npy }\n", data, srv.URL), "points:\n  vectors: { image: image, text: text }\n"
		}, "404 Not Found"},
		{"unreachable url", func(t *testing.T, dir string) (string, string) {
			srv := httptest.NewServer(http.NotFoundHandler())
			u := srv.URL
			srv.Close()
			return fmt.Sprintf("  image: { path: %s/img_emb_0000.npy }\n  text: { url: %s/text_emb_0000.npy }\n", data, u), "points:\n  vectors: { image: image, text: text }\nupload: { max_attempts: 2 }\n"
		}, "connection refused"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, qdrantemu.Options{})
			dir := t.TempDir()
			sources, extra := tc.setup(t, dir)
			yaml := fmt.Sprintf(`version: 1
name: errs
qdrant: { url: "${QDRANT_URL}", grpc_port: "${QDRANT_GRPC_PORT}" }
collection:
  name: c
  vectors:
    image: { size: 768, distance: Cosine }
    text:  { size: 768, distance: Cosine }
sources:
%s%ssnapshot: { destination: out }
`, sources, extra)
			cfg := e.load(t, dir, yaml)
			_, err := e.apply(t, cfg, pipeline.ApplyOptions{})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error = %v\nwant it to contain %q", err, tc.want)
			}
			if n := e.count(t, "c"); n != 0 {
				t.Fatalf("%d points written despite the error", n)
			}
			if st := e.srv.Stats(); st.UpsertCalls != 0 {
				t.Fatalf("%d upserts sent despite the error", st.UpsertCalls)
			}
		})
	}
}
