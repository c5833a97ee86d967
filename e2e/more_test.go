package e2e_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/snappipe/snappipe/internal/qdrantemu"
	"github.com/snappipe/snappipe/pipeline"
	"github.com/snappipe/snappipe/pipeline/config"
	"github.com/snappipe/snappipe/stages/fetch"
)

func TestLockKeepsRunsApart(t *testing.T) {
	dir := t.TempDir()
	l1, err := pipeline.Lock(context.Background(), dir, "p", 0)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	_, err = pipeline.Lock(context.Background(), dir, "p", 300*time.Millisecond)
	if err == nil || !strings.Contains(err.Error(), "another snappipe run holds the lock") || time.Since(start) < 300*time.Millisecond {
		t.Fatalf("second lock: %v after %s", err, time.Since(start))
	}
	l1.Unlock()
	l2, err := pipeline.Lock(context.Background(), dir, "p", 0)
	if err != nil {
		t.Fatalf("lock after release: %v", err)
	}
	l2.Unlock()
	// --lock-timeout 0 always makes one attempt: a free lock is taken
	// however late the attempt starts (it once ran under a 1 ms deadline).
	for range 200 {
		l, err := pipeline.Lock(context.Background(), dir, "p", 0)
		if err != nil {
			t.Fatalf("free lock refused with timeout 0: %v", err)
		}
		l.Unlock()
	}
}

func TestSnapshotTimeoutPollsInsteadOfRecreating(t *testing.T) {
	e := newEnv(t, qdrantemu.Options{Faults: qdrantemu.Faults{SnapshotDelay: 1500 * time.Millisecond}})
	data := filepath.Join(repoRoot(t), "testdata", "sample")
	cfg := e.load(t, t.TempDir(), strings.Replace(sampleYAML(data, ""), "snapshot:\n  destination: out\n", "snapshot:\n  destination: out\n  timeout: 300ms\n", 1))
	// The first call times out; snappipe then polls the list (for up to
	// the timeout again), so give the poll room by retrying apply.
	sum, err := e.apply(t, cfg, pipeline.ApplyOptions{})
	if err != nil {
		if !strings.Contains(err.Error(), "did not appear") {
			t.Fatal(err)
		}
		time.Sleep(1500 * time.Millisecond)
		sum, err = e.apply(t, cfg, pipeline.ApplyOptions{})
		if err != nil {
			t.Fatal(err)
		}
	}
	if e.srv.Stats().SnapshotsCreated != 1 {
		t.Fatalf("%d snapshots created, want 1", e.srv.Stats().SnapshotsCreated)
	}
	checkSnapshot(t, e, sum, "LAION-5B")
}

func TestBulkModeRestoresHNSW(t *testing.T) {
	e := newEnv(t, qdrantemu.Options{})
	data := filepath.Join(repoRoot(t), "testdata", "sample")
	dir := t.TempDir()
	cfg := e.load(t, dir, strings.Replace(sampleYAML(data, ""), "upload: { batch_size: 64, parallel: 3 }", "upload: { batch_size: 64, parallel: 3, bulk: true }", 1)+"")
	cfg.Collection.HNSW = nil
	if _, err := e.apply(t, cfg, pipeline.ApplyOptions{}); err != nil {
		t.Fatal(err)
	}
	info, _ := e.client.GetCollectionInfo(context.Background(), "LAION-5B")
	if info.GetConfig().GetHnswConfig().GetM() != 16 {
		t.Fatalf("hnsw m after bulk load = %d, want 16 restored", info.GetConfig().GetHnswConfig().GetM())
	}
	st, _ := os.ReadFile(filepath.Join(dir, ".snappipe", "e2e.state.json"))
	if !strings.Contains(string(st), `"bulk_restored":true`) {
		t.Fatalf("state: %s", st)
	}
}

func TestUnsafeSnapshotNamesRefused(t *testing.T) {
	for _, n := range []string{"../x.snapshot", "a/b.snapshot", "..", "", `a\b`} {
		if fetch.SafeName(n) == nil {
			t.Errorf("%q accepted", n)
		}
	}
	if err := fetch.SafeName("LAION-5B-123-2026-01-01-00-00-00.snapshot"); err != nil {
		t.Error(err)
	}
}

func TestHFEndpointMovesHubSources(t *testing.T) {
	t.Setenv("HF_ENDPOINT", "https://hf-mirror.example/")
	cfg, err := config.Load("p.yaml", []byte(`version: 1
name: hf
collection: { name: C, vectors: { a: { size: 4, distance: Dot } } }
sources:
  a: { url: "https://huggingface.co/datasets/x/resolve/main/a.npy" }
  b: { url: "https://example.com/b.npy" }
points: { vectors: { a: a } }
snapshot: { destination: out }
`), t.TempDir(), config.LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Sources["a"].URL != "https://hf-mirror.example/datasets/x/resolve/main/a.npy" || cfg.Sources["b"].URL != "https://example.com/b.npy" {
		t.Fatalf("%v %v", cfg.Sources["a"].URL, cfg.Sources["b"].URL)
	}
}
