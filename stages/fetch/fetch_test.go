package fetch_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	_ "github.com/snappipe/snappipe/formats/all"
	"github.com/snappipe/snappipe/pipeline"
	"github.com/snappipe/snappipe/pipeline/config"
	"github.com/snappipe/snappipe/pipeline/stagetest"
	"github.com/snappipe/snappipe/stages/fetch"
)

// server serves one snapshot file over Qdrant's REST download path and
// counts requests; it checks the api-key.
func server(t *testing.T, name string, body []byte) (*httptest.Server, *atomic.Int64) {
	var n atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n.Add(1)
		if r.Header.Get("api-key") != "k" {
			http.Error(w, "no key", http.StatusUnauthorized)
			return
		}
		if r.URL.Path != "/collections/C/snapshots/"+name {
			http.NotFound(w, r)
			return
		}
		w.Write(body)
	}))
	t.Cleanup(srv.Close)
	return srv, &n
}

func setup(t *testing.T, restBase string, seed func(*pipeline.State)) (*pipeline.Runtime, string) {
	t.Helper()
	dir := t.TempDir()
	cfg, err := config.Load("p.yaml", []byte(`version: 1
name: f
qdrant: { api_key: k }
collection: { name: C, vectors: { v: { size: 3, distance: Dot } } }
sources: { s: { path: s.npy } }
points: { vectors: { v: s } }
upload: { max_attempts: 2 }
snapshot: { destination: out }
`), dir, config.LoadOptions{Lookup: func(string) (string, bool) { return "", false }})
	if err != nil {
		t.Fatal(err)
	}
	rt, _ := stagetest.Runtime(t, cfg, seed)
	rt.RESTBase = restBase
	return rt, filepath.Join(dir, "out")
}

func run(t *testing.T, rt *pipeline.Runtime, snap *pipeline.SnapshotReady) error {
	t.Helper()
	st, err := fetch.New(&pipeline.Node{ID: "fetch", Kind: pipeline.KindFetch}, rt)
	if err != nil {
		t.Fatal(err)
	}
	out, err := stagetest.Run(context.Background(), "fetch", fetch.Ports, st, map[string][]pipeline.Message{"snapshot": {snap}})
	if err != nil {
		if len(out) != 0 {
			t.Fatalf("a failed fetch emitted %v", out)
		}
		return err
	}
	// A verified snapshot is handed on (to restore stages) with its file,
	// size and digest, and its manifest lies beside it.
	if len(out) != 1 {
		t.Fatalf("fetch emitted %v", out)
	}
	f, ok := out[0].(*pipeline.SnapshotFile)
	if !ok || f.Name != snap.Name || f.SHA256 != rt.Summary.SnapshotSHA256 || f.Size != rt.Summary.SnapshotSize || filepath.Base(f.Path) != snap.Name {
		t.Fatalf("fetch emitted %+v", out[0])
	}
	if _, err := os.Stat(f.Path + ".json"); err != nil {
		t.Fatalf("no manifest: %v", err)
	}
	return nil
}

func sum(b []byte) string { s := sha256.Sum256(b); return hex.EncodeToString(s[:]) }

func TestFetchVerifiesAndKeepsOnlyGoodFiles(t *testing.T) {
	body := []byte(strings.Repeat("snapshot bytes ", 1000))
	srv, n := server(t, "C-1.snapshot", body)
	rt, out := setup(t, srv.URL, nil)
	if err := run(t, rt, &pipeline.SnapshotReady{Name: "C-1.snapshot", Size: int64(len(body)), Checksum: strings.ToUpper(sum(body))}); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(out, "C-1.snapshot"))
	if err != nil || string(b) != string(body) {
		t.Fatalf("file: %v", err)
	}
	if rt.Summary.SnapshotSHA256 != sum(body) || rt.Summary.SnapshotSize != int64(len(body)) {
		t.Fatalf("summary %+v", rt.Summary)
	}
	// Done and verified: a second run makes no request.
	before := n.Load()
	if err := run(t, rt, &pipeline.SnapshotReady{Name: "C-1.snapshot", Checksum: sum(body)}); err != nil || n.Load() != before {
		t.Fatalf("second run: %v, %d requests", err, n.Load()-before)
	}
}

func TestFetchRefusesWrongChecksum(t *testing.T) {
	body := []byte("the bytes")
	srv, n := server(t, "C-2.snapshot", body)
	rt, out := setup(t, srv.URL, nil)
	err := run(t, rt, &pipeline.SnapshotReady{Name: "C-2.snapshot", Checksum: strings.Repeat("0", 64)})
	if err == nil || !strings.Contains(err.Error(), "checksum mismatch") {
		t.Fatalf("err = %v", err)
	}
	if n.Load() != 2 {
		t.Fatalf("%d requests, want 2 (upload.max_attempts)", n.Load())
	}
	if ents, _ := os.ReadDir(out); len(ents) != 0 {
		t.Fatalf("kept %v after a mismatch", ents)
	}
}

func TestFetchRefusesUnsafeNames(t *testing.T) {
	srv, n := server(t, "x", nil)
	rt, _ := setup(t, srv.URL, nil)
	for _, name := range []string{"../evil.snapshot", "a/b", "..", ""} {
		if err := run(t, rt, &pipeline.SnapshotReady{Name: name}); err == nil || !strings.Contains(err.Error(), "refusing snapshot name") {
			t.Fatalf("%q: %v", name, err)
		}
	}
	if n.Load() != 0 {
		t.Fatalf("%d requests for unsafe names", n.Load())
	}
}

// A destination that cannot hold the snapshot is found before the load:
// by plan (without creating anything) and by apply's preflight.
func TestDestinationChecks(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "file")
	os.WriteFile(file, []byte("x"), 0o644)
	for _, create := range []bool{false, true} {
		if err := fetch.CheckDestination(file, create); err == nil {
			t.Errorf("create=%v: a file accepted as the destination", create)
		}
		if err := fetch.CheckDestination(filepath.Join(file, "sub"), create); err == nil {
			t.Errorf("create=%v: a directory under a file accepted", create)
		}
		if err := fetch.CheckDestination(filepath.Join(dir, "new", "deeper"), create); err != nil {
			t.Errorf("create=%v: a creatable directory refused: %v", create, err)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "new", "deeper")); err != nil {
		t.Error("preflight did not create the destination")
	}
	if left, _ := filepath.Glob(filepath.Join(dir, "new", "deeper", "*")); len(left) != 0 {
		t.Errorf("probe files left: %v", left)
	}
	if os.Geteuid() != 0 {
		ro := filepath.Join(dir, "ro")
		os.Mkdir(ro, 0o555)
		for _, create := range []bool{false, true} {
			if err := fetch.CheckDestination(ro, create); err == nil {
				t.Errorf("create=%v: a read-only directory accepted", create)
			}
		}
	}
}
