package e2e_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/snappipe/snappipe/internal/qdrantemu"
	"github.com/snappipe/snappipe/internal/sample"
	"github.com/snappipe/snappipe/pipeline"
	"github.com/snappipe/snappipe/pipeline/config"
	"github.com/snappipe/snappipe/stages/all"
)

// Shards appended to a loaded set (a range's last index raised, new files
// a glob now matches) are loaded on their own: the earlier shards' points
// stay (ids = global row index, unchanged), none of their bytes is fetched
// again, and a new snapshot holds them all.
func TestAppendedShardsLoadOnlyTheNewRows(t *testing.T) {
	r := newShardRun(t, []int{30, 20, 0, 25, 17})
	// The dump had three shards when it was first loaded.
	grow := r.truncate(t, 3)
	keepOne(r.cfg)
	if _, err := r.e.apply(t, r.cfg, pipeline.ApplyOptions{}); err != nil {
		t.Fatal(err)
	}
	checkPoints(t, r.e, "shards", 50, r.img[:50], r.txt[:50], r.meta[:50])

	grow()
	rep, err := pipeline.PlanRun(context.Background(), r.cfg, all.Registry(), "")
	if err != nil || len(rep.Problems) > 0 || !strings.Contains(rep.Checkpoint, "over fewer rows (3 shards, 50 rows, now 5 shards, 92 rows): the 50 rows it loaded stay, the rest is loaded, and a new snapshot is taken") ||
		!strings.Contains(rep.Text(), "upsert 42 points in 4 batches") || !strings.Contains(rep.Text(), "2 done, 0 partial, 2 pending, 1 empty; 50 of 92 rows loaded") {
		t.Fatalf("plan: %v\n%s", err, rep.Text())
	}
	before := map[string]int64{}
	for k := 0; k < 3; k++ {
		for _, f := range []string{"img_emb_%04d.npy", "metadata_%04d.parquet"} {
			before[fmt.Sprintf(f, k)] = r.files.Of(fmt.Sprintf(f, k))
		}
	}
	sum, err := r.e.apply(t, r.cfg, pipeline.ApplyOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if sum.PointsWritten != 42 || !sum.Resumed {
		t.Fatalf("wrote %d points (resumed %v), want the 42 new rows' only", sum.PointsWritten, sum.Resumed)
	}
	for name, n := range before {
		if got := r.files.Of(name); got != n {
			t.Errorf("%s was fetched again: %d more bytes", name, got-n)
		}
	}
	checkPoints(t, r.e, "shards", 92, r.img, r.txt, r.meta)
	checkSnapshot(t, r.e, sum, "shards")
	if rep, err := pipeline.PlanRun(context.Background(), r.cfg, all.Registry(), ""); err != nil || rep.Pending() || rep.Checkpoint != "" {
		t.Fatalf("plan after apply: %v\n%s", err, rep.Text())
	}

	// Another batch size: every loaded row is on a batch of 8 the old
	// batches acknowledged, so nothing is sent and the snapshot stays.
	r.cfg.Upload.BatchSize = 8
	if rep, err := pipeline.PlanRun(context.Background(), r.cfg, all.Registry(), ""); err != nil || rep.Pending() ||
		!strings.Contains(rep.Checkpoint, "(batches of 16, now batches of 8): all 92 rows it loaded stay, none is left to load") {
		t.Fatalf("plan, batches of 8: %v\n%s", err, rep.Text())
	}
	sum2, err := r.e.apply(t, r.cfg, pipeline.ApplyOptions{})
	if err != nil || sum2.PointsWritten != 0 || sum2.SnapshotPath != sum.SnapshotPath {
		t.Fatalf("batch size 8: %v, %d points, snapshot %s (was %s)", err, sum2.PointsWritten, sum2.SnapshotPath, sum.SnapshotPath)
	}
	// Any other change still needs --full-refresh (TestGrown has the
	// cases where the rows grow too).
	r.cfg.Points.Payload.Exclude = []string{"caption"}
	if _, err := r.e.apply(t, r.cfg, pipeline.ApplyOptions{}); !errors.Is(err, pipeline.ErrConfigChanged) || !strings.Contains(err.Error(), "points.payload") {
		t.Fatalf("payload changed: %v", err)
	}
}

// A raised points.limit keeps the batches the lower one loaded in full
// (a shard set's, and one file's) and loads the rest; a lowered one is
// refused (points beyond it would stay in the collection).
func TestRaisedLimitKeepsLoadedBatches(t *testing.T) {
	r := newShardRun(t, []int{30, 30, 30})
	lim := int64(45)
	r.cfg.Points.Limit = &lim
	if _, err := r.e.apply(t, r.cfg, pipeline.ApplyOptions{}); err != nil {
		t.Fatal(err)
	}
	// Batches of 16: shard 0 is batches 0 (16) and 1 (14), shard 1's 15
	// rows batch 2, which a limit of 70 makes 16 rows: it is sent again;
	// then shard 2's 10 rows of that limit are its whole first batch.
	lim = 70
	sum, err := r.e.apply(t, r.cfg, pipeline.ApplyOptions{})
	if err != nil || sum.PointsWritten != 40 {
		t.Fatalf("limit 70: %v, %d points written, want 40", err, sum.PointsWritten)
	}
	checkPoints(t, r.e, "shards", 70, r.img[:70], r.txt[:70], r.meta[:70])
	r.cfg.Points.Limit = nil
	if sum, err = r.e.apply(t, r.cfg, pipeline.ApplyOptions{}); err != nil || sum.PointsWritten != 30 {
		t.Fatalf("no limit: %v, %d points written, want 30", err, sum.PointsWritten)
	}
	checkPoints(t, r.e, "shards", 90, r.img, r.txt, r.meta)
	lim = 60
	r.cfg.Points.Limit = &lim
	if _, err := r.e.apply(t, r.cfg, pipeline.ApplyOptions{}); !errors.Is(err, pipeline.ErrConfigChanged) || !strings.Contains(err.Error(), "points.limit") {
		t.Fatalf("lowered limit: %v", err)
	}

	// One file, batches of 64: batch 0 of a limit of 100 stays, batch 1
	// (36 rows) grows to 64 and is sent again.
	// Over HTTP: the limit fetched a prefix of each .npy file, which the
	// raised limit extends.
	e, cfg, files := sampleOverHTTP(t, 200)
	lim = 100
	cfg.Points.Limit = &lim
	if _, err := e.apply(t, cfg, pipeline.ApplyOptions{}); err != nil {
		t.Fatal(err)
	}
	lim = 150
	rep, err := pipeline.PlanRun(context.Background(), cfg, all.Registry(), "")
	if err != nil || !strings.Contains(rep.Checkpoint, "(points.limit 100, now points.limit 150): the 64 rows it loaded stay") ||
		!strings.Contains(rep.Text(), "upsert 86 points in 2 batches") ||
		!strings.Contains(rep.Text(), "first 150 rows of source image by HTTP Range (230528 of 307328 bytes; the first 153728 bytes are in the cache from a run with a lower limit)") {
		t.Fatalf("plan: %v\n%s", err, rep.Text())
	}
	if sum, err := e.apply(t, cfg, pipeline.ApplyOptions{}); err != nil || sum.PointsWritten != 86 {
		t.Fatalf("limit 150: %v, %d points", err, sum.PointsWritten)
	}
	if n := e.count(t, cfg.Collection.Name); n != 150 {
		t.Fatalf("collection holds %d points, want 150", n)
	}
	// 150 rows of 768 float16 (the header and 150 × 1536 bytes) plus a
	// 4 KiB header probe per run, less than the whole file (200 rows):
	// the 100 rows' prefix was extended, not fetched again.
	if got := files.Of("img_emb_0000.npy"); got < 128+150*1536 || got >= 128+200*1536 {
		t.Fatalf("img_emb_0000.npy: %d bytes fetched, want the 150 rows' %d and header probes, less than the file's %d", got, 128+150*1536, 128+200*1536)
	}
}

// truncate makes the set look as if it had only its first n shards: the
// ranges end at n-1, the glob's later files are moved aside. It returns
// a function that appends the hidden shards again (the dump grew).
func (r *shardRun) truncate(t *testing.T, n int) (grow func()) {
	t.Helper()
	later := t.TempDir()
	moved, _ := filepath.Glob(filepath.Join(r.data, "text_emb_*.npy"))
	moved = moved[n:]
	for _, p := range moved {
		if err := os.Rename(p, filepath.Join(later, filepath.Base(p))); err != nil {
			t.Fatal(err)
		}
	}
	urls := map[string]string{"metadata": r.cfg.Sources["metadata"].URL, "image": r.cfg.Sources["image"].URL}
	for s, u := range urls {
		i := strings.Index(u, "..")
		r.cfg.Sources[s].URL = u[:i+2] + fmt.Sprintf("%04d", n-1) + u[i+6:]
	}
	return func() {
		for _, p := range moved {
			if err := os.Rename(filepath.Join(later, filepath.Base(p)), p); err != nil {
				t.Fatal(err)
			}
		}
		for s, u := range urls {
			r.cfg.Sources[s].URL = u
		}
	}
}

// Partitions of a grown set load only their new shards; finalize counts
// the grown set and snapshots again.
func TestGrownSetByPartitions(t *testing.T) {
	r := newShardRun(t, []int{20, 20, 20, 20, 20})
	grow := r.truncate(t, 3)
	keepOne(r.cfg)
	part := func(i int) pipeline.ApplyOptions {
		return pipeline.ApplyOptions{StateDir: filepath.Join(r.dir, fmt.Sprintf("state-%d", i)), Partition: &pipeline.Partition{I: i, N: 2}}
	}
	final := pipeline.ApplyOptions{StateDir: filepath.Join(r.dir, "final"), Finalize: true, Partitions: 2}
	for _, o := range []pipeline.ApplyOptions{part(0), part(1), final} {
		if _, err := r.e.apply(t, r.cfg, o); err != nil {
			t.Fatal(err)
		}
	}
	checkPoints(t, r.e, "shards", 60, r.img[:60], r.txt[:60], r.meta[:60])
	grow()
	// Shard 3 is partition 1's, shard 4 partition 0's.
	for i := range 2 {
		sum, err := r.e.apply(t, r.cfg, part(i))
		if err != nil || sum.PointsWritten != 20 {
			t.Fatalf("partition %d of the grown set: %v, %d points written, want its new shard's 20", i, err, sum.PointsWritten)
		}
	}
	sum, err := r.e.apply(t, r.cfg, final)
	if err != nil {
		t.Fatal(err)
	}
	checkPoints(t, r.e, "shards", 100, r.img, r.txt, r.meta)
	checkSnapshot(t, r.e, sum, "shards")
	if n := len(r.e.srv.OpsOf("snapshot")); n != 2 {
		t.Fatalf("%d snapshots taken, want 2 (one per finalize)", n)
	}
}

// An interrupted run resumed with a smaller upload.batch_size (requests
// too large for the server, say): the rows the old batches acknowledged
// stay, counted on the new batches, and only the others are sent; every
// point is exact.
func TestBatchSizeChangedMidRun(t *testing.T) {
	r := interruptedShardRun(t)
	e, cfg := r.e, r.cfg
	state := filepath.Join(r.dir, ".snappipe")
	sf, _, err := pipeline.OpenState(filepath.Join(state, "shards.state.json"))
	if err != nil {
		t.Fatal(err)
	}
	st := sf.Snapshot()
	loaded := st.Layout.Layout(16).RowsOfBatches(st.Upsert)
	if loaded < 32 || loaded >= 105 {
		t.Fatalf("the first run loaded %d rows", loaded)
	}
	// Batches of 8 divide those of 16: every acknowledged row stays.
	cfg.Upload.BatchSize = 8
	rep, err := pipeline.PlanRun(context.Background(), cfg, all.Registry(), "")
	if err != nil || len(rep.Problems) > 0 || !strings.Contains(rep.Checkpoint, fmt.Sprintf("with another batch size (batches of 16, now batches of 8): the %d rows it loaded stay", loaded)) ||
		!strings.Contains(rep.Text(), fmt.Sprintf("upsert %d points", 105-loaded)) {
		t.Fatalf("plan: %v\n%s", err, rep.Text())
	}
	sum, err := e.apply(t, cfg, pipeline.ApplyOptions{})
	if err != nil || sum.PointsWritten != 105-loaded {
		t.Fatalf("resumed with batches of 8: %v, %d points written, want %d", err, sum.PointsWritten, 105-loaded)
	}
	checkPoints(t, e, "shards", 105, r.img, r.txt, r.meta)
	checkSnapshot(t, e, sum, "shards")
}

// Payload indexes changed after a load are changed on the collection:
// one dropped, one of another type made again, one added; no point is
// sent again, and a new snapshot holds the new indexes.
func TestPayloadIndexesChangedInPlace(t *testing.T) {
	e, cfg := loadedSample(t, 150, 6, keepOne)
	cfg.Collection.PayloadIndexes = map[string]string{"NSFW": "text", "url": "keyword"}
	rep, err := pipeline.PlanRun(context.Background(), cfg, all.Registry(), "")
	want := []string{
		"delete payload index NSFW (keyword) of the loaded collection, to make it again as text",
		"delete payload index similarity of the loaded collection (no longer in collection.payload_indexes)",
		"create payload index NSFW (text) on the loaded collection",
		"create payload index url (keyword) on the loaded collection",
	}
	if err != nil || len(rep.Problems) > 0 || !strings.Contains(rep.Checkpoint, "with other payload indexes") || len(rep.Actions) < 4 || strings.Join(rep.Actions[:4], "\n") != strings.Join(want, "\n") {
		t.Fatalf("plan: %v\n%s", err, rep.Text())
	}
	// An apply interrupted before the change leaves it marked: status says so.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	pipeline.Apply(ctx, cfg, all.Registry(), pipeline.ApplyOptions{StateDir: filepath.Join(cfg.Dir, ".snappipe")})
	sf, _, _ := pipeline.OpenState(filepath.Join(cfg.Dir, ".snappipe", "e2e.state.json"))
	if lines, err := pipeline.Status(cfg, all.Registry(), sf); err != nil || !strings.Contains(strings.Join(lines, "\n"), "collection done; its payload indexes or settings are to be changed to the config's") {
		t.Fatalf("status: %v\n%s", err, strings.Join(lines, "\n"))
	}
	sum, err := e.apply(t, cfg, pipeline.ApplyOptions{})
	if err != nil || sum.PointsWritten != 0 {
		t.Fatalf("apply: %v, %d points written", err, sum.PointsWritten)
	}
	info, err := e.client.GetCollectionInfo(context.Background(), cfg.Collection.Name)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for f, si := range info.GetPayloadSchema() {
		got[f] = strings.ToLower(si.GetDataType().String())
	}
	if len(got) != 2 || got["NSFW"] != "text" || got["url"] != "keyword" {
		t.Fatalf("payload schema %v", got)
	}
	if n := e.count(t, cfg.Collection.Name); n != 150 {
		t.Fatalf("collection holds %d points", n)
	}
	checkSnapshot(t, e, sum, cfg.Collection.Name)
	if rep, err := pipeline.PlanRun(context.Background(), cfg, all.Registry(), ""); err != nil || rep.Pending() {
		t.Fatalf("plan after: %v\n%s", err, rep.Text())
	}
}

// HNSW and optimizer settings changed after a load update the collection
// in place (Qdrant re-indexes it; no point is sent again) and a new
// snapshot is taken; plan says what differs.
func TestCollectionSettingsUpdatedInPlace(t *testing.T) {
	m := uint64(16)
	e, cfg := loadedSample(t, 100, 7, func(c *config.Config) {
		keepOne(c)
		c.Collection.HNSW = &config.HNSWConfig{M: &m}
	})
	m2, th := uint64(32), uint64(1000)
	cfg.Collection.HNSW = &config.HNSWConfig{M: &m2}
	cfg.Collection.Optimizers = &config.OptimizersConfig{IndexingThreshold: &th}
	q := 0.95
	cfg.Collection.Quantization = &config.QuantizationConfig{Scalar: &config.ScalarQuantization{Type: "int8", Quantile: &q}}
	onDisk := true
	cfg.Collection.Vectors["image"].Quantization = &config.QuantizationConfig{Binary: &config.BinaryQuantization{}}
	cfg.Collection.Vectors["text"].OnDisk = &onDisk
	wcf, limit := uint32(1), uint32(50)
	cfg.Collection.WriteConsistencyFactor = &wcf
	inRAM := false
	cfg.Collection.OnDiskPayload = &inRAM
	cfg.Collection.StrictMode = &config.StrictModeConfig{Enabled: &onDisk, MaxQueryLimit: &limit}
	cfg.Collection.Metadata = map[string]string{"owner": "search team"}
	rep, err := pipeline.PlanRun(context.Background(), cfg, all.Registry(), "")
	if err != nil || len(rep.Problems) > 0 || !strings.Contains(rep.Checkpoint, "with other collection settings (HNSW, optimizers, quantization, on_disk, strict mode, metadata)") ||
		!strings.Contains(rep.Text(), `update collection "LAION-5B" in place to the file's settings (now: hnsw.m 16 != 32; metadata "owner" is missing; on_disk_payload true != false; optimizers.indexing_threshold 10000 != 1000; quantization none != scalar int8 quantile 0.95; strict_mode.enabled is not set on the server; the config says true; strict_mode.max_query_limit is not set on the server; the config says 50; vector "image" quantization none != binary; vector "text" on_disk false != true)`) {
		t.Fatalf("plan: %v\n%s", err, rep.Text())
	}
	sum, err := e.apply(t, cfg, pipeline.ApplyOptions{})
	if err != nil || sum.PointsWritten != 0 {
		t.Fatalf("apply: %v, %d points written", err, sum.PointsWritten)
	}
	info, err := e.client.GetCollectionInfo(context.Background(), cfg.Collection.Name)
	if err != nil || info.GetConfig().GetHnswConfig().GetM() != 32 || info.GetConfig().GetOptimizerConfig().GetIndexingThreshold() != 1000 ||
		info.GetConfig().GetQuantizationConfig().GetScalar().GetQuantile() != 0.95 {
		t.Fatalf("collection config %v %v", info.GetConfig(), err)
	}
	if cf := info.GetConfig(); cf.GetParams().GetOnDiskPayload() || !cf.GetStrictModeConfig().GetEnabled() || cf.GetStrictModeConfig().GetMaxQueryLimit() != 50 ||
		cf.GetMetadata()["owner"].GetStringValue() != "search team" {
		t.Fatalf("collection config %v", cf)
	}
	if vp := info.GetConfig().GetParams().GetVectorsConfig().GetParamsMap().GetMap(); vp["image"].GetQuantizationConfig().GetBinary() == nil || !vp["text"].GetOnDisk() || vp["image"].GetSize() != 768 {
		t.Fatalf("collection config %v %v", info.GetConfig(), err)
	}
	if n := e.count(t, cfg.Collection.Name); n != 100 {
		t.Fatalf("collection holds %d points", n)
	}
	checkSnapshot(t, e, sum, cfg.Collection.Name)
	if rep, err := pipeline.PlanRun(context.Background(), cfg, all.Registry(), ""); err != nil || rep.Pending() || len(rep.Problems) > 0 {
		t.Fatalf("plan after: %v\n%s", err, rep.Text())
	}
}

// keepOne keeps one snapshot on the server and at the destination, so a
// test that takes a second one can check it with checkSnapshot.
func keepOne(c *config.Config) { c.Snapshot.Keep, c.Snapshot.DestinationKeep = 1, 1 }

// A bulk load (hnsw m held at 0) interrupted, then the config changes
// hnsw.m and adds quantization: the next apply takes the checkpoint over
// (no --full-refresh, no point sent twice), applies the quantization at
// once, keeps m at 0 for the rest of the load and restores the new m at
// its end.
func TestSettingsChangedDuringABulkLoad(t *testing.T) {
	data := t.TempDir()
	if err := sample.Generate(sample.Options{Rows: 640, Dim: 768, Seed: 3, Out: data}); err != nil {
		t.Fatal(err)
	}
	e := newEnv(t, qdrantemu.Options{Faults: qdrantemu.Faults{UpsertDelay: 10 * time.Millisecond}})
	dir := t.TempDir()
	y := strings.Replace(sampleYAML(data, ""), "upload: { batch_size: 64, parallel: 3 }", "upload: { batch_size: 64, parallel: 1, bulk: true }", 1)
	cfg := e.load(t, dir, strings.Replace(y, "  shard_number: 2\n", "  shard_number: 2\n  hnsw: { m: 24 }\n", 1))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	cut := &progressLog{onUpsert: func(done int64) {
		if done >= 192 {
			cancel()
		}
	}}
	if _, err := pipeline.Apply(ctx, cfg, all.Registry(), pipeline.ApplyOptions{StateDir: filepath.Join(dir, ".snappipe"), Events: cut}); !errors.Is(err, context.Canceled) {
		t.Fatalf("first run: %v", err)
	}
	loaded := e.count(t, "LAION-5B")
	if loaded == 0 || loaded >= 640 {
		t.Fatalf("%d points after the cut", loaded)
	}
	changed := strings.Replace(y, "  shard_number: 2\n", "  shard_number: 2\n  hnsw: { m: 32 }\n  quantization: { scalar: { type: int8 } }\n", 1)
	cfg = e.load(t, dir, changed)
	rep, err := pipeline.PlanRun(context.Background(), cfg, all.Registry(), "")
	if err != nil || len(rep.Problems) > 0 || !strings.Contains(rep.Checkpoint, "with other collection settings") {
		t.Fatalf("plan: %v\n%s\n%s", err, rep.Checkpoint, rep.Text())
	}
	opsBefore := len(e.srv.Ops())
	sum, err := e.apply(t, cfg, pipeline.ApplyOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if sum.PointsWritten+int64(loaded) > 640+64 || e.count(t, "LAION-5B") != 640 {
		t.Fatalf("the second run wrote %d points after %d were loaded", sum.PointsWritten, loaded)
	}
	var seq []string
	for _, op := range e.srv.Ops()[opsBefore:] {
		switch op.Kind {
		case "update":
			seq = append(seq, fmt.Sprintf("update m=%d", op.HNSWM))
		case "upsert":
			if op.HNSWM != 0 {
				t.Fatalf("an upsert with hnsw m=%d after the in-place update, during the bulk load", op.HNSWM)
			}
			if len(seq) == 0 || seq[len(seq)-1] != "upsert" {
				seq = append(seq, "upsert")
			}
		}
	}
	if strings.Join(seq, ", ") != "update m=0, upsert, update m=32" {
		t.Fatalf("operations of the second run: %s", strings.Join(seq, ", "))
	}
	info, err := e.client.GetCollectionInfo(context.Background(), "LAION-5B")
	if err != nil || info.GetConfig().GetHnswConfig().GetM() != 32 || info.GetConfig().GetQuantizationConfig().GetScalar() == nil {
		t.Fatalf("collection config %v %v", info.GetConfig(), err)
	}
}
