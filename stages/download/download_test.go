package download_test

import (
	"context"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	_ "github.com/snappipe/snappipe/formats/all"
	"github.com/snappipe/snappipe/internal/sample"
	"github.com/snappipe/snappipe/internal/testkit"
	"github.com/snappipe/snappipe/pipeline"
	"github.com/snappipe/snappipe/pipeline/config"
	"github.com/snappipe/snappipe/pipeline/stagetest"
	"github.com/snappipe/snappipe/stages/download"
)

func serve(t *testing.T, dir string) (*testkit.Files, string) { return testkit.ServeFiles(t, dir) }

func setup(t *testing.T, url, file string, limit int64) (*pipeline.Runtime, *pipeline.StateFile) {
	t.Helper()
	y := `version: 1
name: dl
collection: { name: C, vectors: { v: { size: 8, distance: Dot } } }
sources: { s: { url: "` + url + "/" + file + `" } }
points: { vectors: { v: s } }
snapshot: { destination: out }
`
	if strings.HasSuffix(file, ".parquet") {
		y = strings.Replace(y, "vectors: { v: s }", "vectors: { v: { source: s, column: image } }", 1)
	}
	cfg, err := config.Load("p.yaml", []byte(y), t.TempDir(), config.LoadOptions{Lookup: func(string) (string, bool) { return "", false }})
	if err != nil {
		t.Fatal(err)
	}
	if limit >= 0 {
		cfg.Points.Limit = &limit
	}
	return stagetest.Runtime(t, cfg, nil)
}

func run(t *testing.T, rt *pipeline.Runtime) *pipeline.FileReady {
	t.Helper()
	st, err := download.New(&pipeline.Node{ID: "download.s", Kind: pipeline.KindDownload, Source: "s"}, rt)
	if err != nil {
		t.Fatal(err)
	}
	out, err := stagetest.Run(context.Background(), "download.s", download.Ports, st, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(out) != 1 {
		t.Fatalf("emitted %v", out)
	}
	fr := out[0].(*pipeline.FileReady)
	if fr.Stream != nil {
		// Handed on while downloading: the stage ended after verifying.
		p, err := fr.Stream.Wait()
		if err != nil {
			t.Fatal(err)
		}
		fr.Stream.Close()
		fr.Path = p
	}
	return fr
}

func data(t *testing.T) string {
	dir := t.TempDir()
	if err := sample.Generate(sample.Options{Rows: 3000, Dim: 8, Seed: 2, Out: dir, Embedded: true}); err != nil {
		t.Fatal(err)
	}
	return dir
}

func TestDownloadWholeThenCached(t *testing.T) {
	dir := data(t)
	fs, url := serve(t, dir)
	rt, sf := setup(t, url, "img_emb_0000.npy", -1)
	fr := run(t, rt)
	if rt.Config.Download.Stream && fr.Size != fr.FullSize {
		t.Fatalf("streamed file ready %+v", fr)
	}
	want, _ := os.ReadFile(filepath.Join(dir, "img_emb_0000.npy"))
	got, _ := os.ReadFile(fr.Path)
	if !fr.Complete || fr.URL != "" || string(got) != string(want) || fr.FullSize != int64(len(want)) {
		t.Fatalf("file ready %+v (%d bytes)", fr, len(got))
	}
	if ds := sf.Snapshot().Downloads["s"]; ds == nil || !ds.Done || ds.SHA256 == "" || ds.Size != int64(len(want)) {
		t.Fatalf("checkpoint %+v", ds)
	}
	before := fs.Of("img_emb_0000.npy")
	rt.SetCheckpoint(sf)
	if fr2 := run(t, rt); fr2.Path != fr.Path || fs.Of("img_emb_0000.npy") != before {
		t.Fatalf("cached run fetched %d bytes", fs.Of("img_emb_0000.npy")-before)
	}
}

// Under a row limit an npy source fetches the header and the rows it needs
// into a prefix file; a Parquet source is handed on to be read in place.
func TestDownloadUnderLimit(t *testing.T) {
	dir := data(t)
	fs, url := serve(t, dir)
	rt, _ := setup(t, url, "img_emb_0000.npy", 10)
	fr := run(t, rt)
	st, _ := os.Stat(filepath.Join(dir, "img_emb_0000.npy"))
	need := int64(128 + 10*8*2)
	if fr.Complete || fr.Size != need || fr.FullSize != st.Size() || !strings.HasSuffix(fr.Path, ".head") {
		t.Fatalf("prefix %+v", fr)
	}
	if got := fs.Of("img_emb_0000.npy"); got > need+4096 {
		t.Fatalf("fetched %d bytes for 10 rows", got)
	}
	rt2, _ := setup(t, url, "data.parquet", 10)
	if fr := run(t, rt2); fr.URL == "" || fr.Path != "" || fs.Of("data.parquet") != 0 {
		t.Fatalf("parquet under a limit: %+v, %d bytes", fr, fs.Of("data.parquet"))
	}
}

// The prefix a row limit needs streams to disk: fetching 24 MiB of rows
// allocates far less than 24 MiB (it was one buffer of the whole prefix).
func TestPrefixStreamsInBoundedMemory(t *testing.T) {
	dir := t.TempDir()
	const rows, width = 5000, 1536 // f16: 3 KiB a row, 15 MiB in all
	if err := sample.Generate(sample.Options{Rows: rows, Dim: width, Seed: 3, Out: dir, Embedded: true}); err != nil {
		t.Fatal(err)
	}
	_, url := serve(t, dir)
	rt, _ := setup(t, url, "img_emb_0000.npy", 4000)
	rt.Config.Collection.Vectors["v"].Size = width
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	fr := run(t, rt)
	runtime.ReadMemStats(&after)
	need := int64(4000 * width * 2)
	if fr.Complete || fr.Size < need {
		t.Fatalf("prefix %+v", fr)
	}
	if alloc := after.TotalAlloc - before.TotalAlloc; alloc > uint64(need/3) {
		t.Fatalf("fetching a %d-byte prefix allocated %d bytes", need, alloc)
	}
}

// Cache file names keep the URL's last path element, never its query.
func TestCachePathDropsTheQuery(t *testing.T) {
	for url, want := range map[string]string{
		"https://h/x/img_emb_0000.npy?token=abc&sig=1": "img_emb_0000.npy",
		"https://h/x/data.parquet#frag":                "data.parquet",
		"https://h/":                                   "file",
		"https://h/%2e%2e":                             "file",
		"https://h/a/..%2f..%2fetc":                    "etc",
	} {
		p := download.CachePath("/c", "s", url)
		if filepath.Dir(p) != "/c" || !strings.HasSuffix(p, "-"+want) || strings.ContainsAny(filepath.Base(p), "?#&=") {
			t.Errorf("%s -> %s", url, p)
		}
	}
}
