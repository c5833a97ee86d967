package e2e_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/snappipe/snappipe/internal/qdrantemu"
	"github.com/snappipe/snappipe/internal/sample"
	"github.com/snappipe/snappipe/internal/testkit"
	"github.com/snappipe/snappipe/pipeline"
	"github.com/snappipe/snappipe/stages/all"
)

func s3YAML(data, endpoint, extra string) string {
	return `version: 1
name: s3
qdrant: { url: "${QDRANT_URL}", grpc_port: "${QDRANT_GRPC_PORT}", api_key: "${QDRANT_API_KEY:-}" }
collection:
  name: s3c
  on_exists: recreate
  vectors: { image: { size: 256, distance: Cosine } }
sources:
  image: { path: ` + data + `/img_emb_0000.npy }
points: { vectors: { image: image } }
snapshot:
  destination: s3://snaps/nightly/
  s3: { endpoint: "` + endpoint + `", force_path_style: true, part_size: 5 }
` + extra
}

// An s3:// destination: exactly one .snapshot object whose SHA-256 is the
// server's checksum (several parts), a manifest object naming it, no
// unfinished multipart upload, no API key anywhere; a re-apply uploads
// nothing; a wrong bucket fails before the load.
func TestSnapshotToS3(t *testing.T) {
	s3 := testkit.StartS3(t)
	s3.Bucket(t, "snaps")
	data := t.TempDir()
	if err := sample.Generate(sample.Options{Rows: 6000, Dim: 256, Seed: 9, Out: data}); err != nil {
		t.Fatal(err)
	}
	e := newEnv(t, qdrantemu.Options{APIKey: "s3cr3t-key"})
	dir := t.TempDir()
	cfg := e.load(t, dir, s3YAML(data, s3.Endpoint, ""))
	rep, err := pipeline.PlanRun(context.Background(), cfg, all.Registry(), "")
	if err != nil || len(rep.Problems) > 0 || !strings.Contains(rep.Text(), "multipart upload to s3://snaps/nightly/") {
		t.Fatalf("plan: %v\n%s", err, rep.Text())
	}
	sum, err := e.apply(t, cfg, pipeline.ApplyOptions{})
	if err != nil {
		t.Fatal(err)
	}
	objs := s3.Objects(t, "snaps")
	if len(objs) != 2 {
		t.Fatalf("objects %v, want the snapshot and its manifest", objs)
	}
	list, _ := e.client.ListSnapshots(context.Background(), "s3c")
	if len(list) != 1 {
		t.Fatalf("%d snapshots on the server", len(list))
	}
	key := "nightly/" + list[0].GetName()
	body := s3.Get(t, "snaps", key)
	h := sha256.Sum256(body)
	if hex.EncodeToString(h[:]) != list[0].GetChecksum() || sum.SnapshotPath != "s3://snaps/"+key || sum.SnapshotSHA256 != list[0].GetChecksum() {
		t.Fatalf("object sha %x, server %s, summary %+v", h, list[0].GetChecksum(), sum)
	}
	if len(body) <= 5<<20 {
		t.Fatalf("snapshot of %d bytes: the test needs several 5 MiB parts", len(body))
	}
	if n := s3.Uploads(t, "snaps"); n != 0 {
		t.Fatalf("%d unfinished multipart uploads", n)
	}
	var m pipeline.Manifest
	mb := s3.Get(t, "snaps", key+".json")
	if err := json.Unmarshal(mb, &m); err != nil || m.Snapshot != list[0].GetName() || m.SHA256 != list[0].GetChecksum() || m.Size != int64(len(body)) || m.Points != 6000 {
		t.Fatalf("manifest %+v %v", m, err)
	}
	state, _ := os.ReadFile(filepath.Join(dir, ".snappipe", "s3.state.json"))
	for _, b := range [][]byte{mb, state} {
		if strings.Contains(string(b), "s3cr3t") || strings.Contains(string(b), "testing") {
			t.Fatal("a secret in the manifest or state")
		}
	}
	// The object restores elsewhere: recover it into a fresh emulator.
	f := filepath.Join(t.TempDir(), "x.snapshot")
	os.WriteFile(f, body, 0o644)
	fresh := newEnv(t, qdrantemu.Options{})
	testkit.RecoverSnapshot(t, fresh.srv.URL(), "", "restored", f)
	if n := fresh.count(t, "restored"); n != 6000 {
		t.Fatalf("restored %d points", n)
	}
	// Re-apply: nothing uploaded again, no second snapshot.
	sum2, err := e.apply(t, cfg, pipeline.ApplyOptions{})
	if err != nil || sum2.SnapshotPath != sum.SnapshotPath {
		t.Fatalf("re-apply: %v %+v", err, sum2)
	}
	if l2, _ := e.client.ListSnapshots(context.Background(), "s3c"); len(l2) != 1 || len(s3.Objects(t, "snaps")) != 2 {
		t.Fatal("re-apply created or uploaded again")
	}
	// Another prefix: plan and apply put the same snapshot there (plan
	// said "up to date" while apply uploaded it).
	cfg.Snapshot.Destination = "s3://snaps/weekly/"
	if rep, err := pipeline.PlanRun(context.Background(), cfg, all.Registry(), ""); err != nil || !strings.Contains(rep.Text(), "multipart upload to s3://snaps/weekly/") {
		t.Fatalf("plan, new prefix: %v\n%s", err, rep.Text())
	}
	if sum3, err := e.apply(t, cfg, pipeline.ApplyOptions{}); err != nil || sum3.SnapshotPath != "s3://snaps/weekly/"+list[0].GetName() {
		t.Fatalf("apply, new prefix: %v %+v", err, sum3)
	}
	if l3, _ := e.client.ListSnapshots(context.Background(), "s3c"); len(l3) != 1 || len(s3.Objects(t, "snaps")) != 4 {
		t.Fatalf("new prefix: %d server snapshots, objects %v", len(l3), s3.Objects(t, "snaps"))
	}
	if rep, err := pipeline.PlanRun(context.Background(), cfg, all.Registry(), ""); err != nil || rep.Pending() {
		t.Fatalf("plan after the new prefix: %v\n%s", err, rep.Text())
	}
	cfg.Snapshot.Destination = "s3://snaps/nightly/"
	// destination_keep under a prefix: a new snapshot retires the old
	// object and its manifest (plan names it; the listing is paged).
	cfg.Snapshot.DestinationKeep = 1
	if rep, err := pipeline.PlanRun(context.Background(), cfg, all.Registry(), t.TempDir()); err != nil ||
		!strings.Contains(rep.Text(), "delete 1 older snapshot(s) at s3://snaps/nightly/ (snapshot.destination_keep: 1): "+list[0].GetName()) {
		t.Fatalf("plan, destination_keep: %v\n%s", err, rep.Text())
	}
	yes := func(string, uint64) error { return nil }
	sum4, err := e.apply(t, cfg, pipeline.ApplyOptions{FullRefresh: true, ConfirmRecreate: yes})
	if err != nil {
		t.Fatal(err)
	}
	var nightly []string
	for o := range s3.Objects(t, "snaps") {
		if strings.HasPrefix(o, "nightly/") {
			nightly = append(nightly, o)
		}
	}
	slices.Sort(nightly)
	if want := []string{"nightly/" + filepath.Base(sum4.SnapshotPath), "nightly/" + filepath.Base(sum4.SnapshotPath) + ".json"}; strings.Join(nightly, " ") != strings.Join(want, " ") {
		t.Fatalf("under nightly/: %v, want %v", nightly, want)
	}
	cfg.Snapshot.DestinationKeep = 0
	// A bucket that does not exist fails before the load.
	cfg2 := e.load(t, t.TempDir(), strings.Replace(s3YAML(data, s3.Endpoint, ""), "s3://snaps/", "s3://missing-bucket/", 1))
	before := len(e.srv.OpsOf("upsert"))
	if _, err := e.apply(t, cfg2, pipeline.ApplyOptions{FullRefresh: true, ConfirmRecreate: func(string, uint64) error { return nil }}); err == nil || !strings.Contains(err.Error(), "snapshot.destination: bucket \"missing-bucket\": does not exist at this endpoint (HTTP 404)") {
		t.Fatalf("missing bucket: %v", err)
	}
	// No credentials anywhere: said so, before the load.
	t.Setenv("AWS_ACCESS_KEY_ID", "")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "")
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", filepath.Join(t.TempDir(), "none"))
	t.Setenv("AWS_CONFIG_FILE", filepath.Join(t.TempDir(), "none"))
	if _, err := e.apply(t, cfg, pipeline.ApplyOptions{FullRefresh: true, ConfirmRecreate: func(string, uint64) error { return nil }}); err == nil || !strings.Contains(err.Error(), "snapshot.destination: bucket \"snaps\": no AWS credentials found: set AWS_ACCESS_KEY_ID") {
		t.Fatalf("no credentials: %v", err)
	}
	if len(e.srv.OpsOf("upsert")) != before {
		t.Fatal("points were sent before the bucket was checked")
	}
}

// cutSnapshotEnv is an S3 server with bucket "snaps", 12 000 rows of 256-d
// sample data (a snapshot of more than 7 MiB), and an emulator that cuts
// every snapshot download after 7 MiB.
func cutSnapshotEnv(t *testing.T) (*testkit.S3, string, *env) {
	t.Helper()
	s3 := testkit.StartS3(t)
	s3.Bucket(t, "snaps")
	data := t.TempDir()
	if err := sample.Generate(sample.Options{Rows: 12000, Dim: 256, Seed: 9, Out: data}); err != nil {
		t.Fatal(err)
	}
	return s3, data, newEnv(t, qdrantemu.Options{Faults: qdrantemu.Faults{TruncateDownloadAfter: 7 << 20}})
}

// A snapshot download cut every 7 MiB resumes into the same multipart
// upload (Range from the next part), and a checksum that does not match
// aborts the upload: nothing appears under the key.
func TestS3UploadResumesAndRefusesBadBytes(t *testing.T) {
	s3, data, e := cutSnapshotEnv(t)
	cfg := e.load(t, t.TempDir(), s3YAML(data, s3.Endpoint, ""))
	sum, err := e.apply(t, cfg, pipeline.ApplyOptions{})
	if err != nil {
		t.Fatal(err)
	}
	list, _ := e.client.ListSnapshots(context.Background(), "s3c")
	body := s3.Get(t, "snaps", "nightly/"+list[0].GetName())
	h := sha256.Sum256(body)
	if hex.EncodeToString(h[:]) != list[0].GetChecksum() || s3.Uploads(t, "snaps") != 0 || sum.SnapshotSHA256 != list[0].GetChecksum() {
		t.Fatalf("resumed upload: sha %x vs %s, %d uploads left", h, list[0].GetChecksum(), s3.Uploads(t, "snaps"))
	}
	if n := len(e.srv.OpsOf("download")); n < 2 {
		t.Fatalf("%d downloads: the cut never happened", n)
	}

	bad := newEnv(t, qdrantemu.Options{Faults: qdrantemu.Faults{CorruptDownloads: 1000}})
	s3.Bucket(t, "bad")
	cfg = bad.load(t, t.TempDir(), strings.Replace(s3YAML(data, s3.Endpoint, "upload: { max_attempts: 2 }\n"), "s3://snaps/", "s3://bad/", 1))
	if _, err := bad.apply(t, cfg, pipeline.ApplyOptions{}); err == nil || !strings.Contains(err.Error(), "checksum mismatch") {
		t.Fatalf("corrupt snapshot: %v", err)
	}
	if objs := s3.Objects(t, "bad"); len(objs) != 0 || s3.Uploads(t, "bad") != 0 {
		t.Fatalf("after a checksum mismatch: objects %v, %d uploads", objs, s3.Uploads(t, "bad"))
	}
}

// A multipart upload cut short is not left behind when the checkpoint
// gives its snapshot up: a grown config (a raised limit) and a
// --full-refresh each take a new snapshot, and the apply that uploads it
// aborts the old upload first (plan says so). No unfinished upload stays.
func TestAbandonedS3UploadIsAborted(t *testing.T) {
	s3, data, e := cutSnapshotEnv(t)
	dir := t.TempDir()
	yaml := func(limit int) string {
		return strings.Replace(s3YAML(data, s3.Endpoint, "upload: { max_attempts: 1 }\n"), "points: { vectors:", fmt.Sprintf("points: { limit: %d, vectors:", limit), 1)
	}
	cfg := e.load(t, dir, yaml(10000))
	if _, err := e.apply(t, cfg, pipeline.ApplyOptions{}); err == nil {
		t.Fatal("the first upload was not cut")
	}
	if n := s3.Uploads(t, "snaps"); n != 1 {
		t.Fatalf("%d unfinished uploads after the cut, want 1", n)
	}
	e.srv.SetFaults(qdrantemu.Faults{})
	cfg = e.load(t, dir, yaml(12000))
	rep, err := pipeline.PlanRun(context.Background(), cfg, all.Registry(), "")
	if err != nil || !strings.Contains(rep.Text(), "abort 1 multipart upload(s) of snapshots the checkpoint gave up (s3://snaps/nightly/") {
		t.Fatalf("plan: %v\n%s", err, rep.Text())
	}
	sum, err := e.apply(t, cfg, pipeline.ApplyOptions{})
	if err != nil || e.count(t, "s3c") != 12000 {
		t.Fatalf("grown: %v, %d points written", err, sum.PointsWritten)
	}
	if n := s3.Uploads(t, "snaps"); n != 0 {
		t.Fatalf("%d unfinished uploads after the grown run", n)
	}
	if objs := s3.Objects(t, "snaps"); len(objs) != 2 {
		t.Fatalf("objects %v: want the new snapshot and its manifest", objs)
	}

	// --full-refresh: the same.
	e.srv.SetFaults(qdrantemu.Faults{TruncateDownloadAfter: 7 << 20})
	if _, err := e.apply(t, cfg, pipeline.ApplyOptions{FullRefresh: true, ConfirmRecreate: func(string, uint64) error { return nil }}); err == nil {
		t.Fatal("the refreshed upload was not cut")
	} else if n := s3.Uploads(t, "snaps"); n != 1 {
		t.Fatalf("%d unfinished uploads after the second cut (%v), want 1", n, err)
	}
	e.srv.SetFaults(qdrantemu.Faults{})
	if _, err := e.apply(t, cfg, pipeline.ApplyOptions{FullRefresh: true, ConfirmRecreate: func(string, uint64) error { return nil }}); err != nil {
		t.Fatal(err)
	}
	if n := s3.Uploads(t, "snaps"); n != 0 {
		t.Fatalf("%d unfinished uploads after --full-refresh", n)
	}
}

// An upload cut short is aborted where it was started when the config
// then sends the snapshot to a local directory: the checkpoint records
// the store beside the upload (no credentials), plan says it will abort
// it, and apply does before it writes the file. An upload whose store is
// unknown (a checkpoint written before stores were recorded) is named
// with the command that aborts it.
func TestS3UploadLeftForALocalDestinationIsAborted(t *testing.T) {
	s3, data, e := cutSnapshotEnv(t)
	dir := t.TempDir()
	cfg := e.load(t, dir, s3YAML(data, s3.Endpoint, "upload: { max_attempts: 1 }\n"))
	if _, err := e.apply(t, cfg, pipeline.ApplyOptions{}); err == nil {
		t.Fatal("the upload was not cut")
	}
	if n := s3.Uploads(t, "snaps"); n != 1 {
		t.Fatalf("%d unfinished uploads after the cut, want 1", n)
	}
	statePath := filepath.Join(dir, ".snappipe", "s3.state.json")
	state, _ := os.ReadFile(statePath)
	if !strings.Contains(string(state), `"s3_store"`) || !strings.Contains(string(state), s3.Endpoint) {
		t.Fatalf("the store is not recorded beside the upload:\n%s", state)
	}
	if strings.Contains(string(state), os.Getenv("AWS_SECRET_ACCESS_KEY")) {
		t.Fatal("the state file holds the secret key")
	}
	e.srv.SetFaults(qdrantemu.Faults{})
	local := strings.Replace(s3YAML(data, s3.Endpoint, ""), "  destination: s3://snaps/nightly/\n  s3: { endpoint: \""+s3.Endpoint+"\", force_path_style: true, part_size: 5 }\n", "  destination: snaps\n", 1)
	cfg = e.load(t, dir, local)
	rep, err := pipeline.PlanRun(context.Background(), cfg, all.Registry(), "")
	if err != nil || !strings.Contains(rep.Text(), "abort 1 multipart upload(s) to S3 that the checkpoint started and no longer needs (s3://snaps/nightly/") {
		t.Fatalf("plan: %v\n%s", err, rep.Text())
	}
	var logs bytes.Buffer
	sum, err := e.apply(t, cfg, pipeline.ApplyOptions{Log: slog.New(slog.NewTextHandler(&logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	if n := s3.Uploads(t, "snaps"); n != 0 {
		t.Fatalf("%d unfinished uploads after the local run:\n%s", n, logs.String())
	}
	if !strings.HasPrefix(sum.SnapshotPath, filepath.Join(dir, "snaps")) || len(s3.Objects(t, "snaps")) != 0 {
		t.Fatalf("snapshot at %q, objects %v", sum.SnapshotPath, s3.Objects(t, "snaps"))
	}
	if state, _ := os.ReadFile(statePath); strings.Contains(string(state), "s3_upload") || strings.Contains(string(state), "s3_abandoned") {
		t.Fatalf("the state still holds the upload:\n%s", state)
	}

	// A store the checkpoint does not know: the upload is named with the
	// command that removes it, and forgotten.
	sf, _, err := pipeline.OpenState(statePath)
	if err != nil {
		t.Fatal(err)
	}
	sf.Update(func(s *pipeline.State) {
		s.Fetch = pipeline.FetchState{Abandoned: []pipeline.AbandonedUpload{{Path: "s3://snaps/nightly/old.snapshot", UploadID: "u-1"}}}
	})
	logs.Reset()
	if _, err := e.apply(t, cfg, pipeline.ApplyOptions{Log: slog.New(slog.NewTextHandler(&logs, nil))}); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(logs.String(), "aws s3api abort-multipart-upload --bucket snaps --key nightly/old.snapshot --upload-id u-1") {
		t.Fatalf("logs:\n%s", logs.String())
	}
	if state, _ := os.ReadFile(statePath); strings.Contains(string(state), "u-1") {
		t.Fatalf("the state still holds the unknown upload:\n%s", state)
	}
}
