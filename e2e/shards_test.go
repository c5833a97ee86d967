package e2e_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/parquet-go/parquet-go"
	"github.com/qdrant/go-client/qdrant"

	"github.com/snappipe/snappipe/internal/npy"
	"github.com/snappipe/snappipe/internal/qdrantemu"
	"github.com/snappipe/snappipe/internal/sample"
	"github.com/snappipe/snappipe/pipeline"
	"github.com/snappipe/snappipe/pipeline/config"
	"github.com/snappipe/snappipe/stages/all"
)

// shardSet writes shards 0..len(rows)-1 of metadata/img/text into dir,
// shard k with rows[k] rows (0: an empty shard), and returns every row of
// every shard in index order: vectors and payloads.
func shardSet(t *testing.T, dir string, rows []int) (img, txt [][]float32, meta []map[string]*qdrant.Value) {
	t.Helper()
	for k, n := range rows {
		names := map[string]string{
			"metadata_0000.parquet": fmt.Sprintf("metadata_%04d.parquet", k),
			"img_emb_0000.npy":      fmt.Sprintf("img_emb_%04d.npy", k),
			"text_emb_0000.npy":     fmt.Sprintf("text_emb_%04d.npy", k),
		}
		if n == 0 {
			writeEmptyShard(t, dir, names)
			continue
		}
		tmp := t.TempDir()
		if err := sample.Generate(sample.Options{Rows: n, Dim: 8, Seed: uint64(100 + k), Out: tmp}); err != nil {
			t.Fatal(err)
		}
		for from, to := range names {
			if err := os.Rename(filepath.Join(tmp, from), filepath.Join(dir, to)); err != nil {
				t.Fatal(err)
			}
		}
		img = append(img, npyRows(t, filepath.Join(dir, names["img_emb_0000.npy"]))...)
		txt = append(txt, npyRows(t, filepath.Join(dir, names["text_emb_0000.npy"]))...)
		meta = append(meta, parquetRows(t, filepath.Join(dir, names["metadata_0000.parquet"]))...)
	}
	return
}

func writeEmptyShard(t *testing.T, dir string, names map[string]string) {
	for _, n := range []string{"img_emb_0000.npy", "text_emb_0000.npy"} {
		f, err := os.Create(filepath.Join(dir, names[n]))
		if err != nil {
			t.Fatal(err)
		}
		npy.WriteHeader(f, "<f2", 0, 8)
		f.Close()
	}
	f, err := os.Create(filepath.Join(dir, names["metadata_0000.parquet"]))
	if err != nil {
		t.Fatal(err)
	}
	w := parquet.NewGenericWriter[sample.Meta](f)
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	f.Close()
}

func shardYAML(url, dir, extra string) string {
	return fmt.Sprintf(`version: 1
name: shards
qdrant: { url: "${QDRANT_URL}", grpc_port: "${QDRANT_GRPC_PORT}" }
collection:
  name: shards
  on_exists: reuse
  vectors:
    image: { size: 8, distance: Cosine }
    text:  { size: 8, distance: Cosine }
sources:
  metadata: { url: "%[1]s/metadata_{0000..0004}.parquet" }
  image:    { url: "%[1]s/img_emb_{0000..0004}.npy" }
  text:     { path: "%[2]s/text_emb_*.npy" }
points:
  vectors: { image: image, text: text }
  payload: { source: metadata }
upload: { batch_size: 16, parallel: 2 }
download: { parallel_shards: 2 }
snapshot: { destination: out }
%[3]s`, url, dir, extra)
}

// shardRun is a shard set served over HTTP (metadata and image; text as a
// local glob), an emulator, and shardYAML over every shard.
type shardRun struct {
	e         *env
	files     *countingFiles
	cfg       *config.Config
	dir, data string // the config's directory; the shard files'
	img, txt  [][]float32
	meta      []map[string]*qdrant.Value
}

func newShardRun(t *testing.T, rows []int) *shardRun {
	data := t.TempDir()
	r := &shardRun{dir: t.TempDir(), data: data}
	r.img, r.txt, r.meta = shardSet(t, data, rows)
	files, url := serveCounting(t, data)
	r.files = files
	r.e = newEnv(t, qdrantemu.Options{})
	r.cfg = r.e.load(t, r.dir, shardYAML(url, data, ""))
	last := fmt.Sprintf("%04d", len(rows)-1)
	r.cfg.Sources["metadata"].URL = url + "/metadata_{0000.." + last + "}.parquet"
	r.cfg.Sources["image"].URL = url + "/img_emb_{0000.." + last + "}.npy"
	return r
}

// Five shards of three sources (ranges over HTTP, a glob locally, shard 2
// empty) load every point exactly, ids = global row index; the plan and
// status show the shards; a second apply has nothing to do.
func TestShardSetLoadsEveryPoint(t *testing.T) {
	data := t.TempDir()
	img, txt, meta := shardSet(t, data, []int{40, 25, 0, 33, 7})
	files, url := serveCounting(t, data)
	e := newEnv(t, qdrantemu.Options{})
	dir := t.TempDir()
	cfg := e.load(t, dir, shardYAML(url, data, ""))
	rep, err := pipeline.PlanRun(context.Background(), cfg, all.Registry(), "")
	if err != nil || len(rep.Problems) > 0 || !strings.Contains(rep.Text(), "5 of 5 in this run: 0 done, 0 partial, 4 pending, 1 empty; 0 of 105 rows loaded") ||
		!strings.Contains(rep.Text(), "\n  image: "+url+"/img_emb_{0000..0004}.npy (npy)\n    shard set: 5 shards, 105 rows\n") ||
		!strings.Contains(rep.Text(), "\n  text: "+data+"/text_emb_*.npy (npy)\n") {
		t.Fatalf("plan: %v\n%s", err, rep.Text())
	}
	sum, err := e.apply(t, cfg, pipeline.ApplyOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if sum.PointsWritten != 105 {
		t.Fatalf("wrote %d points", sum.PointsWritten)
	}
	checkPoints(t, e, "shards", 105, img, txt, meta)
	checkSnapshot(t, e, sum, "shards")
	sf, _, err := pipeline.OpenState(filepath.Join(dir, ".snappipe", "shards.state.json"))
	if err != nil {
		t.Fatal(err)
	}
	lines, err := pipeline.Status(cfg, all.Registry(), sf)
	if err != nil || !strings.Contains(strings.Join(lines, "\n"), "4 done, 0 partial, 0 pending, 1 empty; 105 of 105 rows loaded") {
		t.Fatalf("status: %v\n%s", err, strings.Join(lines, "\n"))
	}
	// Downloaded shards are not kept in the cache once read.
	if left, _ := filepath.Glob(filepath.Join(dir, ".snappipe", "cache", "shards", "*")); len(left) != 0 {
		t.Errorf("cache keeps %v", left)
	}
	// Nothing left: the plan has no action (plan --detailed-exitcode 0).
	if rep, err := pipeline.PlanRun(context.Background(), cfg, all.Registry(), ""); err != nil || rep.Pending() || len(rep.Problems) > 0 {
		t.Fatalf("plan after apply: %v\n%s", err, rep.Text())
	}
	before := files.Total()
	sum2, err := e.apply(t, cfg, pipeline.ApplyOptions{})
	if err != nil || sum2.PointsWritten != 0 {
		t.Fatalf("second apply: %v, %d points", err, sum2.PointsWritten)
	}
	if got := files.Total() - before; got > 0 {
		t.Logf("second apply read %d bytes of headers (HEAD + cached row counts)", got)
	}
}

// A shard missing in one source is named, and nothing is written.
func TestMissingShardIsNamedBeforeAnyUpsert(t *testing.T) {
	data := t.TempDir()
	shardSet(t, data, []int{10, 10, 10, 10, 10})
	os.Remove(filepath.Join(data, "text_emb_0003.npy"))
	_, url := serveCounting(t, data)
	e := newEnv(t, qdrantemu.Options{})
	cfg := e.load(t, t.TempDir(), shardYAML(url, data, ""))
	_, err := e.apply(t, cfg, pipeline.ApplyOptions{})
	if err == nil || !strings.Contains(err.Error(), "missing: text shard 3") {
		t.Fatalf("err = %v", err)
	}
	if n := len(e.srv.OpsOf("upsert")) + len(e.srv.OpsOf("create")); n != 0 {
		t.Fatalf("%d operations reached the server", n)
	}
	rep, err := pipeline.PlanRun(context.Background(), cfg, all.Registry(), "")
	if err != nil || len(rep.Problems) != 1 || !strings.Contains(rep.Problems[0], "missing: text shard 3") {
		t.Fatalf("plan: %v %v", err, rep)
	}
}

// Shard files a URL range names but the server does not have (404) are
// all named at once, before anything reaches Qdrant.
func TestMissingShardFilesOverHTTPAreNamed(t *testing.T) {
	data := t.TempDir()
	shardSet(t, data, []int{10, 10, 10, 10, 10})
	os.Remove(filepath.Join(data, "img_emb_0001.npy"))
	os.Remove(filepath.Join(data, "metadata_0004.parquet"))
	_, url := serveCounting(t, data)
	e := newEnv(t, qdrantemu.Options{})
	cfg := e.load(t, t.TempDir(), shardYAML(url, data, ""))
	want := "2 shard files are not there: image shard 1, metadata shard 4 ("
	if _, err := e.apply(t, cfg, pipeline.ApplyOptions{}); err == nil || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), "404") {
		t.Fatalf("apply: %v", err)
	}
	if n := len(e.srv.OpsOf("upsert")) + len(e.srv.OpsOf("create")); n != 0 {
		t.Fatalf("%d operations reached the server", n)
	}
	rep, err := pipeline.PlanRun(context.Background(), cfg, all.Registry(), "")
	if err != nil || len(rep.Problems) != 1 || !strings.Contains(rep.Problems[0], want) {
		t.Fatalf("plan: %v %v", err, rep)
	}
	// A range far past the files (a wrong base or bound): probing stops
	// after 100 absent files instead of trying every one.
	cfg.Sources["metadata"].URL = url + "/metadata_{0000..0149}.parquet"
	cfg.Sources["image"].URL = url + "/img_emb_{0000..0149}.npy"
	cfg.Sources["text"].Path = data + "/text_emb_{0000..0149}.npy"
	if _, err := e.apply(t, cfg, pipeline.ApplyOptions{}); err == nil || !regexp.MustCompile(`^at least 1\d\d shard files are not there: (\w+ shard \d+, ){20}and \d+ more \(`).MatchString(err.Error()) {
		t.Fatalf("apply over a range far past the files: %v", err)
	}
}

// A shard set whose vectors are not the configured width, or which lacks
// a column the config names, is a problem plan reports from the first
// shard with rows (as for a single file); apply stops before creating the
// collection.
func TestShardSetWidthAndColumnsPlanned(t *testing.T) {
	data := t.TempDir()
	shardSet(t, data, []int{0, 10, 10, 10, 10})
	_, url := serveCounting(t, data)
	e := newEnv(t, qdrantemu.Options{})
	y := strings.Replace(shardYAML(url, data, ""), "image: { size: 8", "image: { size: 9", 1)
	y = strings.Replace(y, "payload: { source: metadata }", "payload: { source: metadata, include: [caption, nope] }", 1)
	cfg := e.load(t, t.TempDir(), y)
	rep, err := pipeline.PlanRun(context.Background(), cfg, all.Registry(), "")
	text := ""
	if rep != nil {
		text = strings.Join(rep.Problems, "\n")
	}
	if err != nil || !strings.Contains(text, `source image shard 1: vector "image": source image (npy v1.0 <f2 C-order shape (10, 8)) has width 8, collection.vectors.image.size is 9`) ||
		!strings.Contains(text, `source metadata shard 1: payload include column "nope" is not in the file`) {
		t.Fatalf("plan: %v\n%s", err, text)
	}
	// Whichever source's decoder stops first; a downloaded shard is named
	// by its URL, not by the download cache's file.
	_, err = e.apply(t, cfg, pipeline.ApplyOptions{})
	if err == nil || !strings.Contains(err.Error(), "has width 8, collection.vectors.image.size is 9") &&
		!strings.Contains(err.Error(), `source metadata shard 1 (`+url+`/metadata_0001.parquet): payload column "nope" is not in `+url+`/metadata_0001.parquet`) {
		t.Fatalf("apply: %v", err)
	}
	if n := len(e.srv.OpsOf("upsert")) + len(e.srv.OpsOf("create")); n != 0 {
		t.Fatalf("%d operations reached the server", n)
	}
}

// A limit takes the first rows in shard order and touches only the shards
// it needs.
func TestShardSetLimit(t *testing.T) {
	data := t.TempDir()
	img, txt, meta := shardSet(t, data, []int{30, 30, 30, 30, 30})
	files, url := serveCounting(t, data)
	e := newEnv(t, qdrantemu.Options{})
	cfg := e.load(t, t.TempDir(), shardYAML(url, data, "")+"")
	lim := int64(45)
	cfg.Points.Limit = &lim
	if _, err := e.apply(t, cfg, pipeline.ApplyOptions{}); err != nil {
		t.Fatal(err)
	}
	checkPoints(t, e, "shards", 45, img[:45], txt[:45], meta[:45])
	// The shards past the limit are not touched, not even their headers:
	// a limit of 1,000 rows of LAION's 2,314 shards reads one or two.
	for _, k := range []int{2, 3, 4} {
		for _, f := range []string{"img_emb_%04d.npy", "metadata_%04d.parquet"} {
			if n := files.Requests(fmt.Sprintf(f, k)); n > 0 {
				t.Errorf("shard %d beyond the limit: %d requests for %s", k, n, fmt.Sprintf(f, k))
			}
		}
	}
	rep, err := pipeline.PlanRun(context.Background(), cfg, all.Registry(), "")
	if err != nil || !strings.Contains(rep.Text(), "shard set: 5 shards; this run loads the first 2, 45 rows (the limit needs no more: the others are not read)") {
		t.Fatalf("plan: %v\n%s", err, rep.Text())
	}
}

// Three partitions on separate state dirs load their shards (shard k in
// partition k mod 3), none snapshots; finalize before the last partition
// names what is missing, after it snapshots once; every point exact.
func TestPartitionsThenFinalize(t *testing.T) {
	r := newShardRun(t, []int{20, 17, 0, 31, 9, 12})
	e, cfg, dir, img, txt, meta := r.e, r.cfg, r.dir, r.img, r.txt, r.meta
	data := r.data
	for _, i := range []int{0, 2} {
		sum, err := e.apply(t, cfg, pipeline.ApplyOptions{StateDir: filepath.Join(dir, fmt.Sprintf("state-%d", i)), Partition: &pipeline.Partition{I: i, N: 3}})
		if err != nil {
			t.Fatalf("partition %d: %v", i, err)
		}
		if sum.SnapshotPath != "" {
			t.Fatalf("partition %d took a snapshot", i)
		}
	}
	if n := len(e.srv.OpsOf("snapshot")); n != 0 {
		t.Fatalf("%d snapshots before finalize", n)
	}
	done := pipeline.ApplyOptions{StateDir: filepath.Join(dir, "state-0"), Partition: &pipeline.Partition{I: 0, N: 3}}
	if rep, err := pipeline.PlanRunWith(context.Background(), cfg, all.Registry(), done); err != nil || rep.Pending() ||
		!strings.Contains(rep.Text(), "No changes: partition 0/3 has loaded its shards (partitions take no snapshot: finalize does).") {
		t.Fatalf("plan of a loaded partition: %v\n%s", err, rep.Text())
	}
	// finalize's plan reads no file and shows no per-shard progress (its
	// checkpoint has none; each partition's has its own).
	rep, err := pipeline.PlanRunWith(context.Background(), cfg, all.Registry(), pipeline.ApplyOptions{StateDir: filepath.Join(dir, "final"), Finalize: true, Partitions: 3})
	if err != nil || strings.Contains(rep.Text(), "Sources:") || !strings.Contains(rep.Text(), "shards     6 in the set, 89 rows, loaded by the partitions") ||
		!strings.Contains(rep.Text(), `check that collection "shards" holds all 89 rows of the 6 shards: it holds 63 now, 26 short; finalize would fail now`) {
		t.Fatalf("finalize plan: %v\n%s", err, rep.Text())
	}
	_, err = e.apply(t, cfg, pipeline.ApplyOptions{StateDir: filepath.Join(dir, "final"), Finalize: true, Partitions: 3})
	// Partition 1 holds shards 1 and 4.
	if err == nil || !strings.Contains(err.Error(), "incomplete: shard 1, shard 4 (partitions 1 of 3)") {
		t.Fatalf("early finalize: %v", err)
	}
	if _, err := e.apply(t, cfg, pipeline.ApplyOptions{StateDir: filepath.Join(dir, "state-1"), Partition: &pipeline.Partition{I: 1, N: 3}}); err != nil {
		t.Fatal(err)
	}
	rep, err = pipeline.PlanRunWith(context.Background(), cfg, all.Registry(), pipeline.ApplyOptions{StateDir: filepath.Join(dir, "final"), Finalize: true, Partitions: 3})
	if err != nil || !strings.Contains(rep.Text(), `holds all 89 rows of the 6 shards: it holds them all now`) {
		t.Fatalf("finalize plan once the partitions are done: %v\n%s", err, rep.Text())
	}
	sum, err := e.apply(t, cfg, pipeline.ApplyOptions{StateDir: filepath.Join(dir, "final"), Finalize: true, Partitions: 3})
	if err != nil {
		t.Fatal(err)
	}
	checkPoints(t, e, "shards", 89, img, txt, meta)
	checkSnapshot(t, e, sum, "shards")
	if n := len(e.srv.OpsOf("create")); n != 1 {
		t.Fatalf("collection created %d times", n)
	}
	// Partitions refuse on_exists: recreate.
	cfg.Collection.OnExists = "recreate"
	if _, err := e.apply(t, cfg, pipeline.ApplyOptions{StateDir: filepath.Join(dir, "x"), Partition: &pipeline.Partition{I: 0, N: 3}}); err == nil || !strings.Contains(err.Error(), "on_exists: reuse") {
		t.Fatalf("recreate with partitions: %v", err)
	}
	// Single files cannot be partitioned or finalized: refused from the
	// config, before a lock or state file is written.
	cfg.Collection.OnExists = "reuse"
	single := map[string]string{"metadata": "metadata_0000.parquet", "image": "img_emb_0000.npy", "text": "text_emb_0000.npy"}
	for name, src := range cfg.Sources {
		src.Path, src.URL = filepath.Join(data, single[name]), ""
	}
	for _, o := range []pipeline.ApplyOptions{{Partition: &pipeline.Partition{I: 1, N: 2}}, {Finalize: true}} {
		o.StateDir = filepath.Join(dir, "single")
		flag := map[bool]string{true: "--partition", false: "--finalize"}[o.Partition != nil]
		if _, err := e.apply(t, cfg, o); err == nil || !strings.Contains(err.Error(), flag+" needs shard sets (partitions split a source's shard files between them): every source here is one file") {
			t.Fatalf("%s on single files: %v", flag, err)
		}
		if _, err := os.Stat(o.StateDir); !os.IsNotExist(err) {
			t.Fatalf("%s on single files wrote %s (%v)", flag, o.StateDir, err)
		}
	}
}

// progressLog records apply's progress events and calls onUpsert with
// each upsert report.
type progressLog struct {
	pipeline.NopEvents
	mu       sync.Mutex
	reports  [][2]int64 // upsert: done, total
	onUpsert func(done int64)
}

func (p *progressLog) Progress(node string, done, total int64, unit string) {
	if node != "upsert" {
		return
	}
	p.mu.Lock()
	p.reports = append(p.reports, [2]int64{done, total})
	f := p.onUpsert
	p.mu.Unlock()
	if f != nil {
		f(done)
	}
}

// An interrupted shard-set run: batches never span two shards, so there
// are more of them than rows / batch_size, and each holds fewer rows.
// status, plan and the resumed run's progress count them as they are.
// interruptedShardRun is newShardRun of shards 40, 25, 0, 33 and 7 rows
// (batches of 16), upserts slowed down, after a first apply interrupted
// once 32 points were acknowledged.
func interruptedShardRun(t *testing.T) *shardRun {
	t.Helper()
	data := t.TempDir()
	r := &shardRun{dir: t.TempDir(), data: data}
	r.img, r.txt, r.meta = shardSet(t, data, []int{40, 25, 0, 33, 7})
	var url string
	r.files, url = serveCounting(t, data)
	r.e = newEnv(t, qdrantemu.Options{Faults: qdrantemu.Faults{UpsertDelay: 20 * time.Millisecond}})
	r.cfg = r.e.load(t, r.dir, shardYAML(url, data, ""))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	first := &progressLog{onUpsert: func(done int64) {
		if done >= 32 {
			cancel() // interrupt once two batches are acknowledged
		}
	}}
	if _, err := pipeline.Apply(ctx, r.cfg, all.Registry(), pipeline.ApplyOptions{StateDir: filepath.Join(r.dir, ".snappipe"), Events: first}); !errors.Is(err, context.Canceled) {
		t.Fatalf("first run: %v", err)
	}
	return r
}

func TestShardSetInterruptedCounts(t *testing.T) {
	r := interruptedShardRun(t)
	e, cfg, dir, img, txt, meta := r.e, r.cfg, r.dir, r.img, r.txt, r.meta
	// Batches of 16 by shard: 40 = 16+16+8, 25 = 16+9, 33 = 16+16+1, 7.
	rowsOf := []int64{16, 16, 8, 16, 9, 16, 16, 1, 7}
	sf, _, err := pipeline.OpenState(filepath.Join(dir, ".snappipe", "shards.state.json"))
	if err != nil {
		t.Fatal(err)
	}
	up := sf.Snapshot().Upsert
	var acked, ackedRows int64
	for seq, n := range rowsOf {
		if up.Acked(int64(seq)) {
			acked, ackedRows = acked+1, ackedRows+n
		}
	}
	if acked < 2 || acked >= int64(len(rowsOf)) || acked != up.AckedCount() {
		t.Fatalf("first run acknowledged %d of %d batches (state: %d); the test needs a partial run", acked, len(rowsOf), up.AckedCount())
	}
	lines, err := pipeline.Status(cfg, all.Registry(), sf)
	want := fmt.Sprintf("upsert     partial: %d of 9 batches acknowledged, %d of 105 points", acked, ackedRows)
	if err != nil || !strings.Contains(strings.Join(lines, "\n"), want) ||
		!regexp.MustCompile(`\n  download image +shard set of 5 files \(each fetched as its shard loads, removed once read\): \d in the cache, \d partly downloaded\n`).MatchString(strings.Join(lines, "\n")) {
		t.Fatalf("status: %v, want %q in\n%s", err, want, strings.Join(lines, "\n"))
	}
	rep, err := pipeline.PlanRun(context.Background(), cfg, all.Registry(), filepath.Join(dir, ".snappipe"))
	want = fmt.Sprintf("upsert %d points in %d batches of up to 16 (a batch never spans two shards), 2 in parallel (%d batches already acknowledged)", 105-ackedRows, 9-acked, acked)
	if err != nil || !strings.Contains(rep.Text(), want) {
		t.Fatalf("plan: %v, want %q in\n%s", err, want, rep.Text())
	}
	e.srv.SetFaults(qdrantemu.Faults{})
	second := &progressLog{}
	sum, err := e.apply(t, cfg, pipeline.ApplyOptions{Events: second})
	if err != nil {
		t.Fatal(err)
	}
	if sum.PointsWritten != 105-ackedRows {
		t.Fatalf("resume wrote %d points, %d were unacknowledged", sum.PointsWritten, 105-ackedRows)
	}
	// The resumed progress starts at the acknowledged rows and never
	// passes the total.
	if len(second.reports) == 0 || second.reports[0] != [2]int64{ackedRows, 105} || second.reports[len(second.reports)-1] != [2]int64{105, 105} {
		t.Fatalf("resumed progress %v, want it from %d to 105 of 105", second.reports, ackedRows)
	}
	for _, r := range second.reports {
		if r[0] > r[1] {
			t.Fatalf("progress %d of %d", r[0], r[1])
		}
	}
	checkPoints(t, e, "shards", 105, img, txt, meta)
}

// finalize names at most 20 incomplete shards, says how many more there
// are, and names every partition that has one.
func TestFinalizeNamesManyIncompleteShards(t *testing.T) {
	rows := make([]int, 45)
	for i := range rows {
		rows[i] = 1
	}
	r := newShardRun(t, rows)
	e, cfg, dir := r.e, r.cfg, r.dir
	if _, err := e.apply(t, cfg, pipeline.ApplyOptions{StateDir: filepath.Join(dir, "p0"), Partition: &pipeline.Partition{I: 0, N: 2}}); err != nil {
		t.Fatal(err)
	}
	// Partition 1 (the odd shards, 22 of them) never ran.
	_, err := e.apply(t, cfg, pipeline.ApplyOptions{StateDir: filepath.Join(dir, "final"), Finalize: true, Partitions: 2})
	var odd []string
	for k := 1; k < 40; k += 2 {
		odd = append(odd, fmt.Sprintf("shard %d", k))
	}
	want := "22 rows are missing; incomplete: " + strings.Join(odd, ", ") + " and 2 more shards (partitions 1 of 2)"
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Fatalf("finalize: %v\nwant %q", err, want)
	}
}

// More partitions than shards (an Indexed Job's completions above the
// shard count), or a partition of empty shards: it loads nothing and
// succeeds, and plan says so; before, apply failed ("the sources hold no
// rows"), and Kubernetes retried the pod until the Job failed.
func TestPartitionWithoutRows(t *testing.T) {
	r := newShardRun(t, []int{20, 17, 0, 31, 9, 12})
	e, cfg, dir := r.e, r.cfg, r.dir
	for _, c := range []struct {
		p   pipeline.Partition
		why string
	}{
		{pipeline.Partition{I: 7, N: 8}, "partition 7/8 has no rows to load: it owns none of the 6 shards (more partitions than shards); apply loads nothing and succeeds"},
		{pipeline.Partition{I: 2, N: 6}, "partition 2/6 has no rows to load: its shards are empty; apply loads nothing and succeeds"},
	} {
		o := pipeline.ApplyOptions{StateDir: filepath.Join(dir, c.p.String()), Partition: &c.p}
		rep, err := pipeline.PlanRunWith(context.Background(), cfg, all.Registry(), o)
		if err != nil || rep.Pending() || !strings.Contains(rep.Text(), c.why) || !strings.Contains(rep.Text(), "No changes: this partition has nothing to load.") {
			t.Fatalf("plan %s: %v\n%s", c.p, err, rep.Text())
		}
		sum, err := e.apply(t, cfg, o)
		if err != nil || sum.PointsWritten != 0 {
			t.Fatalf("apply %s: %v", c.p, err)
		}
	}
	if n := len(e.srv.OpsOf("create")); n != 0 {
		t.Fatalf("a partition without rows created the collection (%d creates)", n)
	}
}
