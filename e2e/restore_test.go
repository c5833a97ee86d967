package e2e_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/qdrant/go-client/qdrant"

	"github.com/snappipe/snappipe/internal/qdrantemu"
	"github.com/snappipe/snappipe/internal/sample"
	"github.com/snappipe/snappipe/internal/testkit"
	"github.com/snappipe/snappipe/pipeline"
	"github.com/snappipe/snappipe/stages/all"
)

// sameCollections compares two collections point by point.
func sameCollections(t *testing.T, a *qdrant.Client, an string, b *qdrant.Client, bn string) int {
	t.Helper()
	pa, pb := testkit.ScrollAll(t, a, an), testkit.ScrollAll(t, b, bn)
	if len(pa) != len(pb) {
		t.Fatalf("%s holds %d points, %s %d", an, len(pa), bn, len(pb))
	}
	for i := range pa {
		if !proto.Equal(pa[i].GetId(), pb[i].GetId()) || !proto.Equal(pa[i].GetVectors(), pb[i].GetVectors()) || !testkit.EqualPayload(pa[i].GetPayload(), pb[i].GetPayload()) {
			t.Fatalf("point %d differs between %s and %s", i, an, bn)
		}
	}
	return len(pa)
}

// restore: targets get the verified snapshot — uploaded from the local
// destination, or recovered from a presigned S3 URL — with their own API
// key; each target's collection then holds exactly the source's points; a
// re-apply restores nothing twice; no key is printed or stored.
func TestRestoreTargets(t *testing.T) {
	data := t.TempDir()
	if err := sample.Generate(sample.Options{Rows: 700, Dim: 16, Seed: 4, Out: data}); err != nil {
		t.Fatal(err)
	}
	src := newEnv(t, qdrantemu.Options{})
	tgt := newEnv(t, qdrantemu.Options{APIKey: "t4rget-key"})
	src.vars["TARGET_URL"], src.vars["TARGET_KEY"] = tgt.srv.URL(), "t4rget-key"
	y := fmt.Sprintf(`version: 1
name: rst
qdrant: { url: "${QDRANT_URL}", grpc_port: "${QDRANT_GRPC_PORT}" }
collection:
  name: rst
  on_exists: recreate
  vectors: { image: { size: 16, distance: Cosine }, text: { size: 16, distance: Dot } }
sources:
  metadata: { path: %[1]s/metadata_0000.parquet }
  image:    { path: %[1]s/img_emb_0000.npy }
  text:     { path: %[1]s/text_emb_0000.npy }
points:
  vectors: { image: image, text: text }
  payload: { source: metadata }
restore:
  - { url: "${TARGET_URL}", api_key: "${TARGET_KEY}" }
  - { url: "${TARGET_URL}", api_key: "${TARGET_KEY}", collection: copy, priority: replica }
snapshot: { destination: out }
`, data)
	dir := t.TempDir()
	cfg := src.load(t, dir, y)
	rep, err := pipeline.PlanRun(context.Background(), cfg, all.Registry(), "")
	if err != nil || !strings.Contains(rep.Text(), `restore the snapshot into `+tgt.srv.URL()+` collection "copy" (priority replica)`) || strings.Contains(rep.Text(), "t4rget") {
		t.Fatalf("plan: %v\n%s", err, rep.Text())
	}
	if _, err := src.apply(t, cfg, pipeline.ApplyOptions{}); err != nil {
		t.Fatal(err)
	}
	if n := sameCollections(t, src.client, "rst", tgt.client, "rst"); n != 700 {
		t.Fatalf("%d points", n)
	}
	sameCollections(t, src.client, "rst", tgt.client, "copy")
	state, _ := os.ReadFile(filepath.Join(dir, ".snappipe", "rst.state.json"))
	if strings.Contains(string(state), "t4rget") || !strings.Contains(string(state), `"restore.1"`) {
		t.Fatalf("state: %s", state)
	}
	ups := len(tgt.srv.OpsOf("upload")) + len(tgt.srv.OpsOf("recover"))
	if _, err := src.apply(t, cfg, pipeline.ApplyOptions{}); err != nil {
		t.Fatal(err)
	}
	if n := len(tgt.srv.OpsOf("upload")) + len(tgt.srv.OpsOf("recover")); n != ups {
		t.Fatalf("re-apply restored again (%d -> %d)", ups, n)
	}
	// A target edited after the restore (another collection) is pending:
	// plan and status say so, apply restores there, once.
	cfg.Restore[1].Collection = "copy2"
	if rep, err := pipeline.PlanRun(context.Background(), cfg, all.Registry(), ""); err != nil || len(rep.Actions) != 1 ||
		!strings.Contains(rep.Actions[0], `restore the snapshot into `+tgt.srv.URL()+` collection "copy2"`) {
		t.Fatalf("plan, edited target: %v\n%s", err, rep.Text())
	}
	sf, _, _ := pipeline.OpenState(filepath.Join(dir, ".snappipe", "rst.state.json"))
	if lines, err := pipeline.Status(cfg, all.Registry(), sf); err != nil || !strings.Contains(strings.Join(lines, "\n"), `restore.1  pending: `+tgt.srv.URL()+` collection "copy2"`) {
		t.Fatalf("status, edited target: %v\n%s", err, strings.Join(lines, "\n"))
	}
	if _, err := src.apply(t, cfg, pipeline.ApplyOptions{}); err != nil {
		t.Fatal(err)
	}
	sameCollections(t, src.client, "rst", tgt.client, "copy2")
	if n := len(tgt.srv.OpsOf("upload")) + len(tgt.srv.OpsOf("recover")); n != ups+1 {
		t.Fatalf("edited target: %d restores, want %d", n, ups+1)
	}
	cfg.Restore[1].Collection = "copy"
	// The plan of a fresh run says the targets' points would be replaced.
	rep, err = pipeline.PlanRun(context.Background(), cfg, all.Registry(), t.TempDir())
	if err != nil || !strings.Contains(rep.Text(), `collection "copy" (priority replica) and check its exact point count; it holds 700 points now, which the restore replaces`) {
		t.Fatalf("plan over restored targets: %v\n%s", err, rep.Text())
	}
	// A wrong key fails the restore, naming the target, not the key.
	cfg2 := src.load(t, t.TempDir(), strings.Replace(y, "api_key: \"${TARGET_KEY}\" }\n  - {", "api_key: wrong-key }\n  - {", 1))
	_, err = src.apply(t, cfg2, pipeline.ApplyOptions{FullRefresh: true, ConfirmRecreate: func(string, uint64) error { return nil }})
	if err == nil || !strings.Contains(err.Error(), "restore into "+tgt.srv.URL()) || strings.Contains(err.Error(), "wrong-key") {
		t.Fatalf("wrong key: %v", err)
	}
}

// With an s3:// destination the target recovers from a presigned URL.
func TestRestoreFromS3(t *testing.T) {
	store := testkit.StartS3(t)
	store.Bucket(t, "snaps")
	data := t.TempDir()
	if err := sample.Generate(sample.Options{Rows: 500, Dim: 256, Seed: 9, Out: data}); err != nil {
		t.Fatal(err)
	}
	src := newEnv(t, qdrantemu.Options{})
	tgt := newEnv(t, qdrantemu.Options{APIKey: "t4rget-key"})
	y := s3YAML(data, store.Endpoint, "restore:\n  - { url: \""+tgt.srv.URL()+"\", api_key: t4rget-key, collection: from-s3 }\n")
	if _, err := src.apply(t, src.load(t, t.TempDir(), y), pipeline.ApplyOptions{}); err != nil {
		t.Fatal(err)
	}
	if n := sameCollections(t, src.client, "s3c", tgt.client, "from-s3"); n != 500 {
		t.Fatalf("%d points", n)
	}
	if len(tgt.srv.OpsOf("recover")) == 0 {
		t.Fatal("the target did not recover from a URL")
	}
}

// snapshot.keep and destination_keep keep the newest N after each new
// snapshot is verified: three refreshes leave two on the server and two
// (with their manifests) at the destination, the latest among them.
func TestRetention(t *testing.T) {
	data := t.TempDir()
	if err := sample.Generate(sample.Options{Rows: 100, Dim: 16, Seed: 4, Out: data}); err != nil {
		t.Fatal(err)
	}
	e := newEnv(t, qdrantemu.Options{})
	dir := t.TempDir()
	cfg := e.load(t, dir, fmt.Sprintf(`version: 1
name: keep
qdrant: { url: "${QDRANT_URL}", grpc_port: "${QDRANT_GRPC_PORT}" }
collection: { name: keep, on_exists: recreate, vectors: { v: { size: 16, distance: Dot } } }
sources: { s: { path: %s/img_emb_0000.npy } }
points: { vectors: { v: s } }
snapshot: { destination: out, keep: 2, destination_keep: 2 }
`, data))
	var last *pipeline.Summary
	for i := 0; i < 3; i++ {
		sum, err := e.apply(t, cfg, pipeline.ApplyOptions{FullRefresh: true, ConfirmRecreate: func(string, uint64) error { return nil }})
		if err != nil {
			t.Fatal(err)
		}
		last = sum
	}
	list, _ := e.client.ListSnapshots(context.Background(), "keep")
	names := map[string]bool{}
	for _, s := range list {
		names[s.GetName()] = true
	}
	if len(list) != 2 || !names[last.SnapshotName] {
		t.Fatalf("server keeps %v, latest %s", names, last.SnapshotName)
	}
	ents, _ := os.ReadDir(filepath.Join(dir, "out"))
	var files []string
	for _, en := range ents {
		files = append(files, en.Name())
	}
	if len(files) != 4 || !strings.Contains(strings.Join(files, " "), last.SnapshotName+".json") {
		t.Fatalf("destination holds %v", files)
	}
	// Retention deletes: plan says which (it listed none, and a keep
	// lowered after a run deleted at the next apply unannounced).
	if rep, err := pipeline.PlanRun(context.Background(), cfg, all.Registry(), ""); err != nil || rep.Pending() {
		t.Fatalf("plan, nothing to delete: %v\n%s", err, rep.Text())
	}
	older := ""
	for n := range names {
		if n != last.SnapshotName {
			older = n
		}
	}
	cfg.Snapshot.Keep, cfg.Snapshot.DestinationKeep = 1, 1
	rep, err := pipeline.PlanRun(context.Background(), cfg, all.Registry(), "")
	if err != nil || len(rep.Actions) != 2 || rep.Actions[0] != `delete 1 older snapshot(s) of "keep" on the server (snapshot.keep: 1): `+older ||
		rep.Actions[1] != "delete 1 older snapshot(s) at out (snapshot.destination_keep: 1): "+older {
		t.Fatalf("plan, keep 1: %v\n%s", err, rep.Text())
	}
	if _, err := e.apply(t, cfg, pipeline.ApplyOptions{}); err != nil {
		t.Fatal(err)
	}
	if l, _ := e.client.ListSnapshots(context.Background(), "keep"); len(l) != 1 || l[0].GetName() != last.SnapshotName {
		t.Fatalf("server keeps %v", l)
	}
	if rep, err := pipeline.PlanRun(context.Background(), cfg, all.Registry(), ""); err != nil || rep.Pending() {
		t.Fatalf("plan after: %v\n%s", err, rep.Text())
	}
	// A run that takes a new snapshot counts it as the newest.
	rep, err = pipeline.PlanRun(context.Background(), cfg, all.Registry(), t.TempDir())
	if err != nil || !strings.Contains(rep.Text(), `delete 1 older snapshot(s) of "keep" on the server (snapshot.keep: 1): `+last.SnapshotName) {
		t.Fatalf("plan of a fresh run: %v\n%s", err, rep.Text())
	}
}

// A restore target with alias: the alias moves to the restored collection
// only after its count is verified (the previous collection dropped with
// keep_previous: false); a failed restore leaves the alias where it was.
func TestRestoreSwitchesAlias(t *testing.T) {
	data := t.TempDir()
	if err := sample.Generate(sample.Options{Rows: 300, Dim: 16, Seed: 4, Out: data}); err != nil {
		t.Fatal(err)
	}
	src := newEnv(t, qdrantemu.Options{})
	tgt := newEnv(t, qdrantemu.Options{})
	ctx := context.Background()
	if err := tgt.client.CreateCollection(ctx, &qdrant.CreateCollection{CollectionName: "v1", VectorsConfig: qdrant.NewVectorsConfig(&qdrant.VectorParams{Size: 16, Distance: qdrant.Distance_Dot})}); err != nil {
		t.Fatal(err)
	}
	if err := tgt.client.CreateAlias(ctx, "live", "v1"); err != nil {
		t.Fatal(err)
	}
	y := func(coll string) string {
		return fmt.Sprintf(`version: 1
name: alias
qdrant: { url: "${QDRANT_URL}", grpc_port: "${QDRANT_GRPC_PORT}" }
collection: { name: alias, on_exists: recreate, vectors: { v: { size: 16, distance: Dot } } }
sources: { s: { path: %s/img_emb_0000.npy } }
points: { vectors: { v: s } }
restore:
  - { url: "%s", collection: "%s", alias: live, keep_previous: false }
snapshot: { destination: out }
`, data, tgt.srv.URL(), coll)
	}
	aliasOf := func() string {
		l, err := tgt.client.ListAliases(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, a := range l {
			if a.GetAliasName() == "live" {
				return a.GetCollectionName()
			}
		}
		return ""
	}
	// A restore that fails (an invalid collection name on the target).
	if _, err := src.apply(t, src.load(t, t.TempDir(), y("bad/name")), pipeline.ApplyOptions{}); err == nil {
		t.Fatal("a restore into an invalid collection succeeded")
	}
	if a := aliasOf(); a != "v1" {
		t.Fatalf("after a failed restore the alias points at %q", a)
	}
	if _, err := src.apply(t, src.load(t, t.TempDir(), y("v2")), pipeline.ApplyOptions{FullRefresh: true, ConfirmRecreate: func(string, uint64) error { return nil }}); err != nil {
		t.Fatal(err)
	}
	if a := aliasOf(); a != "v2" {
		t.Fatalf("alias points at %q, want v2", a)
	}
	if n, err := tgt.client.Count(ctx, &qdrant.CountPoints{CollectionName: "live", Exact: qdrant.PtrOf(true)}); err != nil || n != 300 {
		t.Fatalf("reads through the alias: %d %v", n, err)
	}
	if ok, _ := tgt.client.CollectionExists(ctx, "v1"); ok {
		t.Fatal("keep_previous: false kept v1")
	}
}
