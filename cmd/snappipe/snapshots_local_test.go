package main

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/snappipe/snappipe/internal/qdrantemu"
	"github.com/snappipe/snappipe/internal/testkit"
)

// The snapshots commands on a local destination: list pairs the server's
// snapshots with the files and their manifests; download fetches what is
// missing or damaged (verified) and leaves a verified copy alone; verify
// recomputes the SHA-256 against the manifest; delete removes the
// snapshot on the server and the file with its manifest.
func TestSnapshotsCommandsLocal(t *testing.T) {
	srv := testkit.EmulatorEnv(t, qdrantemu.Options{})
	cfg := snapCLIConfig(t, "loc", 120, "snapshot: { destination: out }\n")
	dir := filepath.Dir(cfg)
	if code, out := runCLI("apply", cfg, "--progress", "never"); code != 0 {
		t.Fatalf("apply: %d\n%s", code, out)
	}
	code, out := runCLI("snapshots", "list", cfg)
	m := regexp.MustCompile(`(?m)^  (loc-\S+\.snapshot) +\d+ +ok$`).FindStringSubmatch(out)
	if code != 0 || m == nil {
		t.Fatalf("list: %d\n%s", code, out)
	}
	name := m[1]
	file := filepath.Join(dir, "out", name)
	if code, out := runCLI("snapshots", "verify", file); code != 0 || !strings.Contains(out, "matches its manifest") || !strings.Contains(out, `120 points of "loc"`) {
		t.Fatalf("verify: %d\n%s", code, out)
	}
	downloads := func() int { return len(srv.OpsOf("download")) }
	// A verified copy is not fetched again.
	before := downloads()
	if code, out := runCLI("snapshots", "download", cfg, "--progress", "never"); code != 0 || !strings.Contains(out, "is already there and matches the server's checksum") || downloads() != before {
		t.Fatalf("download over a verified copy: %d (%d downloads)\n%s", code, downloads()-before, out)
	}
	// A damaged one is, verified; so is a missing one.
	good, _ := os.ReadFile(file)
	bad := append([]byte{}, good...)
	bad[len(bad)/2] ^= 0xFF
	os.WriteFile(file, bad, 0o644)
	if code, out := runCLI("snapshots", "verify", file); code == 0 || !strings.Contains(out, "does NOT match its manifest") {
		t.Fatalf("verify of a damaged file: %d\n%s", code, out)
	}
	if code, out := runCLI("snapshots", "download", cfg, name, "--progress", "never"); code != 0 || !strings.Contains(out, "Downloaded "+file) || downloads() != before+1 {
		t.Fatalf("download over a damaged copy: %d\n%s", code, out)
	}
	if got, _ := os.ReadFile(file); string(got) != string(good) {
		t.Fatal("the downloaded file differs from the snapshot")
	}
	other := t.TempDir()
	if code, out := runCLI("snapshots", "download", cfg, "--out", other, "--progress", "never"); code != 0 || !strings.Contains(out, "Downloaded "+filepath.Join(other, name)) {
		t.Fatalf("download to --out: %d\n%s", code, out)
	}
	if code, out := runCLI("snapshots", "download", cfg, "nosuch.snapshot"); code == 0 || !strings.Contains(out, `no snapshot nosuch.snapshot of collection "loc" on the server`) {
		t.Fatalf("download of a missing snapshot: %d\n%s", code, out)
	}
	// A server that is down does not hide the destination's snapshots.
	code, out = runCLI("snapshots", "list", cfg, "--set", "qdrant.url=http://127.0.0.2:1", "--set", "qdrant.grpc_port=2")
	if code == 0 || !regexp.MustCompile(`(?m)^  `+regexp.QuoteMeta(name)+` +\d+ +ok$`).MatchString(out) ||
		!strings.Contains(out, `the snapshots of "loc" on the server at http://127.0.0.2:1 (gRPC 127.0.0.2:2) could not be listed (Unavailable: `) {
		t.Fatalf("list with the server down: %d\n%s", code, out)
	}
	// Delete: refused without a terminal unless -y, then gone everywhere.
	if code, out := runCLI("snapshots", "delete", cfg, name); code == 0 || !strings.Contains(out, "no terminal to confirm on, re-run with -y") {
		t.Fatalf("delete without -y: %d\n%s", code, out)
	}
	if code, out := runCLI("snapshots", "delete", cfg, name, "-y"); code != 0 || !strings.Contains(out, "Deleted "+name+" on the server") || !strings.Contains(out, "Deleted "+file+" and its manifest") {
		t.Fatalf("delete: %d\n%s", code, out)
	}
	if _, err := os.Stat(file + ".json"); !os.IsNotExist(err) {
		t.Fatalf("the manifest is still there: %v", err)
	}
	if code, out := runCLI("snapshots", "list", cfg); code != 0 || strings.Contains(out, name) {
		t.Fatalf("list after delete: %d\n%s", code, out)
	}
}

// snapCLIConfig writes a pipeline NAME loading the first limit rows of the
// sample's image vectors (collection NAME, recreated), with the given
// snapshot block, into a new directory, and returns its path.
func snapCLIConfig(t *testing.T, name string, limit int, snapshot string) string {
	t.Helper()
	cfg := filepath.Join(t.TempDir(), "p.yaml")
	y := fmt.Sprintf(`version: 1
name: %[1]s
qdrant: { url: "${QDRANT_URL}", grpc_port: "${QDRANT_GRPC_PORT}" }
collection: { name: %[1]s, on_exists: recreate, vectors: { image: { size: 768, distance: Cosine } } }
sources: { image: { path: "%[2]s/img_emb_0000.npy" } }
points: { limit: %[3]d, vectors: { image: image } }
`, name, sampleDir(), limit) + snapshot
	if err := os.WriteFile(cfg, []byte(y), 0o644); err != nil {
		t.Fatal(err)
	}
	return cfg
}
