package e2e_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/snappipe/snappipe/internal/qdrantemu"
	"github.com/snappipe/snappipe/pipeline"
	"github.com/snappipe/snappipe/stages/all"
	"google.golang.org/grpc/codes"
)

func TestResumeAfterCancel(t *testing.T) {
	e := newEnv(t, qdrantemu.Options{Faults: qdrantemu.Faults{UpsertDelay: 20 * time.Millisecond}})
	data := filepath.Join(repoRoot(t), "testdata", "sample")
	dir := t.TempDir()
	cfg := e.load(t, dir, sampleYAML(data, ""))
	// Interrupt once a few batches have reached the server (not after a
	// fixed time: a loaded machine may not have sent any by then).
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		for e.srv.Stats().UpsertCalls < 5 && ctx.Err() == nil {
			time.Sleep(2 * time.Millisecond)
		}
		cancel()
	}()
	_, err := pipeline.Apply(ctx, cfg, all.Registry(), pipeline.ApplyOptions{StateDir: filepath.Join(dir, ".snappipe")})
	cancel()
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("first run: %v", err)
	}
	sf, ok, err := pipeline.OpenState(filepath.Join(dir, ".snappipe", "e2e.state.json"))
	if err != nil || !ok {
		t.Fatalf("state: %v %v", ok, err)
	}
	acked := sf.Snapshot().Upsert.AckedCount()
	if acked == 0 || acked >= 32 {
		t.Fatalf("first run acknowledged %d of 32 batches; the test needs a partial run", acked)
	}
	e.srv.SetFaults(qdrantemu.Faults{})
	sum, err := e.apply(t, cfg, pipeline.ApplyOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if !sum.Resumed {
		t.Fatal("second run did not resume")
	}
	// Only unacknowledged batches were sent again. (Counted on the client:
	// requests of the first run still in flight when it was cancelled may
	// reach the server later and would blur a server-side count.)
	if sum.PointsWritten != 2000-acked*64 || sum.BatchesSent != 32-acked {
		t.Fatalf("resume wrote %d points in %d batches; %d points in %d batches were unacknowledged", sum.PointsWritten, sum.BatchesSent, 2000-acked*64, 32-acked)
	}
	img := npyRows(t, filepath.Join(data, "img_emb_0000.npy"))
	txt := npyRows(t, filepath.Join(data, "text_emb_0000.npy"))
	meta := parquetRows(t, filepath.Join(data, "metadata_0000.parquet"))
	checkPoints(t, e, "LAION-5B", 2000, img, txt, meta)
	checkSnapshot(t, e, sum, "LAION-5B")
}

func TestRetriesAndFailFast(t *testing.T) {
	data := filepath.Join(repoRoot(t), "testdata", "sample")
	t.Run("transient errors are retried", func(t *testing.T) {
		e := newEnv(t, qdrantemu.Options{Faults: qdrantemu.Faults{FailUpserts: 5, FailCode: codes.Unavailable}})
		cfg := e.load(t, t.TempDir(), sampleYAML(data, ""))
		sum, err := e.apply(t, cfg, pipeline.ApplyOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if e.count(t, "LAION-5B") != 2000 || sum.PointsWritten != 2000 {
			t.Fatalf("count %d", e.count(t, "LAION-5B"))
		}
	})
	t.Run("retry-after is honoured", func(t *testing.T) {
		e := newEnv(t, qdrantemu.Options{Faults: qdrantemu.Faults{FailUpserts: 1, FailCode: codes.ResourceExhausted, RetryAfter: 1}})
		cfg := e.load(t, t.TempDir(), sampleYAML(data, ""))
		start := time.Now()
		if _, err := e.apply(t, cfg, pipeline.ApplyOptions{}); err != nil {
			t.Fatal(err)
		}
		if time.Since(start) < time.Second {
			t.Fatal("finished before retry-after elapsed")
		}
	})
	t.Run("bounded attempts then fail with state saved", func(t *testing.T) {
		e := newEnv(t, qdrantemu.Options{Faults: qdrantemu.Faults{FailUpserts: 1000, FailCode: codes.Internal}})
		dir := t.TempDir()
		cfg := e.load(t, dir, strings.Replace(sampleYAML(data, ""), "parallel: 3 }", "parallel: 3, max_attempts: 3 }", 1))
		_, err := e.apply(t, cfg, pipeline.ApplyOptions{})
		if err == nil || !strings.Contains(err.Error(), "giving up after 3 attempts") {
			t.Fatalf("err = %v", err)
		}
		if _, err := os.Stat(filepath.Join(dir, ".snappipe", "e2e.state.json")); err != nil {
			t.Fatal("state not saved")
		}
		e.srv.SetFaults(qdrantemu.Faults{})
		if _, err := e.apply(t, cfg, pipeline.ApplyOptions{}); err != nil {
			t.Fatal(err)
		}
		if e.count(t, "LAION-5B") != 2000 {
			t.Fatal("resume incomplete")
		}
	})
}

func TestConfigChangeRefusesResume(t *testing.T) {
	e := newEnv(t, qdrantemu.Options{})
	data := filepath.Join(repoRoot(t), "testdata", "sample")
	dir := t.TempDir()
	cfg := e.load(t, dir, sampleYAML(data, ""))
	if _, err := e.apply(t, cfg, pipeline.ApplyOptions{}); err != nil {
		t.Fatal(err)
	}
	cfg2 := e.load(t, dir, strings.Replace(sampleYAML(data, ""), "shard_number: 2", "shard_number: 3", 1))
	_, err := e.apply(t, cfg2, pipeline.ApplyOptions{})
	if !errors.Is(err, pipeline.ErrConfigChanged) || !strings.Contains(err.Error(), "collection.shard_number") {
		t.Fatalf("err = %v", err)
	}
	// --full-refresh over a collection with points needs confirmation.
	_, err = e.apply(t, cfg2, pipeline.ApplyOptions{FullRefresh: true})
	if err == nil || !strings.Contains(err.Error(), "confirm with -y") {
		t.Fatalf("full refresh without confirmation: %v", err)
	}
	_, err = e.apply(t, cfg2, pipeline.ApplyOptions{FullRefresh: true, ConfirmRecreate: func(string, uint64) error { return nil }})
	if err != nil {
		t.Fatal(err)
	}
	if e.count(t, "LAION-5B") != 2000 {
		t.Fatal("points after full refresh")
	}
}
