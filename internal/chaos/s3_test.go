package chaos

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/snappipe/snappipe/internal/testkit"
)

// TestKillDuringS3Upload SIGKILLs apply while the snapshot streams into an
// S3 multipart upload (after at least one part is recorded), runs it
// again, and checks the bucket holds exactly the snapshot and its
// manifest, with the server's checksum, and no unfinished upload.
func TestKillDuringS3Upload(t *testing.T) {
	if testing.Short() {
		t.Skip("kill harness skipped with -short")
	}
	fx := build(t)
	store := testkit.StartS3(t)
	store.Bucket(t, "chaos")
	// 4 MB/s: a snapshot of several 5 MiB parts takes seconds to stream, so
	// the checkpoint shows a part well before the upload ends.
	grpcPort, httpAddr, _ := emulator(t, fx.bin, "--download-rate", "4000000", "--log-level", "warn")
	dir := t.TempDir()
	cfg := pipeline{qdrant: emulatorQdrant(httpAddr, grpcPort), collection: "  on_exists: recreate\n", sources: localSources(fx.data),
		rest: fmt.Sprintf(`upload: { batch_size: 256, parallel: 2 }
snapshot:
  destination: s3://chaos/snaps/
  s3: { endpoint: "%s", force_path_style: true, part_size: 5 }
`, store.Endpoint)}.write(t, dir)
	run := func() *exec.Cmd {
		cmd := snappipe(nil, fx, "apply", cfg, "--progress", "never", "--log-level", "warn", "-y")
		return cmd
	}
	cmd := run()
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	state := filepath.Join(dir, ".snappipe", "chaos.state.json")
	for killed := false; !killed; {
		select {
		case err := <-exited:
			t.Fatalf("apply ended (%v) before a part was uploaded\n%s", err, out.String())
		default:
		}
		var st struct {
			Fetch struct {
				Upload *struct {
					Parts []json.RawMessage `json:"parts"`
				} `json:"s3_upload"`
				Done bool `json:"done"`
			} `json:"fetch"`
		}
		if b, err := os.ReadFile(state); err == nil && json.Unmarshal(b, &st) == nil && st.Fetch.Upload != nil && len(st.Fetch.Upload.Parts) > 0 {
			cmd.Process.Signal(syscall.SIGKILL)
			<-exited
			killed = true
			continue
		}
		time.Sleep(5 * time.Millisecond)
	}
	if n := store.Uploads(t, "chaos"); n != 1 {
		t.Fatalf("after the kill: %d multipart uploads in progress, want the interrupted one", n)
	}
	if objs := store.Objects(t, "chaos"); len(objs) != 0 {
		t.Fatalf("an object appeared before the upload was verified: %v", objs)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	rerun := snappipe(ctx, fx, "apply", cfg, "--progress", "never", "--log-level", "warn", "-y")
	if o, err := rerun.CombinedOutput(); err != nil {
		t.Fatalf("rerun: %v\n%s", err, o)
	}
	c := connect(t, grpcPort)
	list, err := c.ListSnapshots(context.Background(), "chaos")
	if err != nil || len(list) != 1 {
		t.Fatalf("%d snapshots (%v)", len(list), err)
	}
	objs := store.Objects(t, "chaos")
	key := "snaps/" + list[0].GetName()
	if len(objs) != 2 || objs[key] == 0 || objs[key+".json"] == 0 {
		t.Fatalf("objects %v, want %s and its manifest", objs, key)
	}
	if got := sha(store.Get(t, "chaos", key)); got != list[0].GetChecksum() {
		t.Fatalf("object sha256 %s, server %s", got, list[0].GetChecksum())
	}
	if n := store.Uploads(t, "chaos"); n != 0 {
		t.Fatalf("%d unfinished multipart uploads after the rerun", n)
	}
}

func sha(b []byte) string {
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:])
}
