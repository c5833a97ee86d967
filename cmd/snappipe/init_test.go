package main

import (
	"bytes"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/parquet-go/parquet-go"
	"github.com/snappipe/snappipe/internal/fixtures"
	"github.com/snappipe/snappipe/internal/qdrantemu"
	"github.com/snappipe/snappipe/internal/sample"
	"github.com/snappipe/snappipe/internal/testkit"
)

func runCLI(args ...string) (int, string) {
	var out, errb bytes.Buffer
	code := execute(args, strings.NewReader(""), &out, &errb)
	return code, out.String() + errb.String()
}

// clipShards writes n clip-retrieval shards (metadata_NNNN.parquet,
// img_emb_NNNN.npy, text_emb_NNNN.npy) of rows rows and dim-wide vectors.
func clipShards(t *testing.T, n, rows, dim int) string {
	t.Helper()
	data := t.TempDir()
	for k := 0; k < n; k++ {
		tmp := t.TempDir()
		if err := sample.Generate(sample.Options{Rows: rows, Dim: dim, Seed: uint64(k + 1), Out: tmp}); err != nil {
			t.Fatal(err)
		}
		for _, f := range []string{"metadata_0000.parquet", "img_emb_0000.npy", "text_emb_0000.npy"} {
			os.Rename(filepath.Join(tmp, f), filepath.Join(data, strings.Replace(f, "0000", fmt.Sprintf("%04d", k), 1)))
		}
	}
	return data
}

// init on a directory of clip-retrieval shards (3 x metadata/img/text)
// writes a pipeline that validates and applies as written: shard sets as
// ranges, vectors image/text sized 16 (float16 noted), payload from the
// metadata; then the same from URLs.
func TestInitFromDirectoryAndURLs(t *testing.T) {
	data := clipShards(t, 3, 40, 16)
	dir := t.TempDir()
	out := filepath.Join(dir, "pipeline.yaml")
	if code, o := runCLI("init", data, "-o", out); code != 0 {
		t.Fatalf("init: %d\n%s", code, o)
	}
	b, _ := os.ReadFile(out)
	for _, want := range []string{"img_emb_{0000..0002}.npy", "metadata_{0000..0002}.parquet", "image: { size: 16, distance: Cosine, datatype: float16 }",
		"text: { size: 16, distance: Cosine, datatype: float16 }", "payload: { source: metadata }", "image: img_emb", "3 shards"} {
		if !strings.Contains(string(b), want) {
			t.Errorf("pipeline lacks %q:\n%s", want, b)
		}
	}
	if code, o := runCLI("init", data, "-O", out); code == 0 || !strings.Contains(o, "--force") {
		t.Fatalf("overwrote without --force: %d %s", code, o)
	}
	if code, o := runCLI("validate", out); code != 0 {
		t.Fatalf("validate: %s\n%s", o, b)
	}
	testkit.EmulatorEnv(t, qdrantemu.Options{})
	if code, o := runCLI("apply", out, "--progress", "never"); code != 0 || !strings.Contains(o, "Apply complete: 120 points written") {
		t.Fatalf("apply: %d\n%s", code, o)
	}

	// From URLs: one shard of each kind, over HTTP.
	_, base := testkit.ServeFiles(t, data)
	code, o := runCLI("init", base+"/metadata_0001.parquet", base+"/img_emb_0001.npy", "-O", "-")
	if code != 0 || !strings.Contains(o, `url: "`+base+`/img_emb_0001.npy"`) || !strings.Contains(o, "image: { size: 16") || !strings.Contains(o, "bytes of headers and footers over HTTP") {
		t.Fatalf("init from URLs: %d\n%s", code, o)
	}
}

// A Parquet file with list<float> columns and an unsigned id column: the
// columns become vectors, the id the point id, the rest payload.
func TestInitFromEmbeddedParquet(t *testing.T) {
	data := t.TempDir()
	if err := sample.Generate(sample.Options{Rows: 30, Dim: 8, Seed: 3, Out: data, Embedded: true}); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "p.yaml")
	code, o := runCLI("init", filepath.Join(data, "data.parquet"), "-O", out)
	b, _ := os.ReadFile(out)
	if code != 0 || !strings.Contains(string(b), "{ source: data, column: image }") || !strings.Contains(string(b), "{ source: data, column: text }") || !strings.Contains(string(b), "exclude: [") {
		t.Fatalf("init: %d %s\n%s", code, o, b)
	}
	testkit.EmulatorEnv(t, qdrantemu.Options{})
	if code, o := runCLI("apply", out, "--progress", "never"); code != 0 || !strings.Contains(o, "Apply complete: 30 points written") {
		t.Fatalf("apply: %d\n%s\n%s", code, o, b)
	}
}

// init on real clip-retrieval output (../shared/fixtures/real, written by
// clip-retrieval and numpy, not by us): the pipeline applies unchanged and
// loads every row.
func TestInitOnRealClipRetrievalOutput(t *testing.T) {
	real := filepath.Join(fixtures.Dir(t), "real")
	out := filepath.Join(t.TempDir(), "p.yaml")
	if code, o := runCLI("init", real, "-O", out); code != 0 {
		t.Fatalf("init: %d\n%s", code, o)
	}
	b, _ := os.ReadFile(out)
	rows := testkit.NpyRows(t, filepath.Join(real, "img_emb_0.npy"))
	if !strings.Contains(string(b), fmt.Sprintf("image: { size: %d", len(rows[0]))) {
		t.Fatalf("pipeline:\n%s", b)
	}
	testkit.EmulatorEnv(t, qdrantemu.Options{})
	if code, o := runCLI("apply", out, "--progress", "never"); code != 0 || !strings.Contains(o, fmt.Sprintf("Apply complete: %d points written", len(rows))) {
		t.Fatalf("apply: %d\n%s\n%s", code, o, b)
	}
}

// init hf://datasets/OWNER/NAME lists the repo (cat-state/clip-embeddings'
// layout: img_emb/, text_emb/, metadata/ subdirectories), reads headers by
// Range through resolve URLs, and writes a pipeline that applies; a gated
// repo gets a message saying what to do.
func TestInitFromHuggingFace(t *testing.T) {
	repoDir := t.TempDir()
	tmp := t.TempDir()
	if err := sample.Generate(sample.Options{Rows: 50, Dim: 16, Seed: 9, Out: tmp}); err != nil {
		t.Fatal(err)
	}
	for from, to := range map[string]string{"img_emb_0000.npy": "img_emb/img_emb_0.npy", "text_emb_0000.npy": "text_emb/text_emb_0.npy", "metadata_0000.parquet": "metadata/metadata_0.parquet"} {
		os.MkdirAll(filepath.Dir(filepath.Join(repoDir, to)), 0o755)
		os.Rename(filepath.Join(tmp, from), filepath.Join(repoDir, to))
	}
	hub := testkit.ServeHF(t, repoDir, "cat-state/clip-embeddings")
	t.Setenv("HF_ENDPOINT", hub)
	out := filepath.Join(t.TempDir(), "p.yaml")
	code, o := runCLI("init", "hf://datasets/cat-state/clip-embeddings", "-O", out)
	if code != 0 || !strings.Contains(o, "bytes of headers and footers over HTTP") {
		t.Fatalf("init: %d\n%s", code, o)
	}
	b, _ := os.ReadFile(out)
	if !strings.Contains(string(b), hub+"/datasets/cat-state/clip-embeddings/resolve/main/img_emb/img_emb_0.npy") || !strings.Contains(string(b), "image: { size: 16") {
		t.Fatalf("pipeline:\n%s", b)
	}
	testkit.EmulatorEnv(t, qdrantemu.Options{})
	if code, o := runCLI("apply", out, "--progress", "never"); code != 0 || !strings.Contains(o, "Apply complete: 50 points written") {
		t.Fatalf("apply: %d\n%s\n%s", code, o, b)
	}
	t.Setenv("HF_TOKEN", "")
	if code, o := runCLI("init", "hf://datasets/owner/gated", "-O", "-"); code == 0 || !strings.Contains(o, "dataset owner/gated is gated: accept its terms on "+hub+"/datasets/owner/gated and set HF_TOKEN") {
		t.Fatalf("gated: %d\n%s", code, o)
	}
}

type woltRow struct {
	Name   string `parquet:"name"`
	Vector string `parquet:"vector"`
}

// Vectors stored as JSON text in a string column (Qdrant/wolt-food-clip):
// init finds them and writes json_vectors; the pipeline applies.
func TestInitJSONTextVectors(t *testing.T) {
	dir := t.TempDir()
	f, _ := os.Create(filepath.Join(dir, "wolt.parquet"))
	w := parquet.NewGenericWriter[woltRow](f)
	var rows []woltRow
	for i := 0; i < 20; i++ {
		rows = append(rows, woltRow{Name: fmt.Sprint("dish ", i), Vector: fmt.Sprintf("[%d.5, -0.25, 1e-3, %d]", i, i+1)})
	}
	w.Write(rows)
	w.Close()
	f.Close()
	out := filepath.Join(t.TempDir(), "p.yaml")
	if code, o := runCLI("init", filepath.Join(dir, "wolt.parquet"), "-O", out); code != 0 {
		t.Fatalf("init: %d %s", code, o)
	}
	b, _ := os.ReadFile(out)
	if !strings.Contains(string(b), `json_vectors: "vector"`) || !strings.Contains(string(b), "vector: { size: 4") {
		t.Fatalf("pipeline:\n%s", b)
	}
	testkit.EmulatorEnv(t, qdrantemu.Options{})
	if code, o := runCLI("apply", out, "--progress", "never"); code != 0 || !strings.Contains(o, "Apply complete: 20 points written") {
		t.Fatalf("apply: %d\n%s\n%s", code, o, b)
	}
}

// init on a Parquet file written by Arrow with a list<list<float>> column
// and two sparse indices/values pairs (testdata/vectors/mixed.parquet)
// proposes a multivector and two sparse vectors, and the pipeline applies
// as written, every row loaded.
func TestInitProposesMultivectorAndSparse(t *testing.T) {
	out := filepath.Join(t.TempDir(), "p.yaml")
	src, _ := filepath.Abs("../../testdata/vectors/mixed.parquet")
	if code, o := runCLI("init", src, "-O", out); code != 0 {
		t.Fatalf("init: %d\n%s", code, o)
	}
	b, _ := os.ReadFile(out)
	for _, want := range []string{
		"tokens: { size: 6, distance: Cosine, multivector: { comparator: max_sim } }",
		"sparse_vectors:", "sp: {}", "bm: {}",
		"sp: { source: mixed, indices: sp_idx, values: sp_val }",
		"bm: { source: mixed, indices: bm_idx, values: bm_val }",
		"tokens: { source: mixed, column: tokens }",
		"dense16: { size: 4, distance: Cosine, datatype: float16 }",
		"id: { column: id }",
	} {
		if !strings.Contains(string(b), want) {
			t.Errorf("pipeline lacks %q:\n%s", want, b)
		}
	}
	if strings.Contains(string(b), "Not used as vectors") {
		t.Errorf("sparse values reported as varying-width vectors:\n%s", b)
	}
	testkit.EmulatorEnv(t, qdrantemu.Options{})
	if code, o := runCLI("apply", out, "--progress", "never"); code != 0 || !strings.Contains(o, "Apply complete: 300 points written") {
		t.Fatalf("apply: %d\n%s\n%s", code, o, b)
	}
}

// DataComp's layout (hash-named <hash>.parquet beside <hash>.npz holding
// four arrays): init groups the files by kind into globs paired by hash,
// proposes one source per npz array, DataComp's text uid as the point id,
// and the pipeline applies unchanged — from a directory and from the Hub.
func TestInitHashNamedShards(t *testing.T) {
	src, _ := filepath.Abs("../../testdata/datacomp_small")
	out := filepath.Join(t.TempDir(), "p.yaml")
	if code, o := runCLI("init", src, "-o", out); code != 0 {
		t.Fatalf("init: %d\n%s", code, o)
	}
	b, _ := os.ReadFile(out)
	for _, want := range []string{`path: "` + src + `/*.npz", array: l14_img`, `metadata: { path: "` + src + `/*.parquet" }`,
		"l14_img: { size: 768, distance: Cosine, datatype: float16 }", "b32_txt: { size: 512", "id: { column: uid }", "exclude: [face_bboxes]"} {
		if !strings.Contains(string(b), want) {
			t.Errorf("pipeline lacks %q:\n%s", want, b)
		}
	}
	testkit.EmulatorEnv(t, qdrantemu.Options{})
	if code, o := runCLI("apply", out, "--progress", "never"); code != 0 || !strings.Contains(o, "Apply complete: 60 points written") {
		t.Fatalf("apply: %d\n%s\n%s", code, o, b)
	}

	hub := testkit.ServeHF(t, src, "mlfoundations/datacomp_small")
	t.Setenv("HF_ENDPOINT", hub)
	code, o := runCLI("init", "hf://datasets/mlfoundations/datacomp_small", "-o", "-")
	if code != 0 || !strings.Contains(o, `url: "hf://datasets/mlfoundations/datacomp_small/*.npz", array: l14_txt`) ||
		!strings.Contains(o, `metadata: { url: "hf://datasets/mlfoundations/datacomp_small/*.parquet" }`) {
		t.Fatalf("init from the hub: %d\n%s", code, o)
	}
	out2 := filepath.Join(t.TempDir(), "hub.yaml")
	if code, o := runCLI("init", "hf://datasets/mlfoundations/datacomp_small", "-o", out2); code != 0 {
		t.Fatalf("init from the hub: %d\n%s", code, o)
	}
	hb, _ := os.ReadFile(out2)
	os.WriteFile(out2, []byte(strings.Replace(string(hb), "  name: datacomp_small\n  on_exists", "  name: datacomp_hub\n  on_exists", 1)), 0o644)
	if code, o := runCLI("apply", out2, "--progress", "never"); code != 0 || !strings.Contains(o, "Apply complete: 60 points written") {
		t.Fatalf("apply from the hub: %d\n%s", code, o)
	}
}

// Source names drop the extension and the shard number, and keep digits
// that are part of the name: a single file, and groups however they are
// numbered (Hugging Face's -NNNNN-of-NNNNN, clip-retrieval's _N, none).
func TestInitSourceNames(t *testing.T) {
	for _, c := range []struct {
		names []string
		want  string
	}{
		{[]string{"img_emb_0000.npy"}, "img_emb"},
		{[]string{"metadata_0.parquet"}, "metadata"},
		{[]string{"part-3.parquet"}, "part"},
		{[]string{"train-00000-of-00001.parquet"}, "train"},
		{[]string{"clip_vit_b32.parquet"}, "clip_vit_b32"},
		{[]string{"emb2.npy"}, "emb2"},
		{[]string{"data_v2.parquet"}, "data_v2"},
		{[]string{"0001.npy"}, "0001"},
		{[]string{"train-00000-of-00003.parquet", "train-00001-of-00003.parquet"}, "train"},
		{[]string{"img_emb_0.npy", "img_emb_1.npy", "img_emb_12.npy"}, "img_emb"},
		{[]string{"shard0.npy", "shard1.npy"}, "shard"},
		{[]string{"clip_vit_b32_000.parquet", "clip_vit_b32_001.parquet"}, "clip_vit_b32"},
		{[]string{"part-00000-model2.npy", "part-00001-model2.npy"}, "part-model2"},
		{[]string{"000.npy", "001.npy"}, ""},
	} {
		if got := stemOf(c.names...); got != c.want {
			t.Errorf("stemOf(%q) = %q, want %q", c.names, got, c.want)
		}
	}
	hf := t.TempDir()
	hfShards(t, hf, "train", 3)
	code, o := runCLI("init", hf, "-O", "-")
	if code != 0 || !strings.Contains(o, "\n  train: { path: ") || !strings.Contains(o, "train-{00000..00002}-of-00003.parquet") {
		t.Fatalf("init: %d\n%s", code, o)
	}
}

// Files given one by one (a shell glob) are grouped as a directory's are:
// a numbered set becomes one shard-set source with its range, hash-named
// files one glob per kind; files no range names exactly are refused, and
// sets of different sizes (two splits) do not pair.
func TestInitFileArguments(t *testing.T) {
	hf := t.TempDir()
	train := hfShards(t, hf, "train", 3)
	code, o := runCLI(append([]string{"init", "-O", "-"}, train[2], train[0], train[1])...)
	if code != 0 || !strings.Contains(o, `  train: { path: "`+hf+`/train-{00000..00002}-of-00003.parquet" }`) || strings.Contains(o, "train2") {
		t.Fatalf("init of three shard files: %d\n%s", code, o)
	}
	if code, o := runCLI("init", "-O", "-", train[0], train[2]); code == 0 || !strings.Contains(o, "not numbered contiguously, so no {A..B} range names exactly these files") {
		t.Fatalf("init of shards 0 and 2: %d\n%s", code, o)
	}
	hfShards(t, hf, "test", 1)
	if code, o := runCLI("init", "-O", "-", hf); code == 0 || !strings.Contains(o, "the sources do not pair up: their file counts differ (test 1, train 3)") {
		t.Fatalf("init of two splits: %d\n%s", code, o)
	}
	// The same over HTTP: numbered URLs become one range; signed ones
	// (a query string each) cannot.
	srv := httptest.NewServer(http.FileServer(http.Dir(hf)))
	defer srv.Close()
	code, o = runCLI("init", "-O", "-", srv.URL+"/train-00001-of-00003.parquet", srv.URL+"/train-00000-of-00003.parquet")
	if code != 0 || !strings.Contains(o, `  train: { url: "`+srv.URL+`/train-{00000..00001}-of-00003.parquet" }`) {
		t.Fatalf("init of two shard URLs: %d\n%s", code, o)
	}
	// A range or a glob as a config writes it (quoted, so no shell expands
	// it) is one source too.
	for _, arg := range []string{srv.URL + "/train-{00000..00002}-of-00003.parquet", hf + "/train-{00000..00002}-of-00003.parquet", hf + "/train-*.parquet"} {
		key := "path"
		if strings.HasPrefix(arg, "http") {
			key = "url"
		}
		if code, o := runCLI("init", "-O", "-", arg); code != 0 || !strings.Contains(o, "  train: { "+key+": \""+arg+"\" }   # parquet, 3 shards") {
			t.Fatalf("init %s: %d\n%s", arg, code, o)
		}
	}
	if code, o := runCLI("init", "-O", "-", hf+"/nope-*.parquet"); code == 0 || !strings.Contains(o, "matches no file") {
		t.Fatalf("init of a glob matching nothing: %d\n%s", code, o)
	}
	if code, o := runCLI("init", "-O", "-", srv.URL+"/train-00000-of-00003.parquet?sig=a", srv.URL+"/train-00001-of-00003.parquet?sig=b"); code == 0 || !strings.Contains(o, "numbered URLs with query strings (signed URLs) cannot be one source") || strings.Contains(o, "sig=") {
		t.Fatalf("init of two signed shard URLs: %d\n%s", code, o)
	}
	if code, o := runCLI("init", "-O", "-", srv.URL+"/3aed1e96abb8a0b9e204a8b6398fefac.parquet", srv.URL+"/6e84e6c9b0bdf3c599371a755d7d6646.parquet"); code == 0 || !strings.Contains(o, "named by hash, so only a glob names them, and a URL cannot be one") {
		t.Fatalf("init of two hash-named URLs: %d\n%s", code, o)
	}
	dc, _ := filepath.Abs("../../testdata/datacomp_small")
	files, _ := filepath.Glob(filepath.Join(dc, "*"))
	code, o = runCLI(append([]string{"init", "-O", "-"}, files...)...)
	if code != 0 || !strings.Contains(o, `metadata: { path: "`+dc+`/*.parquet" }`) || !strings.Contains(o, `path: "`+dc+`/*.npz", array: l14_img`) {
		t.Fatalf("init of DataComp's files one by one: %d\n%s", code, o)
	}
}

// A Hub repository with two splits: init on the repository refuses to pair
// them; init on one split's glob writes that split as one shard set.
func TestInitHuggingFaceSplit(t *testing.T) {
	repo := t.TempDir()
	hfShards(t, filepath.Join(repo, "data"), "train", 2)
	hfShards(t, filepath.Join(repo, "data"), "test", 1)
	hub := testkit.ServeHF(t, repo, "owner/splits")
	t.Setenv("HF_ENDPOINT", hub)
	if code, o := runCLI("init", "hf://datasets/owner/splits", "-O", "-"); code == 0 || !strings.Contains(o, "their file counts differ (test 1, train 2)") {
		t.Fatalf("init of the repository: %d\n%s", code, o)
	}
	out := filepath.Join(t.TempDir(), "p.yaml")
	code, o := runCLI("init", "hf://datasets/owner/splits/data/train-*.parquet", "-O", out)
	b, _ := os.ReadFile(out)
	if code != 0 || !strings.Contains(string(b), "  train: { url: \""+hub+"/datasets/owner/splits/resolve/main/data/train-{00000..00001}-of-00002.parquet\" }") || strings.Contains(string(b), "test") {
		t.Fatalf("init of the train split: %d\n%s\n%s", code, o, b)
	}
	testkit.EmulatorEnv(t, qdrantemu.Options{})
	if code, o := runCLI("apply", out, "--progress", "never"); code != 0 || !strings.Contains(o, "Apply complete: 40 points written") {
		t.Fatalf("apply: %d\n%s\n%s", code, o, b)
	}
}

// hfShards writes n Hugging Face-named shards of a small embedded-vector
// table (SPLIT-0000k-of-0000n.parquet, 20 rows each) into dir.
func hfShards(t *testing.T, dir, split string, n int) []string {
	t.Helper()
	src := t.TempDir()
	if err := sample.Generate(sample.Options{Rows: 20, Dim: 4, Seed: 3, Out: src, Embedded: true}); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(src, "data.parquet"))
	if err != nil {
		t.Fatal(err)
	}
	os.MkdirAll(dir, 0o755)
	var out []string
	for k := 0; k < n; k++ {
		out = append(out, filepath.Join(dir, fmt.Sprintf("%s-%05d-of-%05d.parquet", split, k, n)))
		if err := os.WriteFile(out[k], b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return out
}

// A file shorter than its header says (an interrupted download) is said
// by init, naming the file, rather than written into the config.
func TestInitTruncatedFile(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "img_emb_0.npy")
	hdr := "{'descr': '<f2', 'fortran_order': False, 'shape': (1000, 8), }"
	hdr += strings.Repeat(" ", 117-len(hdr)) + "\n"
	data := append([]byte("\x93NUMPY\x01\x00v\x00"+hdr), make([]byte, 2*8*10)...) // 10 of 1000 rows
	os.WriteFile(p, data, 0o644)
	code, o := runCLI("init", dir, "-O", "-")
	if code == 0 || !strings.Contains(o, p+": file is truncated: header npy v1.0 <f2 C-order shape (1000, 8) needs 16128 bytes, file has 288") {
		t.Fatalf("init: %d\n%s", code, o)
	}
}

// Sources pair shard by shard: a dump where each kind lacks a different
// shard (the file counts agree) is refused, naming what each lacks — it
// wrote a config that plan then refused — and one missing file is named.
func TestInitNamesMissingShards(t *testing.T) {
	data := clipShards(t, 5, 10, 8)
	os.Remove(filepath.Join(data, "metadata_0004.parquet"))
	if code, o := runCLI("init", data, "-O", "-"); code == 0 || !strings.Contains(o, "the sources do not pair up shard by shard: metadata lacks shard 4 (files: img_emb 5, metadata 4, text_emb 5)") {
		t.Fatalf("one missing file: %d\n%s", code, o)
	}
	os.Remove(filepath.Join(data, "img_emb_0001.npy"))
	os.Remove(filepath.Join(data, "text_emb_0003.npy"))
	if code, o := runCLI("init", data, "-O", "-"); code == 0 || !strings.Contains(o, "img_emb lacks shard 1; metadata lacks shard 4; text_emb lacks shard 3 (files: img_emb 4, metadata 4, text_emb 4)") {
		t.Fatalf("equal counts, other shards: %d\n%s", code, o)
	}
}
