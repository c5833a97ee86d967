package chaos

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// clusterEmulator runs `qdrant-emulator --peers n` and returns the peers'
// gRPC and REST addresses.
func clusterEmulator(t *testing.T, bin string, n int, args ...string) (grpc, rest []string) {
	t.Helper()
	cmd := exec.Command(filepath.Join(bin, "qdrant-emulator"), append([]string{"--peers", fmt.Sprint(n), "--log-level", "warn"}, args...)...)
	out, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Signal(syscall.SIGTERM); cmd.Wait() })
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		t.Fatal(err)
	}
	f := strings.Fields(line)
	if len(f) != 3 {
		t.Fatalf("ready line %q", line)
	}
	return strings.Split(strings.TrimPrefix(f[1], "grpc="), ","), strings.Split(strings.TrimPrefix(f[2], "http="), ",")
}

type clusterState struct {
	Cluster *struct {
		Shards map[string]struct {
			RequestedAt *time.Time `json:"requested_at"`
			Name        string     `json:"name"`
			Done        bool       `json:"done"`
		} `json:"shards"`
		Done bool `json:"done"`
	} `json:"cluster_snapshot"`
}

// TestClusterSnapshotKills SIGKILLs apply with snapshot.scope: cluster
// while a shard snapshot is being created (a slow snapshot) and again while
// shards download (a slow download), reruns it, and checks six verified
// shard files and a manifest, with exactly one snapshot per shard on the
// peers (none created twice); then restores the manifest onto a 2-peer
// cluster and checks every point.
func TestClusterSnapshotKills(t *testing.T) {
	if testing.Short() {
		t.Skip("kill harness skipped with -short")
	}
	fx := build(t)
	grpcs, rests := clusterEmulator(t, fx.bin, 3, "--snapshot-delay", "1500ms", "--download-rate", "1500000")
	dir := t.TempDir()
	var peers []string
	for _, r := range rests {
		peers = append(peers, `"http://`+r+`"`)
	}
	_, gport, _ := strings.Cut(grpcs[0], ":")
	cfg := pipeline{qdrant: fmt.Sprintf(`url: "http://%s", grpc_port: %s, peers: [%s]`, rests[0], gport, strings.Join(peers, ", ")),
		collection: "  on_exists: recreate\n  shard_number: 6\n", sources: localSources(fx.data),
		rest: "upload: { batch_size: 256, parallel: 2 }\nsnapshot: { destination: out, scope: cluster }\n"}.write(t, dir)
	apply := func() *exec.Cmd {
		cmd := snappipe(nil, fx, "apply", cfg, "--progress", "never", "--log-level", "warn", "-y")
		return cmd
	}
	state := filepath.Join(dir, ".snappipe", "chaos.state.json")
	killWhen := func(what string, cond func(clusterState) bool) {
		cmd := apply()
		var out strings.Builder
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		exited := make(chan error, 1)
		go func() { exited <- cmd.Wait() }()
		for {
			select {
			case err := <-exited:
				t.Fatalf("apply ended (%v) before %s\n%s", err, what, out.String())
			default:
			}
			var st clusterState
			if b, err := os.ReadFile(state); err == nil && json.Unmarshal(b, &st) == nil && st.Cluster != nil && cond(st) {
				cmd.Process.Signal(syscall.SIGKILL)
				<-exited
				t.Logf("killed %s", what)
				return
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	killWhen("during shard snapshot creation", func(st clusterState) bool {
		for _, s := range st.Cluster.Shards {
			if s.RequestedAt != nil && s.Name == "" {
				return true
			}
		}
		return false
	})
	killWhen("during shard downloads", func(st clusterState) bool {
		named, done := 0, 0
		for _, s := range st.Cluster.Shards {
			if s.Name != "" {
				named++
			}
			if s.Done {
				done++
			}
		}
		return named > 0 && done < 6
	})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	final := snappipe(ctx, fx, "apply", cfg, "--progress", "never", "--log-level", "warn", "-y")
	if out, err := final.CombinedOutput(); err != nil {
		t.Fatalf("final run: %v\n%s", err, out)
	}
	manifests, _ := filepath.Glob(filepath.Join(dir, "out", "chaos-*.manifest.json"))
	if len(manifests) != 1 {
		t.Fatalf("manifests: %v", manifests)
	}
	var m struct {
		Shards []struct {
			ShardID int    `json:"shard_id"`
			File    string `json:"file"`
			SHA256  string `json:"sha256"`
			Points  uint64 `json:"points"`
		} `json:"shards"`
	}
	b, _ := os.ReadFile(manifests[0])
	json.Unmarshal(b, &m)
	var points uint64
	for _, s := range m.Shards {
		data, err := os.ReadFile(filepath.Join(dir, "out", s.File))
		if err != nil || sha(data) != s.SHA256 {
			t.Fatalf("shard %d file: %v", s.ShardID, err)
		}
		points += s.Points
	}
	if len(m.Shards) != 6 || points != uint64(*rows) {
		t.Fatalf("manifest: %d shards, %d points", len(m.Shards), points)
	}
	// Never created twice: each shard has exactly one snapshot on its peer.
	for k := 0; k < 6; k++ {
		resp, err := http.Get(fmt.Sprintf("http://%s/collections/chaos/shards/%d/snapshots", rests[k%3], k))
		if err != nil {
			t.Fatal(err)
		}
		var l struct {
			Result []any `json:"result"`
		}
		json.NewDecoder(resp.Body).Decode(&l)
		resp.Body.Close()
		if len(l.Result) != 1 {
			t.Fatalf("shard %d has %d snapshots on its peer", k, len(l.Result))
		}
	}
	// Restore onto 2 peers, SIGKILLed once the target collection exists
	// (shards on their way), then run again: every point exact.
	tg, tr := clusterEmulator(t, fx.bin, 2)
	_, tport, _ := strings.Cut(tg[0], ":")
	restore := func() *exec.Cmd {
		rs := exec.Command(filepath.Join(fx.bin, "snappipe"), "snapshots", "restore", manifests[0], "--url", "http://"+tr[0], "--grpc-port", tport,
			"--peer", "http://"+tr[0], "--peer", "http://"+tr[1], "--collection", "chaos", "-y")
		rs.Env = append(os.Environ(), "CI=true", "QDRANT_API_KEY=")
		return rs
	}
	rs := restore()
	if err := rs.Start(); err != nil {
		t.Fatal(err)
	}
	rsDone := make(chan error, 1)
	go func() { rsDone <- rs.Wait() }()
	for killed := false; !killed; {
		select {
		case err := <-rsDone:
			t.Logf("the first restore finished (%v) before the kill", err)
			killed = true
			continue
		default:
		}
		if resp, err := http.Get("http://" + tr[0] + "/collections/chaos"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				rs.Process.Signal(syscall.SIGKILL)
				<-rsDone
				t.Log("killed during the restore")
				killed = true
			}
		}
	}
	if out, err := restore().CombinedOutput(); err != nil {
		t.Fatalf("restore: %v\n%s", err, out)
	}
	checkCollection(t, connect(t, tport), "chaos")
}
