package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/snappipe/snappipe/internal/qdrantemu"
	"github.com/snappipe/snappipe/internal/testkit"
)

// A cluster snapshot of 3 peers x 6 shards, restored from its manifest
// onto a fresh cluster of 2 peers: every point comes back, and each target
// peer reports all 6 shards (local + remote).
func TestRestoreClusterManifest(t *testing.T) {
	src, srcClient := testkit.Cluster(t, 3, qdrantemu.Options{})
	dst, dstClient := testkit.Cluster(t, 2, qdrantemu.Options{})
	sample := sampleDir()
	dir := t.TempDir()
	cfg := filepath.Join(dir, "p.yaml")
	os.WriteFile(cfg, []byte(fmt.Sprintf(`version: 1
name: cl
qdrant: { %s }
collection: { name: cl, on_exists: recreate, shard_number: 6, vectors: { image: { size: 768, distance: Cosine } } }
sources: { image: { path: "%s/img_emb_0000.npy" } }
points: { limit: 500, vectors: { image: image } }
snapshot: { destination: out, scope: cluster }
`, clusterQdrant(src), sample)), 0o644)
	t.Setenv("QDRANT_URL", "")
	run := func(args ...string) (int, string) {
		var out, errb bytes.Buffer
		code := execute(append(args, "--progress", "never"), strings.NewReader(""), &out, &errb)
		return code, out.String() + errb.String()
	}
	if code, out := run("apply", cfg); code != 0 {
		t.Fatalf("apply: %d\n%s", code, out)
	}
	manifests, _ := filepath.Glob(filepath.Join(dir, "out", "cl-*.manifest.json"))
	if len(manifests) != 1 {
		t.Fatalf("manifests %v", manifests)
	}
	code, out := run("snapshots", "restore", manifests[0], "--url", dst[0].URL(), "--grpc-port", testkit.GRPCPort(dst[0]),
		"--peer", dst[0].URL(), "--peer", dst[1].URL(), "--collection", "cl")
	if code != 0 || !strings.Contains(out, `Restored 6 shards into `+dst[0].URL()+` collection "cl" over 2 peers: 500 points`) {
		t.Fatalf("restore: %d\n%s", code, out)
	}
	// A second restore (as after an interrupted one) is exact too.
	if code, out := run("snapshots", "restore", manifests[0], "--url", dst[0].URL(), "--grpc-port", testkit.GRPCPort(dst[0]),
		"--peer", dst[0].URL(), "--peer", dst[1].URL(), "--collection", "cl", "-y"); code != 0 {
		t.Fatalf("second restore: %d\n%s", code, out)
	}
	a, b := testkit.ScrollAll(t, srcClient, "cl"), testkit.ScrollAll(t, dstClient, "cl")
	if len(a) != 500 || len(b) != 500 {
		t.Fatalf("%d vs %d points", len(a), len(b))
	}
	for i := range a {
		if a[i].GetId().GetNum() != b[i].GetId().GetNum() || !testkit.EqualF32(testkit.VectorOf(a[i], "image"), testkit.VectorOf(b[i], "image")) {
			t.Fatalf("point %d differs", i)
		}
	}
	for i, p := range dst {
		resp, err := http.Get(p.URL() + "/collections/cl/cluster")
		if err != nil {
			t.Fatal(err)
		}
		var ci struct {
			Result struct {
				Local  []any `json:"local_shards"`
				Remote []any `json:"remote_shards"`
			} `json:"result"`
		}
		json.NewDecoder(resp.Body).Decode(&ci)
		resp.Body.Close()
		if len(ci.Result.Local)+len(ci.Result.Remote) != 6 || len(ci.Result.Local) != 3 {
			t.Fatalf("target peer %d: %d local + %d remote shards", i, len(ci.Result.Local), len(ci.Result.Remote))
		}
	}
}

// scope: cluster with an s3:// destination: six shard objects and the
// manifest object, no unfinished upload; the manifest in S3 restores onto
// a 2-peer cluster, each peer recovering its shards from presigned URLs.
func TestClusterScopeToS3(t *testing.T) {
	store := testkit.StartS3(t)
	store.Bucket(t, "snaps")
	src, srcClient := testkit.Cluster(t, 3, qdrantemu.Options{})
	dst, dstClient := testkit.Cluster(t, 2, qdrantemu.Options{})
	sample := sampleDir()
	dir := t.TempDir()
	cfg := filepath.Join(dir, "p.yaml")
	os.WriteFile(cfg, []byte(fmt.Sprintf(`version: 1
name: cls3
qdrant: { %s }
collection: { name: cls3, on_exists: recreate, shard_number: 6, vectors: { image: { size: 768, distance: Cosine } } }
sources: { image: { path: "%s/img_emb_0000.npy" } }
points: { limit: 400, vectors: { image: image } }
snapshot:
  destination: s3://snaps/cluster/
  scope: cluster
  s3: { endpoint: "%s", force_path_style: true }
`, clusterQdrant(src), sample, store.Endpoint)), 0o644)
	t.Setenv("QDRANT_URL", "")
	run := func(args ...string) (int, string) {
		var out, errb bytes.Buffer
		code := execute(append(args, "--progress", "never"), strings.NewReader(""), &out, &errb)
		return code, out.String() + errb.String()
	}
	if code, out := run("apply", cfg); code != 0 {
		t.Fatalf("apply: %d\n%s", code, out)
	}
	objs := store.Objects(t, "snaps")
	var manifest string
	shards := 0
	for k := range objs {
		switch {
		case strings.HasSuffix(k, ".manifest.json"):
			manifest = k
		case strings.Contains(k, "-shard-"):
			shards++
		}
	}
	if shards != 6 || manifest == "" || len(objs) != 7 || store.Uploads(t, "snaps") != 0 {
		t.Fatalf("objects %v, %d uploads", objs, store.Uploads(t, "snaps"))
	}
	code, out := run("snapshots", "restore", "s3://snaps/"+manifest, "--url", dst[0].URL(), "--grpc-port", testkit.GRPCPort(dst[0]),
		"--peer", dst[0].URL(), "--peer", dst[1].URL(), "--collection", "cls3", "--s3-endpoint", store.Endpoint, "--s3-path-style")
	if code != 0 || !strings.Contains(out, "400 points") {
		t.Fatalf("restore: %d\n%s", code, out)
	}
	a, b := testkit.ScrollAll(t, srcClient, "cls3"), testkit.ScrollAll(t, dstClient, "cls3")
	if len(a) != 400 || len(b) != 400 {
		t.Fatalf("%d vs %d", len(a), len(b))
	}
}

// sampleDir is the shipped sample data.
func sampleDir() string {
	wd, _ := os.Getwd()
	return filepath.Join(wd, "..", "..", "testdata", "sample")
}

// clusterQdrant is the qdrant mapping's body for an emulator cluster: the
// first peer's REST and gRPC addresses and every peer.
func clusterQdrant(peers []*qdrantemu.Server) string {
	var urls []string
	for _, p := range peers {
		urls = append(urls, `"`+p.URL()+`"`)
	}
	return fmt.Sprintf(`url: "%s", grpc_port: %s, peers: [%s]`, peers[0].URL(), testkit.GRPCPort(peers[0]), strings.Join(urls, ", "))
}
