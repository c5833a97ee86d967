package main

import (
	"bytes"
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/snappipe/snappipe/internal/qdrantemu"
	"github.com/snappipe/snappipe/internal/testkit"
)

// The snapshots commands on an s3:// destination: list compares the
// objects with their manifests, verify recomputes the object's SHA-256,
// restore recovers it into another collection from a presigned URL,
// delete removes it on the server and in the bucket.
func TestSnapshotsCommandsOnS3(t *testing.T) {
	store := testkit.StartS3(t)
	store.Bucket(t, "snaps")
	srv := testkit.EmulatorEnv(t, qdrantemu.Options{})
	cfg := snapCLIConfig(t, "s3cli", 150, `snapshot:
  destination: s3://snaps/cli/
  s3: { endpoint: "`+store.Endpoint+`", force_path_style: true }
`)
	run := func(args ...string) (int, string) {
		var out, errb bytes.Buffer
		code := execute(append(args, "--progress", "never"), strings.NewReader(""), &out, &errb)
		return code, out.String() + errb.String()
	}
	if code, out := run("apply", cfg); code != 0 {
		t.Fatalf("apply: %d\n%s", code, out)
	}
	code, out := run("snapshots", "list", cfg)
	m := regexp.MustCompile(`(?m)^  (s3cli-\S+\.snapshot) +\d+ +ok$`).FindStringSubmatch(out)
	if code != 0 || m == nil {
		t.Fatalf("list: %d\n%s", code, out)
	}
	obj := "s3://snaps/cli/" + m[1]
	s3flags := []string{"--s3-endpoint", store.Endpoint, "--s3-path-style"}
	if code, out := run(append([]string{"snapshots", "verify", obj}, s3flags...)...); code != 0 || !strings.Contains(out, "matches its manifest") {
		t.Fatalf("verify: %d\n%s", code, out)
	}
	if code, out := run(append([]string{"snapshots", "restore", obj, "--url", os.Getenv("QDRANT_URL"), "--collection", "s3cli-copy"}, s3flags...)...); code != 0 || !strings.Contains(out, `collection "s3cli-copy": 150 points`) {
		t.Fatalf("restore: %d\n%s", code, out)
	}
	// The collection now holds points: restoring again replaces them, so
	// it is asked for (-y without a terminal), and nothing is touched
	// until then.
	recovers := len(srv.OpsOf("recover"))
	if code, out := run(append([]string{"snapshots", "restore", obj, "--url", os.Getenv("QDRANT_URL"), "--collection", "s3cli-copy"}, s3flags...)...); code == 0 ||
		!strings.Contains(out, `collection "s3cli-copy" at `+os.Getenv("QDRANT_URL")+` holds 150 points, which restoring replaces; no terminal to confirm on: re-run with -y`) {
		t.Fatalf("restore over a collection with points: %d\n%s", code, out)
	}
	if n := len(srv.OpsOf("recover")); n != recovers {
		t.Fatalf("the refused restore recovered anyway (%d recovers, %d before)", n, recovers)
	}
	if code, out := run(append([]string{"snapshots", "restore", obj, "--url", os.Getenv("QDRANT_URL"), "--collection", "s3cli-copy", "-y"}, s3flags...)...); code != 0 ||
		!strings.Contains(out, `collection "s3cli-copy": 150 points`) || len(srv.OpsOf("recover")) != recovers+1 {
		t.Fatalf("restore -y: %d\n%s", code, out)
	}
	if code, out := run("snapshots", "delete", cfg, m[1], "-y"); code != 0 || !strings.Contains(out, "Deleted s3://snaps/cli/"+m[1]+" and its manifest") {
		t.Fatalf("delete: %d\n%s", code, out)
	}
	if objs := store.Objects(t, "snaps"); len(objs) != 0 {
		t.Fatalf("left: %v", objs)
	}
	// What is missing is named: the deleted object, a bucket that is not there.
	if code, out := run(append([]string{"snapshots", "restore", obj, "--url", os.Getenv("QDRANT_URL"), "--collection", "s3cli-copy2"}, s3flags...)...); code == 0 || !strings.Contains(out, obj+": no such object in the bucket") {
		t.Fatalf("restore of a deleted object: %d\n%s", code, out)
	}
	if code, out := run(append([]string{"snapshots", "verify", "s3://nobucket/x.snapshot"}, s3flags...)...); code == 0 || !strings.Contains(out, "s3://nobucket/x.snapshot: the bucket does not exist at this endpoint") {
		t.Fatalf("verify in a missing bucket: %d\n%s", code, out)
	}
	if code, out := run(append([]string{"snapshots", "verify", obj}, s3flags...)...); code == 0 || !strings.Contains(out, obj+": no such object in the bucket") {
		t.Fatalf("verify of a deleted object: %d\n%s", code, out)
	}
}
