package e2e_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/qdrant/go-client/qdrant"
	"github.com/snappipe/snappipe/internal/qdrantemu"
	"github.com/snappipe/snappipe/internal/sample"
	"github.com/snappipe/snappipe/internal/testkit"
	"github.com/snappipe/snappipe/pipeline"
)

func streamYAML(url string) string {
	return fmt.Sprintf(`version: 1
name: streamed
qdrant: { url: "${QDRANT_URL}", grpc_port: "${QDRANT_GRPC_PORT}" }
collection:
  name: S
  on_exists: reuse
  vectors: { image: { size: 16, distance: Cosine } }
sources:
  image: { url: "%s/img_emb_0000.npy" }
points: { vectors: { image: image } }
upload: { batch_size: 64, parallel: 1 }
snapshot: { destination: out }
`, url)
}

// An npy file over HTTP is decoded while it downloads: with the second
// half of the body held back by the server, points are already in the
// collection; the server sends the rest only once it sees them. The run
// ends with every point and the file verified.
func TestDecodeWhileDownloading(t *testing.T) {
	data := t.TempDir()
	if err := sample.Generate(sample.Options{Rows: 4000, Dim: 16, Seed: 9, Out: data}); err != nil {
		t.Fatal(err)
	}
	body, err := os.ReadFile(filepath.Join(data, "img_emb_0000.npy"))
	if err != nil {
		t.Fatal(err)
	}
	e := newEnv(t, qdrantemu.Options{})
	var sawPoints atomic.Int64 // points seen before the second half was sent
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", strconv.Itoa(len(body)))
		half := len(body) / 2
		w.Write(body[:half])
		w.(http.Flusher).Flush()
		// Hold the rest back until points show up (observed progress),
		// giving up after a minute (then the test fails below).
		for end := time.Now().Add(time.Minute); time.Now().Before(end); {
			if n, err := e.client.Count(context.Background(), &qdrant.CountPoints{CollectionName: "S", Exact: qdrant.PtrOf(true)}); err == nil && n > 0 {
				sawPoints.Store(int64(n))
				break
			}
			time.Sleep(20 * time.Millisecond)
		}
		w.Write(body[half:])
	}))
	t.Cleanup(srv.Close)
	sum, err := e.apply(t, e.load(t, t.TempDir(), streamYAML(srv.URL)), pipeline.ApplyOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if sawPoints.Load() == 0 {
		t.Fatal("no point was loaded while half of the file was still held back: the file was not decoded while downloading")
	}
	want := testkit.NpyRows(t, filepath.Join(data, "img_emb_0000.npy"))
	pts := e.scroll(t, "S")
	if len(pts) != 4000 || sum.PointsWritten != 4000 {
		t.Fatalf("%d points, %d written", len(pts), sum.PointsWritten)
	}
	for _, p := range pts {
		if !testkit.EqualF32(testkit.VectorOf(p, "image"), want[p.GetId().GetNum()]) {
			t.Fatalf("point %d differs", p.GetId().GetNum())
		}
	}
	t.Logf("%d points were in the collection before the second half of the file was sent", sawPoints.Load())
}

// A streamed file whose bytes fail verification (the server sends a
// changed byte under the right X-Linked-Etag): the run fails, the rows
// already loaded from it are forgotten by the checkpoint, and the next run
// (server fixed) reloads every row, so the point read from the bad bytes
// is overwritten with the right values.
func TestStreamedChecksumMismatchReplays(t *testing.T) {
	data := t.TempDir()
	if err := sample.Generate(sample.Options{Rows: 3000, Dim: 16, Seed: 10, Out: data}); err != nil {
		t.Fatal(err)
	}
	good, err := os.ReadFile(filepath.Join(data, "img_emb_0000.npy"))
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(good)
	bad := append([]byte(nil), good...)
	const row = 10 // a row in the first batch: loaded before the mismatch shows
	hdr := len(good) - 3000*16*2
	off := hdr + row*16*2
	bad[off], bad[off+1] = 0x00, 0x3c // component 0 of row 10 := float16 1.0
	var broken atomic.Bool
	broken.Store(true)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b := good
		if broken.Load() {
			b = bad
		}
		w.Header().Set("X-Linked-Etag", `"`+hex.EncodeToString(sum[:])+`"`)
		http.ServeContent(w, r, "img_emb_0000.npy", time.Time{}, bytes.NewReader(b))
	}))
	t.Cleanup(srv.Close)
	e := newEnv(t, qdrantemu.Options{})
	dir := t.TempDir()
	cfg := e.load(t, dir, streamYAML(srv.URL))
	_, err = e.apply(t, cfg, pipeline.ApplyOptions{})
	var replay *pipeline.ReplayError
	if err == nil || !errors.As(err, &replay) {
		t.Fatalf("err = %v, want a ReplayError", err)
	}
	if e.count(t, "S") == 0 {
		t.Fatal("nothing was loaded before the mismatch showed: the test does not exercise streaming")
	}
	sf, _, serr := pipeline.OpenState(pipeline.StatePath(filepath.Join(dir, ".snappipe"), "streamed"))
	if serr != nil || sf.Snapshot().Upsert.AckedCount() != 0 || sf.Snapshot().Upsert.Done {
		t.Fatalf("checkpoint after the mismatch: %+v %v", sf.Snapshot().Upsert, serr)
	}
	broken.Store(false)
	if _, err := e.apply(t, cfg, pipeline.ApplyOptions{}); err != nil {
		t.Fatal(err)
	}
	want := testkit.NpyRows(t, filepath.Join(data, "img_emb_0000.npy"))
	pts := e.scroll(t, "S")
	if len(pts) != 3000 {
		t.Fatalf("%d points", len(pts))
	}
	for _, p := range pts {
		if !testkit.EqualF32(testkit.VectorOf(p, "image"), want[p.GetId().GetNum()]) {
			t.Fatalf("point %d keeps values read from the bad bytes", p.GetId().GetNum())
		}
	}
}
