package e2e_test

// Tests that pin behaviours a mutation audit found undefended: each names
// the product line it protects.

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/qdrant/go-client/qdrant"
	"github.com/snappipe/snappipe/internal/qdrantemu"
	"github.com/snappipe/snappipe/internal/sample"
	"github.com/snappipe/snappipe/internal/testkit"
	"github.com/snappipe/snappipe/pipeline"
	"google.golang.org/grpc/codes"
)

func yes(string, uint64) error { return nil }

// on_exists: recreate drops the old collection: its config is replaced and
// points beyond the new row set are gone (stages/upsert DeleteCollection).
func TestRecreateReplacesTheCollection(t *testing.T) {
	e := newEnv(t, qdrantemu.Options{})
	ctx := context.Background()
	// An old collection with another shard_number and 300 points (ids 0..299).
	err := e.client.CreateCollection(ctx, &qdrant.CreateCollection{CollectionName: "LAION-5B", ShardNumber: qdrant.PtrOf(uint32(1)),
		VectorsConfig: qdrant.NewVectorsConfigMap(map[string]*qdrant.VectorParams{
			"image": {Size: 768, Distance: qdrant.Distance_Cosine}, "text": {Size: 768, Distance: qdrant.Distance_Cosine}})})
	if err != nil {
		t.Fatal(err)
	}
	var pts []*qdrant.PointStruct
	for i := range 300 {
		pts = append(pts, &qdrant.PointStruct{Id: qdrant.NewIDNum(uint64(i)), Payload: qdrant.NewValueMap(map[string]any{"stale": true}),
			Vectors: qdrant.NewVectorsMap(map[string]*qdrant.Vector{"image": qdrant.NewVectorDense(make([]float32, 768)), "text": qdrant.NewVectorDense(make([]float32, 768))})})
	}
	if _, err := e.client.Upsert(ctx, &qdrant.UpsertPoints{CollectionName: "LAION-5B", Wait: qdrant.PtrOf(true), Points: pts}); err != nil {
		t.Fatal(err)
	}
	data := filepath.Join(repoRoot(t), "testdata", "sample")
	cfg := e.load(t, t.TempDir(), sampleYAML(data, "")+"")
	lim := int64(200)
	cfg.Points.Limit = &lim
	// Without confirmation a collection holding points is kept.
	if _, err := e.apply(t, cfg, pipeline.ApplyOptions{}); err == nil || !strings.Contains(err.Error(), "refusing to recreate") {
		t.Fatalf("recreate without confirmation: %v", err)
	}
	if e.count(t, "LAION-5B") != 300 {
		t.Fatal("the collection changed without confirmation")
	}
	if _, err := e.apply(t, cfg, pipeline.ApplyOptions{ConfirmRecreate: yes}); err != nil {
		t.Fatal(err)
	}
	if n := e.count(t, "LAION-5B"); n != 200 {
		t.Fatalf("after recreate the collection holds %d points, want the 200 new ones", n)
	}
	info, err := e.client.GetCollectionInfo(ctx, "LAION-5B")
	if err != nil {
		t.Fatal(err)
	}
	if got := info.GetConfig().GetParams().GetShardNumber(); got != 2 {
		t.Fatalf("shard_number %d after recreate, want 2 from the config", got)
	}
	for _, p := range e.scroll(t, "LAION-5B") {
		if _, stale := p.GetPayload()["stale"]; stale {
			t.Fatalf("point %v kept the old payload", p.GetId())
		}
	}
	if d := e.srv.OpsOf("delete"); len(d) != 1 {
		t.Fatalf("%d deletes, want 1", len(d))
	}
	// --full-refresh recreates too, whatever on_exists says.
	cfg.Collection.OnExists = "reuse"
	lim = 100
	if _, err := e.apply(t, cfg, pipeline.ApplyOptions{FullRefresh: true, ConfirmRecreate: yes}); err != nil {
		t.Fatal(err)
	}
	if n := e.count(t, "LAION-5B"); n != 100 {
		t.Fatalf("after --full-refresh the collection holds %d points, want 100", n)
	}
	if d := e.srv.OpsOf("delete"); len(d) != 2 {
		t.Fatalf("%d deletes after --full-refresh, want 2", len(d))
	}
}

// The fetch stage checks the snapshot's SHA-256 against the server's
// checksum: corrupt bytes are refused, fetched again, never kept.
func TestFetchRefusesCorruptSnapshots(t *testing.T) {
	data := filepath.Join(repoRoot(t), "testdata", "sample")
	t.Run("corrupt once, then good", func(t *testing.T) {
		e := newEnv(t, qdrantemu.Options{Faults: qdrantemu.Faults{CorruptDownloads: 1}})
		cfg := e.load(t, t.TempDir(), sampleYAML(data, ""))
		sum, err := e.apply(t, cfg, pipeline.ApplyOptions{})
		if err != nil {
			t.Fatal(err)
		}
		checkSnapshot(t, e, sum, "LAION-5B") // file SHA-256 = listed checksum
		if n := len(e.srv.OpsOf("download")); n != 2 {
			t.Fatalf("%d downloads, want 2 (the corrupt one refused and fetched again)", n)
		}
	})
	t.Run("always corrupt", func(t *testing.T) {
		e := newEnv(t, qdrantemu.Options{Faults: qdrantemu.Faults{CorruptDownloads: 1000}})
		dir := t.TempDir()
		cfg := e.load(t, dir, strings.Replace(sampleYAML(data, ""), "parallel: 3 }", "parallel: 3, max_attempts: 3 }", 1))
		_, err := e.apply(t, cfg, pipeline.ApplyOptions{})
		if err == nil || !strings.Contains(err.Error(), "checksum mismatch") {
			t.Fatalf("err = %v", err)
		}
		if n := len(e.srv.OpsOf("download")); n != 3 {
			t.Fatalf("%d downloads, want 3 attempts", n)
		}
		ents, _ := os.ReadDir(filepath.Join(dir, "out"))
		for _, en := range ents {
			t.Errorf("file kept after a checksum mismatch: %s", en.Name())
		}
	})
}

// Upserts are sent with wait=true: when apply returns every point is
// applied, even on a server that applies wait=false writes later.
func TestUpsertsWaitUntilApplied(t *testing.T) {
	e := newEnv(t, qdrantemu.Options{Faults: qdrantemu.Faults{AsyncApplyDelay: time.Hour}})
	data := filepath.Join(repoRoot(t), "testdata", "sample")
	cfg := e.load(t, t.TempDir(), sampleYAML(data, ""))
	sum, err := e.apply(t, cfg, pipeline.ApplyOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if n := e.count(t, "LAION-5B"); n != 2000 {
		t.Fatalf("right after apply the collection holds %d of 2000 points", n)
	}
	for _, op := range e.srv.OpsOf("upsert") {
		if !op.Wait {
			t.Fatalf("an upsert was sent with wait=false: %+v", op)
		}
	}
	// The snapshot holds them all: recover it and count.
	e2 := newEnv(t, qdrantemu.Options{})
	recoverInto(t, e2, sum.SnapshotPath, "LAION-5B")
	if n := e2.count(t, "LAION-5B"); n != 2000 {
		t.Fatalf("the snapshot holds %d of 2000 points", n)
	}
}

// recoverInto uploads a snapshot file into an emulator as collection name.
func recoverInto(t *testing.T, e *env, path, name string) {
	t.Helper()
	testkit.RecoverSnapshot(t, e.srv.URL(), "", name, path)
}

// A ResourceExhausted answer's retry-after is honoured: observed at the
// server, the retried request comes at least that long after the refusal.
func TestRetryAfterObservedAtServer(t *testing.T) {
	e := newEnv(t, qdrantemu.Options{Faults: qdrantemu.Faults{FailUpserts: 1, FailCode: codes.ResourceExhausted, RetryAfter: 1}})
	data := filepath.Join(repoRoot(t), "testdata", "sample")
	cfg := e.load(t, t.TempDir(), strings.Replace(sampleYAML(data, ""), "parallel: 3 }", "parallel: 1 }", 1))
	if _, err := e.apply(t, cfg, pipeline.ApplyOptions{}); err != nil {
		t.Fatal(err)
	}
	ups := e.srv.OpsOf("upsert")
	if len(ups) < 2 || ups[0].Code != codes.ResourceExhausted || ups[1].Code != codes.OK {
		t.Fatalf("upserts: %+v", ups[:min(len(ups), 3)])
	}
	// One worker: the second request is the retry of the first.
	if gap := ups[1].At.Sub(ups[0].At); gap < time.Second {
		t.Fatalf("retried %s after a refusal with retry-after: 1", gap)
	}
}

// Bulk mode loads with hnsw m=0 and restores the configured m afterwards.
func TestBulkModeLoadsWithM0(t *testing.T) {
	e := newEnv(t, qdrantemu.Options{})
	data := filepath.Join(repoRoot(t), "testdata", "sample")
	y := strings.Replace(sampleYAML(data, ""), "upload: { batch_size: 64, parallel: 3 }", "upload: { batch_size: 64, parallel: 3, bulk: true }", 1)
	y = strings.Replace(y, "  shard_number: 2\n", "  shard_number: 2\n  hnsw: { m: 24 }\n", 1)
	cfg := e.load(t, t.TempDir(), y)
	if _, err := e.apply(t, cfg, pipeline.ApplyOptions{}); err != nil {
		t.Fatal(err)
	}
	var seq []string
	for _, op := range e.srv.Ops() {
		switch op.Kind {
		case "create", "update":
			seq = append(seq, fmt.Sprintf("%s m=%d", op.Kind, op.HNSWM))
		case "upsert":
			if op.HNSWM != 0 {
				t.Fatalf("upsert with hnsw m=%d during a bulk load", op.HNSWM)
			}
			if seq[len(seq)-1] != "upsert" {
				seq = append(seq, "upsert")
			}
		}
	}
	if got := strings.Join(seq, ", "); got != "create m=24, update m=0, upsert, update m=24" {
		t.Fatalf("collection history: %s", got)
	}
}

// A finished download is taken from the cache: a later run (here a
// --full-refresh) fetches no byte of it again.
func TestFinishedDownloadsAreNotFetchedAgain(t *testing.T) {
	data := t.TempDir()
	if err := sample.Generate(sample.Options{Rows: 500, Dim: 16, Seed: 3, Out: data}); err != nil {
		t.Fatal(err)
	}
	files, url := serveCounting(t, data)
	e := newEnv(t, qdrantemu.Options{})
	cfg := e.load(t, t.TempDir(), fmt.Sprintf(`version: 1
name: cached
qdrant: { url: "${QDRANT_URL}", grpc_port: "${QDRANT_GRPC_PORT}" }
collection:
  name: C
  on_exists: recreate
  vectors: { image: { size: 16, distance: Cosine } }
sources:
  metadata: { url: "%[1]s/metadata_0000.parquet" }
  image:    { url: "%[1]s/img_emb_0000.npy" }
points:
  vectors: { image: image }
  payload: { source: metadata }
snapshot: { destination: out }
`, url))
	if _, err := e.apply(t, cfg, pipeline.ApplyOptions{}); err != nil {
		t.Fatal(err)
	}
	files.Quiet()
	first := files.Total()
	if first == 0 {
		t.Fatal("nothing was downloaded")
	}
	sum, err := e.apply(t, cfg, pipeline.ApplyOptions{FullRefresh: true, ConfirmRecreate: yes})
	if err != nil {
		t.Fatal(err)
	}
	if got := files.Total() - first; got != 0 {
		t.Fatalf("the second run fetched %d source bytes again", got)
	}
	if sum.PointsWritten != 500 || e.count(t, "C") != 500 {
		t.Fatalf("second run wrote %d points", sum.PointsWritten)
	}
}

// HF_TOKEN goes to the hub and appears in no log line, state file, summary
// or error; the state file is private (0600, in a 0700 directory).
func TestHFTokenStaysOutAndStateIsPrivate(t *testing.T) {
	const token = "hf_SeCrEt_t0ken_value"
	t.Setenv("HF_TOKEN", token)
	data := t.TempDir()
	if err := sample.Generate(sample.Options{Rows: 300, Dim: 8, Seed: 4, Out: data}); err != nil {
		t.Fatal(err)
	}
	files, url := serveCounting(t, data)
	e := newEnv(t, qdrantemu.Options{})
	dir := t.TempDir()
	yaml := fmt.Sprintf(`version: 1
name: tok
qdrant: { url: "${QDRANT_URL}", grpc_port: "${QDRANT_GRPC_PORT}" }
collection:
  name: T
  vectors: { image: { size: 8, distance: Cosine } }
sources:
  metadata: { url: "%[1]s/resolve/main/metadata_0000.parquet" }
  image:    { url: "%[1]s/resolve/main/img_emb_0000.npy" }
points:
  vectors: { image: image }
  payload: { source: metadata }
snapshot: { destination: out }
`, url)
	cfg := e.load(t, dir, yaml)
	var logs strings.Builder
	log := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	sum, err := e.apply(t, cfg, pipeline.ApplyOptions{Log: log})
	if err != nil {
		t.Fatal(err)
	}
	if auth := files.Auth(); len(auth) == 0 || auth[0] != "Bearer "+token {
		t.Fatalf("the hub did not get the token: %q", auth)
	}
	js, _ := json.Marshal(sum)
	stateDir := filepath.Join(dir, ".snappipe")
	state, err := os.ReadFile(filepath.Join(stateDir, "tok.state.json"))
	if err != nil {
		t.Fatal(err)
	}
	for what, text := range map[string]string{"log": logs.String(), "summary": string(js), "state": string(state)} {
		if strings.Contains(text, token) {
			t.Errorf("the %s contains HF_TOKEN", what)
		}
	}
	if logs.Len() == 0 {
		t.Fatal("nothing was logged: the log check proves nothing")
	}
	fi, _ := os.Stat(filepath.Join(stateDir, "tok.state.json"))
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("state file mode %v, want 0600", fi.Mode().Perm())
	}
	di, _ := os.Stat(stateDir)
	if di.Mode().Perm() != 0o700 {
		t.Errorf("state directory mode %v, want 0700", di.Mode().Perm())
	}
	// An error about a missing hub file does not show the token either.
	cfg2 := e.load(t, t.TempDir(), strings.Replace(yaml, "img_emb_0000.npy", "no_such.npy", 1))
	_, err = e.apply(t, cfg2, pipeline.ApplyOptions{Log: log})
	if err == nil || strings.Contains(err.Error(), token) || strings.Contains(logs.String(), token) {
		t.Fatalf("missing file: %v", err)
	}
}

// Source URL credentials (userinfo, secret query parameters) are never
// stored: the state file and the config hash use the redacted URL, so a
// rotated token resumes the same checkpoint and finds the same download.
func TestSourceURLSecretsNotStored(t *testing.T) {
	data := t.TempDir()
	if err := sample.Generate(sample.Options{Rows: 300, Dim: 8, Seed: 6, Out: data}); err != nil {
		t.Fatal(err)
	}
	files, url := serveCounting(t, data)
	withUser := strings.Replace(url, "http://", "http://alice:pa55word@", 1)
	e := newEnv(t, qdrantemu.Options{})
	dir := t.TempDir()
	yaml := func(token string) string {
		return fmt.Sprintf(`version: 1
name: secrets
qdrant: { url: "${QDRANT_URL}", grpc_port: "${QDRANT_GRPC_PORT}" }
collection:
  name: S
  vectors: { image: { size: 8, distance: Cosine } }
sources:
  metadata: { url: "%[1]s/metadata_0000.parquet?token=%[2]s&rev=main" }
  image:    { url: "%[1]s/img_emb_0000.npy?X-Amz-Signature=%[2]s&X-Amz-Credential=AKIA%[2]s" }
points:
  vectors: { image: image }
  payload: { source: metadata }
snapshot: { destination: out }
`, withUser, token)
	}
	if _, err := e.apply(t, e.load(t, dir, yaml("tok3n-one")), pipeline.ApplyOptions{}); err != nil {
		t.Fatal(err)
	}
	state, err := os.ReadFile(filepath.Join(dir, ".snappipe", "secrets.state.json"))
	if err != nil {
		t.Fatal(err)
	}
	for _, secret := range []string{"pa55word", "alice", "tok3n-one"} {
		if strings.Contains(string(state), secret) {
			t.Errorf("the state file holds %q", secret)
		}
	}
	if !strings.Contains(string(state), "REDACTED") || !strings.Contains(string(state), "rev=main") {
		t.Errorf("state URLs are not the redacted ones:\n%s", state)
	}
	// A new token: same checkpoint (nothing changed that matters), the
	// finished downloads are found, no byte fetched again.
	files.Quiet()
	before := files.Total()
	sum, err := e.apply(t, e.load(t, dir, yaml("tok3n-two")), pipeline.ApplyOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if !sum.Resumed || files.Total() != before {
		t.Fatalf("rotated token: resumed %v, %d bytes fetched again", sum.Resumed, files.Total()-before)
	}
}
