package e2e_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/parquet-go/parquet-go"

	"github.com/snappipe/snappipe/internal/qdrantemu"
	"github.com/snappipe/snappipe/internal/sample"
	"github.com/snappipe/snappipe/internal/testkit"
	"github.com/snappipe/snappipe/pipeline"
)

// Each shipped dataset config runs unchanged (but for HF_ENDPOINT and a
// smaller limit) against a miniature of its dataset's layout served by a
// fake Hugging Face hub.
func datasetEnv(t *testing.T, repoDir, repo, config string) (*env, string) {
	t.Helper()
	hub := testkit.ServeHF(t, repoDir, repo)
	e := newEnv(t, qdrantemu.Options{})
	e.vars["HF_ENDPOINT"] = hub
	b, err := os.ReadFile(filepath.Join("..", "configs", config))
	if err != nil {
		t.Fatal(err)
	}
	return e, strings.ReplaceAll(string(b), "${QDRANT_URL:-http://localhost:6333}", "${QDRANT_URL}")
}

func place(t *testing.T, from, to string) {
	t.Helper()
	os.MkdirAll(filepath.Dir(to), 0o755)
	if err := os.Rename(from, to); err != nil {
		t.Fatal(err)
	}
}

func TestDatasetConfigCatStateClip(t *testing.T) {
	repo := t.TempDir()
	tmp := t.TempDir()
	if err := sample.Generate(sample.Options{Rows: 40, Dim: 512, Seed: 5, Out: tmp}); err != nil {
		t.Fatal(err)
	}
	base := filepath.Join(repo, "laion-embeds-openai-vit-b-32")
	place(t, filepath.Join(tmp, "metadata_0000.parquet"), filepath.Join(base, "metadata", "metadata_0.parquet"))
	place(t, filepath.Join(tmp, "img_emb_0000.npy"), filepath.Join(base, "img_emb", "img_emb_0.npy"))
	place(t, filepath.Join(tmp, "text_emb_0000.npy"), filepath.Join(base, "text_emb", "text_emb_0.npy"))
	e, y := datasetEnv(t, repo, "cat-state/clip-embeddings", "cat-state-clip-embeddings.yaml")
	cfg := e.load(t, t.TempDir(), y)
	sum, err := e.apply(t, cfg, pipeline.ApplyOptions{})
	if err != nil || sum.PointsWritten != 40 {
		t.Fatalf("%v, %+v", err, sum)
	}
	img := npyRows(t, filepath.Join(base, "img_emb", "img_emb_0.npy"))
	pts := e.scroll(t, "cat-state-clip")
	if len(pts) != 40 || !equalF32(vectorOf(pts[7], "image"), img[7]) {
		t.Fatalf("%d points", len(pts))
	}
}

func TestDatasetConfigLaion1M(t *testing.T) {
	repo := t.TempDir()
	tmp := t.TempDir()
	if err := sample.Generate(sample.Options{Rows: 40, Dim: 1024, Seed: 6, Out: tmp}); err != nil {
		t.Fatal(err)
	}
	place(t, filepath.Join(tmp, "metadata_0000.parquet"), filepath.Join(repo, "metadata", "metadata_000.parquet"))
	place(t, filepath.Join(tmp, "img_emb_0000.npy"), filepath.Join(repo, "img_emb", "img_emb_000.npy"))
	place(t, filepath.Join(tmp, "text_emb_0000.npy"), filepath.Join(repo, "text_emb", "text_emb_000.npy"))
	e, y := datasetEnv(t, repo, "nousr/laion-1m-vit-h-14", "laion-1m-vit-h-14.yaml")
	cfg := e.load(t, t.TempDir(), strings.Replace(y, "limit: 50000", "limit: 30", 1))
	if sum, err := e.apply(t, cfg, pipeline.ApplyOptions{}); err != nil || sum.PointsWritten != 30 {
		t.Fatalf("%v, %+v", err, sum)
	}
}

type dbpediaRow struct {
	ID    string    `parquet:"_id"`
	Title string    `parquet:"title"`
	Text  string    `parquet:"text"`
	Emb   []float64 `parquet:"text-embedding-3-large-1536-embedding"`
}

func TestDatasetConfigDBpedia(t *testing.T) {
	repo := t.TempDir()
	os.MkdirAll(filepath.Join(repo, "data"), 0o755)
	var first []float64
	for k := 0; k < 26; k++ {
		f, err := os.Create(filepath.Join(repo, "data", fmt.Sprintf("train-%05d-of-00026.parquet", k)))
		if err != nil {
			t.Fatal(err)
		}
		w := parquet.NewGenericWriter[dbpediaRow](f)
		var rows []dbpediaRow
		for i := 0; i < 3; i++ {
			emb := make([]float64, 1536)
			for j := range emb {
				emb[j] = float64(k*1000+i*10+j%7) / 1000
			}
			if k == 0 && i == 0 {
				first = emb
			}
			rows = append(rows, dbpediaRow{ID: fmt.Sprintf("<dbpedia:E%d_%d>", k, i), Title: "t", Text: "x", Emb: emb})
		}
		w.Write(rows)
		w.Close()
		f.Close()
	}
	e, y := datasetEnv(t, repo, "Qdrant/dbpedia-entities-openai3-text-embedding-3-large-1536-1M", "dbpedia-openai3-1536.yaml")
	cfg := e.load(t, t.TempDir(), strings.Replace(y, "limit: 10000", "limit: 50", 1))
	sum, err := e.apply(t, cfg, pipeline.ApplyOptions{})
	if err != nil || sum.PointsWritten != 50 {
		t.Fatalf("%v, %+v", err, sum)
	}
	pts := e.scroll(t, "dbpedia-openai3-1536")
	v := vectorOf(pts[0], "embedding")
	if len(pts) != 50 || len(v) != 1536 || pts[0].GetPayload()["_id"].GetStringValue() != "<dbpedia:E0_0>" {
		t.Fatalf("%d points, payload %v", len(pts), pts[0].GetPayload())
	}
	if first == nil {
		t.Fatal("no first row")
	}
}

// DataComp's layout: shards named by hash (<hash>.parquet beside
// <hash>.npz with l14_img/l14_txt), listed by a glob over the fake hub and
// paired by hash; ids are DataComp's uids; every row's vectors match the
// npz member (read back through the point's uid).
func TestDatasetConfigDataCompSmall(t *testing.T) {
	src, _ := filepath.Abs(filepath.Join("..", "testdata", "datacomp_small"))
	e, y := datasetEnv(t, src, "mlfoundations/datacomp_small", "datacomp-small.yaml")
	cfg := e.load(t, t.TempDir(), strings.Replace(y, "limit: 50000", "limit: 50", 1))
	sum, err := e.apply(t, cfg, pipeline.ApplyOptions{})
	if err != nil || sum.PointsWritten != 50 {
		t.Fatalf("%v, %+v", err, sum)
	}
	pts := e.scroll(t, "datacomp-small")
	if len(pts) != 50 {
		t.Fatalf("%d points", len(pts))
	}
	// Shards in hash order: 3aed… (20 rows), 6e84… (25), d102… (15); the
	// limit takes the first two whole and 5 rows of the third.
	byUID := map[string][]float32{}
	inThird := 0
	for _, shard := range []string{"3aed1e96abb8a0b9e204a8b6398fefac", "6e84e6c9b0bdf3c599371a755d7d6646", "d102e77ab74a914834670aa538f7f060"} {
		uids := testkit.ParquetColumn(t, filepath.Join(src, shard+".parquet"), "uid")
		img := testkit.NpzRows(t, filepath.Join(src, shard+".npz"), "l14_img")
		for i, u := range uids {
			if shard[0] == 'd' && i >= 5 {
				break // beyond the limit
			}
			byUID[u.(string)] = img[i]
		}
	}
	for _, p := range pts {
		uid := strings.ReplaceAll(p.GetId().GetUuid(), "-", "")
		want, ok := byUID[uid]
		if !ok || !equalF32(vectorOf(p, "image"), want) {
			t.Fatalf("point %s: image vector differs or uid unknown", p.GetId().GetUuid())
		}
		if p.GetPayload()["clip_l14_similarity_score"] == nil || p.GetPayload()["face_bboxes"] != nil {
			t.Fatalf("payload %v", p.GetPayload())
		}
		if strings.HasPrefix(p.GetPayload()["url"].GetStringValue(), "https://example.com/1/") {
			inThird++ // fixture shard k=1 is d102…
		}
	}
	if inThird != 5 {
		t.Fatalf("%d points from the third shard in hash order, want 5", inThird)
	}
	// A missing npz is named by its hash before anything is loaded.
	repo2 := t.TempDir()
	for _, f := range []string{"3aed1e96abb8a0b9e204a8b6398fefac.parquet", "3aed1e96abb8a0b9e204a8b6398fefac.npz", "6e84e6c9b0bdf3c599371a755d7d6646.parquet"} {
		b, _ := os.ReadFile(filepath.Join(src, f))
		os.WriteFile(filepath.Join(repo2, f), b, 0o644)
	}
	e2, y2 := datasetEnv(t, repo2, "mlfoundations/datacomp_small", "datacomp-small.yaml")
	_, err = e2.apply(t, e2.load(t, t.TempDir(), y2), pipeline.ApplyOptions{})
	if err == nil || !strings.Contains(err.Error(), "image shard 6e84e6c9b0bdf3c599371a755d7d6646") || e2.count(t, "datacomp-small") != 0 {
		t.Fatalf("missing npz: %v", err)
	}
}
