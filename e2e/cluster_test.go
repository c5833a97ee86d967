package e2e_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/qdrant/go-client/qdrant"

	"github.com/snappipe/snappipe/internal/qdrantemu"
	"github.com/snappipe/snappipe/internal/sample"
	"github.com/snappipe/snappipe/internal/testkit"
	"github.com/snappipe/snappipe/pipeline"
	"github.com/snappipe/snappipe/stages/all"
)

func clusterYAML(data string, peers []*qdrantemu.Server, scope string) string {
	var urls []string
	for _, p := range peers {
		urls = append(urls, `"`+p.URL()+`"`)
	}
	return fmt.Sprintf(`version: 1
name: clus
qdrant:
  url: "%s"
  grpc_port: %s
  peers: [%s]
collection:
  name: clus
  on_exists: recreate
  shard_number: 6
  vectors: { image: { size: 16, distance: Cosine }, text: { size: 16, distance: Dot } }
sources:
  metadata: { path: %[4]s/metadata_0000.parquet }
  image:    { path: %[4]s/img_emb_0000.npy }
  text:     { path: %[4]s/text_emb_0000.npy }
points:
  vectors: { image: image, text: text }
  payload: { source: metadata }
snapshot: { destination: out, scope: %[5]s }
`, peers[1].URL(), testkit.GRPCPort(peers[1]), strings.Join(urls, ", "), data, scope)
}

// snapshot.scope: cluster against 3 peers and 6 shards: six verified shard
// snapshot files, each from the peer holding it, and a manifest listing
// their SHA-256; together they hold every point (a plain collection
// snapshot through one peer does not: the pitfall).
func TestClusterScopeSnapshot(t *testing.T) {
	data := t.TempDir()
	if err := sample.Generate(sample.Options{Rows: 900, Dim: 16, Seed: 8, Out: data}); err != nil {
		t.Fatal(err)
	}
	peers, client := testkit.Cluster(t, 3, qdrantemu.Options{})
	e := newEnv(t, qdrantemu.Options{})
	delete(e.vars, "QDRANT_URL") // the file's url (a peer) must win
	dir := t.TempDir()
	cfg := e.load(t, dir, clusterYAML(data, peers, "cluster"))
	rep, err := pipeline.PlanRun(context.Background(), cfg, all.Registry(), "")
	if err != nil || !strings.Contains(rep.Text(), "shards on the peer that holds it (3 peers)") {
		t.Fatalf("plan: %v\n%s", err, rep.Text())
	}
	sum, err := e.apply(t, cfg, pipeline.ApplyOptions{})
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(sum.SnapshotPath)
	if err != nil {
		t.Fatal(err)
	}
	var m pipeline.ClusterManifest
	if err := json.Unmarshal(b, &m); err != nil || m.Kind != "cluster" || m.ShardCount != 6 || len(m.Shards) != 6 || m.Points != 900 {
		t.Fatalf("manifest %s: %+v %v", sum.SnapshotPath, m, err)
	}
	var points uint64
	for i, s := range m.Shards {
		if int(s.ShardID) != i || s.Peer != peers[i%3].URL() {
			t.Fatalf("shard %d: %+v", i, s)
		}
		if fileSHA(t, filepath.Join(dir, "out", s.File)) != s.SHA256 || s.SHA256 == "" {
			t.Fatalf("shard %d file does not match its SHA-256", i)
		}
		points += s.Points
	}
	if points != 900 {
		t.Fatalf("shards hold %d points", points)
	}
	// Restoring every shard file onto its holder in a fresh cluster gives
	// every point back.
	fresh, fc := testkit.Cluster(t, 3, qdrantemu.Options{})
	if err := fc.CreateCollection(context.Background(), &qdrant.CreateCollection{CollectionName: "clus", ShardNumber: qdrant.PtrOf(uint32(6)),
		VectorsConfig: qdrant.NewVectorsConfigMap(map[string]*qdrant.VectorParams{"image": {Size: 16, Distance: qdrant.Distance_Cosine}, "text": {Size: 16, Distance: qdrant.Distance_Dot}})}); err != nil {
		t.Fatal(err)
	}
	for _, s := range m.Shards {
		testkit.UploadShardSnapshot(t, fresh[int(s.ShardID)%3].URL(), "clus", int(s.ShardID), filepath.Join(dir, "out", s.File))
	}
	sameCollections(t, client, "clus", fc, "clus")
	// A re-apply creates nothing again.
	before := len(peers[0].OpsOf("shard-snapshot")) + len(peers[1].OpsOf("shard-snapshot")) + len(peers[2].OpsOf("shard-snapshot"))
	if _, err := e.apply(t, cfg, pipeline.ApplyOptions{}); err != nil {
		t.Fatal(err)
	}
	if after := len(peers[0].OpsOf("shard-snapshot")) + len(peers[1].OpsOf("shard-snapshot")) + len(peers[2].OpsOf("shard-snapshot")); after != before || before != 6 {
		t.Fatalf("shard snapshots: %d, then %d", before, after)
	}
	// Another destination: plan says so, apply takes new shard snapshots
	// there and writes a manifest beside them; then nothing is left.
	cfg.Snapshot.Destination = "elsewhere"
	if rep, err := pipeline.PlanRun(context.Background(), cfg, all.Registry(), ""); err != nil || !strings.Contains(rep.Text(), "write a cluster manifest to elsewhere") {
		t.Fatalf("plan, new destination: %v\n%s", err, rep.Text())
	}
	sum2, err := e.apply(t, cfg, pipeline.ApplyOptions{})
	if err != nil || filepath.Dir(sum2.SnapshotPath) != filepath.Join(dir, "elsewhere") {
		t.Fatalf("apply, new destination: %v %+v", err, sum2)
	}
	checkManifestBeside(t, "the new destination", sum2.SnapshotPath)
	if rep, err := pipeline.PlanRun(context.Background(), cfg, all.Registry(), ""); err != nil || rep.Pending() {
		t.Fatalf("plan after the new destination: %v\n%s", err, rep.Text())
	}
	// Stopped after its shards were written and before the manifest, then
	// another destination: the shards are taken again there, so the
	// manifest lists only files beside it.
	sf, _, err := pipeline.OpenState(filepath.Join(dir, ".snappipe", "clus.state.json"))
	if err != nil {
		t.Fatal(err)
	}
	sf.Update(func(s *pipeline.State) { s.Cluster.Done, s.Cluster.Manifest = false, "" })
	cfg.Snapshot.Destination = "third"
	sum3, err := e.apply(t, cfg, pipeline.ApplyOptions{})
	if err != nil || filepath.Dir(sum3.SnapshotPath) != filepath.Join(dir, "third") {
		t.Fatalf("apply after a stop before the manifest: %v %+v", err, sum3)
	}
	checkManifestBeside(t, "after a stop before the manifest", sum3.SnapshotPath)
	// Peers missing from qdrant.peers: the shards they hold are named.
	cfg2 := e.load(t, t.TempDir(), clusterYAML(data, peers[:2], "cluster"))
	cfg2.Qdrant.URL = peers[0].URL()
	_, err = e.apply(t, cfg2, pipeline.ApplyOptions{FullRefresh: true, ConfirmRecreate: func(string, uint64) error { return nil }})
	if err == nil || !strings.Contains(err.Error(), "shards 2, 5 of 6 are on no peer listed in qdrant.peers") {
		t.Fatalf("missing peer: %v", err)
	}
}

// checkManifestBeside checks that the cluster manifest at path lists the
// 6 shards and 900 points, each shard file beside it with its SHA-256.
func checkManifestBeside(t *testing.T, what, path string) {
	t.Helper()
	var m pipeline.ClusterManifest
	if b, err := os.ReadFile(path); err != nil || json.Unmarshal(b, &m) != nil || len(m.Shards) != 6 || m.Points != 900 {
		t.Fatalf("manifest, %s: %v %+v", what, err, m)
	}
	for _, s := range m.Shards {
		f := filepath.Join(filepath.Dir(path), s.File)
		if _, err := os.Stat(f); err != nil || fileSHA(t, f) != s.SHA256 {
			t.Fatalf("%s: shard %d is not beside the manifest with its SHA-256: %v", what, s.ShardID, err)
		}
	}
}

// The pitfall this exists for: scope: collection through one peer of the
// cluster snapshots only that peer's shards.
func TestCollectionScopeOnAClusterIsPartial(t *testing.T) {
	data := t.TempDir()
	if err := sample.Generate(sample.Options{Rows: 600, Dim: 16, Seed: 8, Out: data}); err != nil {
		t.Fatal(err)
	}
	peers, _ := testkit.Cluster(t, 3, qdrantemu.Options{})
	e := newEnv(t, qdrantemu.Options{})
	delete(e.vars, "QDRANT_URL") // the file's url (a peer) must win
	cfg := e.load(t, t.TempDir(), clusterYAML(data, peers, "collection"))
	sum, err := e.apply(t, cfg, pipeline.ApplyOptions{})
	if err != nil {
		t.Fatal(err)
	}
	single := newEnv(t, qdrantemu.Options{})
	testkit.RecoverSnapshot(t, single.srv.URL(), "", "got", sum.SnapshotPath)
	if n := single.count(t, "got"); n == 0 || n >= 600 {
		t.Fatalf("a one-peer collection snapshot restored %d of 600 points; it should hold only that peer's shards", n)
	}
}

// A restore: target of a cluster snapshot gets every shard onto the peer
// holding it in the target cluster (2 peers here), and the count checked.
func TestClusterRestoreTarget(t *testing.T) {
	data := t.TempDir()
	if err := sample.Generate(sample.Options{Rows: 450, Dim: 16, Seed: 8, Out: data}); err != nil {
		t.Fatal(err)
	}
	peers, client := testkit.Cluster(t, 3, qdrantemu.Options{})
	tgt, tc := testkit.Cluster(t, 2, qdrantemu.Options{APIKey: "k2"})
	e := newEnv(t, qdrantemu.Options{})
	delete(e.vars, "QDRANT_URL")
	y := clusterYAML(data, peers, "cluster") + fmt.Sprintf("restore:\n  - { url: %q, grpc_port: %s, api_key: k2, peers: [%q, %q], collection: copy, alias: live }\n",
		tgt[0].URL(), testkit.GRPCPort(tgt[0]), tgt[0].URL(), tgt[1].URL())
	cfg := e.load(t, t.TempDir(), y)
	if _, err := e.apply(t, cfg, pipeline.ApplyOptions{}); err != nil {
		t.Fatal(err)
	}
	sameCollections(t, client, "clus", tc, "copy")
	if n, err := tc.Count(context.Background(), &qdrant.CountPoints{CollectionName: "live", Exact: qdrant.PtrOf(true)}); err != nil || n != 450 {
		t.Fatalf("alias: %d %v", n, err)
	}
	ups := len(tgt[0].OpsOf("shard-upload")) + len(tgt[1].OpsOf("shard-upload"))
	if _, err := e.apply(t, cfg, pipeline.ApplyOptions{}); err != nil {
		t.Fatal(err)
	}
	if n := len(tgt[0].OpsOf("shard-upload")) + len(tgt[1].OpsOf("shard-upload")); n != ups || ups != 6 {
		t.Fatalf("shard uploads %d then %d", ups, n)
	}
}

// Shard snapshot uploads to S3 cut short are not left behind: a
// --full-refresh takes new shard snapshots and aborts the old uploads,
// and after another cut, a destination changed to a directory aborts
// them where they were started (the checkpoint records the store beside
// each upload).
// clusterS3Env is the set-up of the tests of cluster snapshots to S3:
// 300 sample rows, three peers (with faults set by setFaults), an S3
// server with bucket "snaps", and the environment (no QDRANT_URL).
func clusterS3Env(t *testing.T, seed uint64) (data string, peers []*qdrantemu.Server, setFaults func(qdrantemu.Faults), s3 *testkit.S3, e *env) {
	data = t.TempDir()
	if err := sample.Generate(sample.Options{Rows: 300, Dim: 16, Seed: seed, Out: data}); err != nil {
		t.Fatal(err)
	}
	peers, _ = testkit.Cluster(t, 3, qdrantemu.Options{})
	setFaults = func(f qdrantemu.Faults) {
		for _, p := range peers {
			p.SetFaults(f)
		}
	}
	s3 = testkit.StartS3(t)
	s3.Bucket(t, "snaps")
	e = newEnv(t, qdrantemu.Options{})
	delete(e.vars, "QDRANT_URL")
	return data, peers, setFaults, s3, e
}

func TestClusterShardUploadsLeftAreAborted(t *testing.T) {
	data, peers, setFaults, s3, e := clusterS3Env(t, 8)
	cut := qdrantemu.Faults{TruncateDownloadAfter: 100}
	setFaults(cut)
	dir := t.TempDir()
	toS3 := strings.Replace(clusterYAML(data, peers, "cluster"), "snapshot: { destination: out, scope: cluster }",
		"snapshot: { destination: \"s3://snaps/c/\", scope: cluster, s3: { endpoint: \""+s3.Endpoint+"\", force_path_style: true, part_size: 5 } }\nupload: { max_attempts: 1 }", 1)
	cfg := e.load(t, dir, toS3)
	refresh := pipeline.ApplyOptions{FullRefresh: true, ConfirmRecreate: func(string, uint64) error { return nil }}
	if _, err := e.apply(t, cfg, pipeline.ApplyOptions{}); err == nil {
		t.Fatal("the shard uploads were not cut")
	}
	if n := s3.Uploads(t, "snaps"); n == 0 {
		t.Fatal("no upload was left by the cut: the test proves nothing")
	}
	setFaults(qdrantemu.Faults{})
	if _, err := e.apply(t, cfg, refresh); err != nil {
		t.Fatal(err)
	}
	if n := s3.Uploads(t, "snaps"); n != 0 {
		t.Fatalf("%d unfinished uploads after --full-refresh", n)
	}
	objects := len(s3.Objects(t, "snaps"))

	setFaults(cut)
	if _, err := e.apply(t, cfg, refresh); err == nil {
		t.Fatal("the second shard uploads were not cut")
	}
	if n := s3.Uploads(t, "snaps"); n == 0 {
		t.Fatal("no upload was left by the second cut")
	}
	setFaults(qdrantemu.Faults{})
	cfg = e.load(t, dir, clusterYAML(data, peers, "cluster"))
	if rep, err := pipeline.PlanRun(context.Background(), cfg, all.Registry(), ""); err != nil || !strings.Contains(rep.Text(), "multipart upload(s) of shard snapshots the checkpoint no longer needs (s3://snaps/c/clus-shard-") {
		t.Fatalf("plan: %v\n%s", err, rep.Text())
	}
	sum, err := e.apply(t, cfg, pipeline.ApplyOptions{})
	if err != nil || filepath.Dir(sum.SnapshotPath) != filepath.Join(dir, "out") {
		t.Fatalf("apply to a directory: %v %+v", err, sum)
	}
	if n := s3.Uploads(t, "snaps"); n != 0 || len(s3.Objects(t, "snaps")) != objects {
		t.Fatalf("after the local run: %d unfinished uploads, objects %v", n, s3.Objects(t, "snaps"))
	}
}

// snapshot.scope changed while S3 uploads of the other scope's snapshot
// stage were left (a cut download): the stage of the new scope aborts
// them (apply hands them over) and plan lists them, both ways.
func TestS3UploadsLeftWhenTheScopeChangesAreAborted(t *testing.T) {
	data, peers, setFaults, s3, e := clusterS3Env(t, 9)
	cut := qdrantemu.Faults{TruncateDownloadAfter: 100}
	dir := t.TempDir()
	toS3 := func(scope string) string {
		return strings.Replace(clusterYAML(data, peers, scope), "snapshot: { destination: out, scope: "+scope+" }",
			"snapshot: { destination: \"s3://snaps/c/\", scope: "+scope+", s3: { endpoint: \""+s3.Endpoint+"\", force_path_style: true, part_size: 5 } }\nupload: { max_attempts: 1 }", 1)
	}
	for _, c := range []struct{ from, to, plan string }{
		{"cluster", "collection", "multipart upload(s) to S3 that the checkpoint started and no longer needs (s3://snaps/c/clus-shard-"},
		{"collection", "cluster", "multipart upload(s) of shard snapshots the checkpoint no longer needs (s3://snaps/c/clus-"},
	} {
		setFaults(cut)
		if _, err := e.apply(t, e.load(t, dir, toS3(c.from)), pipeline.ApplyOptions{}); err == nil {
			t.Fatalf("%s: the upload was not cut", c.from)
		}
		if n := s3.Uploads(t, "snaps"); n == 0 {
			t.Fatalf("%s: no upload was left by the cut: the test proves nothing", c.from)
		}
		setFaults(qdrantemu.Faults{})
		cfg := e.load(t, dir, clusterYAML(data, peers, c.to))
		if rep, err := pipeline.PlanRun(context.Background(), cfg, all.Registry(), ""); err != nil || !strings.Contains(rep.Text(), c.plan) {
			t.Fatalf("%s → %s: plan: %v\n%s", c.from, c.to, err, rep.Text())
		}
		if _, err := e.apply(t, cfg, pipeline.ApplyOptions{}); err != nil {
			t.Fatalf("%s → %s: %v", c.from, c.to, err)
		}
		if n := s3.Uploads(t, "snaps"); n != 0 {
			t.Fatalf("%s → %s: %d unfinished uploads after the run", c.from, c.to, n)
		}
		state, _ := os.ReadFile(filepath.Join(dir, ".snappipe", "clus.state.json"))
		if strings.Contains(string(state), "s3_upload") || strings.Contains(string(state), "s3_abandoned") {
			t.Fatalf("%s → %s: the state still holds uploads:\n%s", c.from, c.to, state)
		}
	}
}
