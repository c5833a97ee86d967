package e2e_test

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/snappipe/snappipe/internal/qdrantemu"
	"github.com/snappipe/snappipe/internal/sample"
	"github.com/snappipe/snappipe/internal/testkit"
	"github.com/snappipe/snappipe/pipeline"
	"github.com/snappipe/snappipe/pipeline/config"
	"github.com/snappipe/snappipe/stages/all"
)

type countingFiles = testkit.Files

func serveCounting(t *testing.T, dir string) (*countingFiles, string) {
	return testkit.ServeFiles(t, dir)
}

func TestLimitFetchesOnlyNeededBytes(t *testing.T) {
	data := t.TempDir()
	if err := sample.Generate(sample.Options{Rows: 200000, Dim: 32, Seed: 5, Out: data}); err != nil {
		t.Fatal(err)
	}
	files, url := serveCounting(t, data)
	t.Setenv("HF_TOKEN", "hf_secret_token")
	e := newEnv(t, qdrantemu.Options{})
	dir := t.TempDir()
	yaml := fmt.Sprintf(`version: 1
name: limited
qdrant: { url: "${QDRANT_URL}", grpc_port: "${QDRANT_GRPC_PORT}" }
collection:
  name: L
  on_exists: recreate
  vectors:
    image: { size: 32, distance: Cosine }
    text:  { size: 32, distance: Cosine }
sources:
  metadata: { url: "%[1]s/resolve/main/metadata_0000.parquet" }
  image:    { url: "%[1]s/resolve/main/img_emb_0000.npy" }
  text:     { url: "%[1]s/resolve/main/text_emb_0000.npy" }
points:
  limit: 1000
  vectors: { image: image, text: text }
  payload: { source: metadata }
snapshot: { destination: out }
`, url)
	cfg := e.load(t, dir, yaml)
	sum, err := e.apply(t, cfg, pipeline.ApplyOptions{})
	if err != nil {
		t.Fatal(err)
	}
	img := npyRows(t, filepath.Join(data, "img_emb_0000.npy"))
	txt := npyRows(t, filepath.Join(data, "text_emb_0000.npy"))
	meta := parquetRows(t, filepath.Join(data, "metadata_0000.parquet"))
	checkPoints(t, e, "L", 1000, img[:1000], txt[:1000], meta[:1000])
	var whole int64
	for _, n := range []string{"img_emb_0000.npy", "text_emb_0000.npy", "metadata_0000.parquet"} {
		st, _ := os.Stat(filepath.Join(data, n))
		whole += st.Size()
	}
	served := files.Total()
	npyNeed := int64(2 * (128 + 1000*64))
	t.Logf("limit 1000: server sent %d bytes of %d (npy prefixes %d; per file %v); summary says %d fetched from sources", served, whole, npyNeed, files.Sent(), sum.BytesFetched-sum.SnapshotSize)
	// The npy prefixes exactly (plus a 4 KiB header probe each), and the
	// Parquet footer plus the first pages of each column: here the first
	// pages hold a few thousand rows, well under a fifth of the file.
	pqSize := whole - 2*(128+200000*64)
	for _, npyFile := range []string{"img_emb_0000.npy", "text_emb_0000.npy"} {
		if n := files.Of(npyFile); n == 0 || n > 128+1000*64+4096 {
			t.Fatalf("fetched %d bytes of %s for 1000 rows", n, npyFile)
		}
	}
	if n := files.Of("metadata_0000.parquet"); n == 0 || n > pqSize/5 {
		t.Fatalf("fetched %d bytes of the Parquet file for 1000 rows (files total %d)", n, whole)
	}
	if sum.BytesFetched-sum.SnapshotSize != served {
		t.Fatalf("summary counts %d source bytes, server sent %d", sum.BytesFetched-sum.SnapshotSize, served)
	}
	for _, a := range files.Auth() {
		if a != "Bearer hf_secret_token" {
			t.Fatalf("hub request without the token: %q", a)
		}
	}
	// Without the limit (a fresh run), the prefixes are completed, not
	// fetched again.
	files.Quiet()
	before := files.Total()
	cfg2 := e.load(t, dir, strings.Replace(yaml, "  limit: 1000\n", "", 1))
	if _, err := e.apply(t, cfg2, pipeline.ApplyOptions{FullRefresh: true, ConfirmRecreate: func(string, uint64) error { return nil }}); err != nil {
		t.Fatal(err)
	}
	if n := e.count(t, "L"); n != 200000 {
		t.Fatalf("full run: %d points", n)
	}
	if got := files.Total() - before; got > whole-2*1000*64+4096 {
		t.Fatalf("the full run fetched %d bytes; the prefixes (%d bytes) were fetched again", got, 2*1000*64)
	}
}

func TestPlanUnderLimitSaysWhatIsFetched(t *testing.T) {
	data := t.TempDir()
	if err := sample.Generate(sample.Options{Rows: 5000, Dim: 16, Seed: 5, Out: data}); err != nil {
		t.Fatal(err)
	}
	files, url := serveCounting(t, data)
	e := newEnv(t, qdrantemu.Options{})
	cfg := e.load(t, t.TempDir(), fmt.Sprintf(`version: 1
name: planlimit
qdrant: { url: "${QDRANT_URL}", grpc_port: "${QDRANT_GRPC_PORT}" }
collection:
  name: P
  vectors: { image: { size: 16, distance: Cosine } }
sources:
  metadata: { url: "%[1]s/resolve/main/metadata_0000.parquet" }
  image:    { url: "%[1]s/resolve/main/img_emb_0000.npy" }
points:
  limit: 100
  vectors: { image: image }
  payload: { source: metadata }
snapshot: { destination: out }
`, url))
	rep, err := pipeline.PlanRun(context.Background(), cfg, all.Registry(), "")
	if err != nil {
		t.Fatal(err)
	}
	text := rep.Text()
	for _, want := range []string{
		"fetch the header and first 100 rows of source image by HTTP Range (3328 of 160128 bytes)",
		"read the footer and the pages of the first 100 rows of source metadata in place by HTTP Range",
		"upsert 100 points in 1 batches of 256",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("plan lacks %q:\n%s", want, text)
		}
	}
	if files.Total() > 200<<10 {
		t.Errorf("plan fetched %d bytes", files.Total())
	}
}

func TestPlanAfterLimitedRunHasNothingToDo(t *testing.T) {
	data := t.TempDir()
	if err := sample.Generate(sample.Options{Rows: 3000, Dim: 8, Seed: 9, Out: data}); err != nil {
		t.Fatal(err)
	}
	files, url := serveCounting(t, data)
	e := newEnv(t, qdrantemu.Options{})
	cfg := e.load(t, t.TempDir(), fmt.Sprintf(`version: 1
name: donelimit
qdrant: { url: "${QDRANT_URL}", grpc_port: "${QDRANT_GRPC_PORT}" }
collection:
  name: D
  vectors: { image: { size: 8, distance: Cosine } }
sources:
  metadata: { url: "%[1]s/metadata_0000.parquet" }
  image:    { url: "%[1]s/img_emb_0000.npy" }
points:
  limit: 100
  vectors: { image: image }
  payload: { source: metadata }
snapshot: { destination: out }
`, url))
	if _, err := e.apply(t, cfg, pipeline.ApplyOptions{}); err != nil {
		t.Fatal(err)
	}
	rep, err := pipeline.PlanRun(context.Background(), cfg, all.Registry(), "")
	if err != nil {
		t.Fatal(err)
	}
	if rep.Pending() || len(rep.Problems) > 0 {
		t.Fatalf("after a complete run plan still has work:\n%s", rep.Text())
	}
	// Re-running apply fetches nothing from the sources.
	files.Quiet()
	before := files.Total()
	sum, err := e.apply(t, cfg, pipeline.ApplyOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if files.Total() != before || sum.PointsWritten != 0 {
		t.Fatalf("re-apply fetched %d bytes (image %d, metadata %d), wrote %d points", files.Total()-before, files.Of("img_emb_0000.npy"), files.Of("metadata_0000.parquet"), sum.PointsWritten)
	}
}

// sampleOverHTTP serves a LAION-like sample of the given rows (768-d) by a counting file
// server and loads sampleYAML with url: sources over it.
func sampleOverHTTP(t *testing.T, rows int) (*env, *config.Config, *countingFiles) {
	t.Helper()
	data := t.TempDir()
	if err := sample.Generate(sample.Options{Rows: rows, Dim: 768, Seed: 3, Out: data}); err != nil {
		t.Fatal(err)
	}
	files, url := serveCounting(t, data)
	e := newEnv(t, qdrantemu.Options{})
	cfg := e.load(t, t.TempDir(), sampleYAML(data, ""))
	for _, src := range cfg.Sources {
		src.URL, src.Path = url+"/"+filepath.Base(src.Path), ""
	}
	return e, cfg, files
}

// --full-refresh keeps verified downloads, a limit's prefixes too: a
// higher limit extends the prefix from where it ended (the shorter prefix
// was taken for the whole need, and the decoder failed on it as
// truncated).
func TestHigherLimitExtendsThePrefix(t *testing.T) {
	e, cfg, files := sampleOverHTTP(t, 200)
	lim := int64(100)
	cfg.Points.Limit = &lim
	if _, err := e.apply(t, cfg, pipeline.ApplyOptions{}); err != nil {
		t.Fatal(err)
	}
	lim = 180
	yes := func(string, uint64) error { return nil }
	if sum, err := e.apply(t, cfg, pipeline.ApplyOptions{FullRefresh: true, ConfirmRecreate: yes}); err != nil || sum.PointsWritten != 180 {
		t.Fatalf("limit 180, --full-refresh: %v, %d points", err, sum.PointsWritten)
	}
	if n := e.count(t, cfg.Collection.Name); n != 180 {
		t.Fatalf("collection holds %d points, want 180", n)
	}
	// The 180 rows and a 4 KiB header probe per run: less than the 100-row
	// prefix fetched again plus the 180 rows.
	if got := files.Of("img_emb_0000.npy"); got < 128+180*1536 || got >= (128+100*1536)+(128+180*1536) {
		t.Fatalf("img_emb_0000.npy: %d bytes fetched", got)
	}
}

// A server that ignores Range (python -m http.server: 200 and the whole
// body, no Accept-Ranges): under a limit the .npy prefix and the Parquet
// read in place cannot be had, so the whole files are downloaded, with a
// warning, and the limit's rows load; a later run uses the cached files.
func TestLimitFromAServerWithoutRanges(t *testing.T) {
	data := t.TempDir()
	if err := sample.Generate(sample.Options{Rows: 300, Dim: 768, Seed: 8, Out: data}); err != nil {
		t.Fatal(err)
	}
	var gets atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, err := os.ReadFile(filepath.Join(data, filepath.Base(r.URL.Path)))
		if err != nil {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Length", strconv.Itoa(len(b)))
		if r.Method == http.MethodGet {
			gets.Add(1)
			w.Write(b) // whatever Range asked for
		}
	}))
	t.Cleanup(srv.Close)
	e := newEnv(t, qdrantemu.Options{})
	cfg := e.load(t, t.TempDir(), sampleYAML(data, ""))
	for _, src := range cfg.Sources {
		src.URL, src.Path = srv.URL+"/"+filepath.Base(src.Path), ""
	}
	lim := int64(100)
	cfg.Points.Limit = &lim
	var logs bytes.Buffer
	sum, err := e.apply(t, cfg, pipeline.ApplyOptions{Log: slog.New(slog.NewTextHandler(&logs, nil))})
	if err != nil || sum.PointsWritten != 100 {
		t.Fatalf("apply: %v, %d points\n%s", err, sum.PointsWritten, logs.String())
	}
	if n := strings.Count(logs.String(), "the server ignores HTTP Range requests: downloading the whole file"); n != 3 {
		t.Fatalf("%d warnings, want one per source\n%s", n, logs.String())
	}
	before := gets.Load()
	lim = 150
	if sum, err := e.apply(t, cfg, pipeline.ApplyOptions{}); err != nil || sum.PointsWritten != 150-64 {
		t.Fatalf("limit 150: %v, %d points", err, sum.PointsWritten)
	}
	if n := gets.Load() - before; n != 0 {
		t.Fatalf("the whole files were in the cache, yet %d GETs", n)
	}
	// A shard set needs Range (each shard's header gives its row count):
	// refused, saying what to do.
	for _, src := range cfg.Sources {
		src.URL = strings.Replace(src.URL, "_0000.", "_{0000..0000}.", 1)
	}
	if _, err := e.apply(t, cfg, pipeline.ApplyOptions{StateDir: t.TempDir()}); err == nil || !strings.Contains(err.Error(), "a shard set's row counts are read from each file's header by HTTP Range: serve the files from a server that answers Range requests") {
		t.Fatalf("shard set without Range: %v", err)
	}
}
