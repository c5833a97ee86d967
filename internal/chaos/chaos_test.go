// Package chaos kills `snappipe apply` with SIGKILL at random moments and
// checks that running it again always ends in the exact final state.
//
//	go test ./internal/chaos                 # 10 seeds (part of make test)
//	go test ./internal/chaos -seeds 100      # make chaos
package chaos

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/qdrant/go-client/qdrant"
	"github.com/snappipe/snappipe/internal/testkit"
	"google.golang.org/protobuf/proto"
)

var (
	seeds     = flag.Int("seeds", 10, "number of kill scenarios")
	firstSeed = flag.Int("first-seed", 1, "first seed")
	rows      = flag.Int("rows", 20000, "rows in the generated shard")
)

const dim = 64

type fixture struct {
	bin, data string
}

func build(t *testing.T) fixture {
	t.Helper()
	root, _ := filepath.Abs(filepath.Join("..", ".."))
	bin := t.TempDir()
	for _, c := range []string{"snappipe", "qdrant-emulator", "gensample"} {
		cmd := exec.Command("go", "build", "-o", filepath.Join(bin, c), "./cmd/"+c)
		cmd.Dir = root
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("build %s: %v\n%s", c, err, out)
		}
	}
	data := t.TempDir()
	cmd := exec.Command(filepath.Join(bin, "gensample"), "-rows", strconv.Itoa(*rows), "-dim", strconv.Itoa(dim), "-out", data, "-row-group-rows", "4096")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("gensample: %v\n%s", err, out)
	}
	return fixture{bin: bin, data: data}
}

// emulator runs qdrant-emulator as its own process, so it outlives kills.
func emulator(t *testing.T, bin string, args ...string) (grpcPort, httpAddr string) {
	t.Helper()
	cmd := exec.Command(filepath.Join(bin, "qdrant-emulator"), append([]string{"--grpc-addr", "127.0.0.1:0", "--http-addr", "127.0.0.1:0", "--log-level", "warn"}, args...)...)
	out, _ := cmd.StdoutPipe()
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Signal(syscall.SIGTERM); cmd.Wait() })
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		t.Fatalf("emulator: %v", err)
	}
	f := strings.Fields(strings.TrimSpace(line))
	if len(f) != 3 || f[0] != "ready" {
		t.Fatalf("ready line %q", line)
	}
	g := strings.TrimPrefix(f[1], "grpc=")
	_, grpcPort, _ = net.SplitHostPort(g)
	return grpcPort, strings.TrimPrefix(f[2], "http=")
}

// slowFiles serves dir with Range support, throttled so downloads take a
// killable amount of time.
func slowFiles(t *testing.T, dir string) string {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f, err := os.Open(filepath.Join(dir, filepath.Base(r.URL.Path)))
		if err != nil {
			http.NotFound(w, r)
			return
		}
		defer f.Close()
		st, _ := f.Stat()
		http.ServeContent(&throttled{ResponseWriter: w}, r, st.Name(), st.ModTime(), f)
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

type throttled struct{ http.ResponseWriter }

func (t *throttled) Write(p []byte) (int, error) {
	n := 0
	for len(p) > 0 {
		k := min(len(p), 256<<10)
		m, err := t.ResponseWriter.Write(p[:k])
		n += m
		if err != nil {
			return n, err
		}
		p = p[k:]
		time.Sleep(20 * time.Millisecond)
	}
	return n, nil
}

func TestKillAndResume(t *testing.T) {
	if testing.Short() {
		t.Skip("kill harness skipped with -short")
	}
	fx := build(t)
	files := slowFiles(t, fx.data)
	for s := *firstSeed; s < *firstSeed+*seeds; s++ {
		t.Run(fmt.Sprintf("seed%d", s), func(t *testing.T) { scenario(t, fx, files, uint64(s)) })
	}
	t.Logf("kills by stage: %v", phases)
	if *seeds >= 10 {
		for _, ph := range []string{"download", "upsert", "snapshot", "fetch"} {
			if phases[ph] == 0 {
				t.Errorf("no kill landed during %s; widen the kill window", ph)
			}
		}
	}
}

func scenario(t *testing.T, fx fixture, files string, seed uint64) {
	r := rand.New(rand.NewPCG(seed, 7))
	grpcPort, httpAddr := emulator(t, fx.bin, "--upsert-delay", "2ms", "--snapshot-delay", "400ms", "--fail-rate", "0.02", "--truncate-download-after", "3000000", "--seed", strconv.FormatUint(seed, 10))
	dir := t.TempDir()
	cfg := filepath.Join(dir, "p.yaml")
	os.WriteFile(cfg, []byte(fmt.Sprintf(`version: 1
name: chaos
qdrant: { url: "http://%s", grpc_port: %s }
collection:
  name: chaos
  on_exists: recreate
  vectors:
    image: { size: %d, distance: Cosine }
    text:  { size: %d, distance: Cosine }
sources:
  metadata: { url: "%s/metadata_0000.parquet" }
  image:    { url: "%s/img_emb_0000.npy" }
  text:     { path: "%s/text_emb_0000.npy" }
points:
  vectors: { image: image, text: text }
  payload: { source: metadata }
upload: { batch_size: 128, parallel: 3 }
snapshot: { destination: out }
`, httpAddr, grpcPort, dim, dim, files, files, fx.data)), 0o644)
	apply := func(ctx context.Context) *exec.Cmd {
		cmd := exec.CommandContext(ctx, filepath.Join(fx.bin, "snappipe"), "apply", cfg, "--progress", "never", "--log-level", "warn", "-y")
		cmd.Env = append(os.Environ(), "CI=true", "QDRANT_URL=", "QDRANT_API_KEY=")
		return cmd
	}
	// Kill 3-5 times at random moments spread over a run (~3 s: throttled
	// downloads, slowed upserts, a slow snapshot, a snapshot download cut
	// every 3 MB).
	kills := 3 + r.IntN(3)
	for k := 0; k < kills; k++ {
		cmd := apply(context.Background())
		var out strings.Builder
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		statePath := filepath.Join(dir, ".snappipe", "chaos.state.json")
		wait := time.Duration(50+r.IntN(3000)) * time.Millisecond
		trigger := time.After(wait)
		if k == 0 {
			// The first kill of each scenario waits for a given stage (in
			// turn over the seeds), so every stage is hit whatever the
			// machine's speed; the others land at random times.
			target := []string{"download", "upsert", "snapshot", "fetch"}[seed%4]
			ch := make(chan time.Time, 1)
			trigger = ch
			go func() {
				for deadline := time.Now().Add(time.Minute); time.Now().Before(deadline); time.Sleep(3 * time.Millisecond) {
					if phase(statePath, true) == target {
						break
					}
				}
				ch <- time.Now()
			}()
		}
		start := time.Now()
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		select {
		case err := <-done:
			if err != nil {
				t.Fatalf("run %d failed before the kill: %v\n%s", k, err, out.String())
			}
		case <-trigger:
			cmd.Process.Signal(syscall.SIGKILL)
			<-done
			ph := phase(statePath, true)
			phases[ph]++
			t.Logf("kill %d after %s: during %s", k, time.Since(start).Round(time.Millisecond), ph)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := apply(ctx)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("final run: %v\n%s", err, out)
	}
	verify(t, fx, httpAddr, grpcPort, dir)
}

// phases counts, over all scenarios, the stage each kill interrupted.
var phases = map[string]int{}

// phase reads the checkpoint a killed run left and names the stage it was in.
func phase(statePath string, remote bool) string {
	b, err := os.ReadFile(statePath)
	if err != nil {
		return "start"
	}
	var st struct {
		Downloads map[string]struct{ Done bool } `json:"downloads"`
		Upsert    struct{ Done bool }            `json:"upsert"`
		Snapshot  struct{ Name string }          `json:"snapshot"`
		Fetch     struct{ Done bool }            `json:"fetch"`
	}
	if json.Unmarshal(b, &st) != nil {
		return "start"
	}
	switch {
	case remote && (!st.Downloads["image"].Done || !st.Downloads["metadata"].Done):
		return "download"
	case !st.Upsert.Done:
		return "upsert"
	case st.Snapshot.Name == "":
		return "snapshot"
	case !st.Fetch.Done:
		return "fetch"
	}
	return "done"
}

func verify(t *testing.T, fx fixture, httpAddr, grpcPort, dir string) {
	t.Helper()
	port, _ := strconv.Atoi(grpcPort)
	c, err := qdrant.NewClient(&qdrant.Config{Host: "127.0.0.1", Port: port, SkipCompatibilityCheck: true})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx := context.Background()
	n, err := c.Count(ctx, &qdrant.CountPoints{CollectionName: "chaos", Exact: qdrant.PtrOf(true)})
	if err != nil || n != uint64(*rows) {
		t.Fatalf("count %d (%v), want %d", n, err, *rows)
	}
	img := testkit.NpyRows(t, filepath.Join(fx.data, "img_emb_0000.npy"))
	txt := testkit.NpyRows(t, filepath.Join(fx.data, "text_emb_0000.npy"))
	meta := testkit.ParquetRows(t, filepath.Join(fx.data, "metadata_0000.parquet"))
	var off *qdrant.PointId
	i := 0
	for {
		pts, next, err := c.ScrollAndOffset(ctx, &qdrant.ScrollPoints{CollectionName: "chaos", Offset: off, Limit: qdrant.PtrOf(uint32(1000)),
			WithPayload: qdrant.NewWithPayload(true), WithVectors: qdrant.NewWithVectors(true)})
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range pts {
			if p.GetId().GetNum() != uint64(i) {
				t.Fatalf("point %d has id %v", i, p.GetId())
			}
			vs := p.GetVectors().GetVectors().GetVectors()
			if !testkit.EqualF32(vs["image"].GetDense().GetData(), img[i]) || !testkit.EqualF32(vs["text"].GetDense().GetData(), txt[i]) {
				t.Fatalf("point %d: vectors differ from the source rows", i)
			}
			if !proto.Equal(&qdrant.Struct{Fields: p.GetPayload()}, &qdrant.Struct{Fields: meta[i]}) {
				t.Fatalf("point %d: payload differs", i)
			}
			i++
		}
		if next == nil {
			break
		}
		off = next
	}
	list, err := c.ListSnapshots(ctx, "chaos")
	if err != nil || len(list) != 1 {
		t.Fatalf("server has %d snapshots (%v), want exactly 1", len(list), err)
	}
	snap := filepath.Join(dir, "out", list[0].GetName())
	b, err := os.ReadFile(snap)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(b)
	if hex.EncodeToString(sum[:]) != list[0].GetChecksum() {
		t.Fatal("snapshot file sha256 differs from the server's checksum")
	}
	// No partial or temporary files anywhere snappipe writes.
	filepath.Walk(dir, func(p string, info os.FileInfo, err error) error {
		if err == nil && (strings.HasSuffix(p, ".part") || strings.HasSuffix(p, ".etag") || strings.Contains(filepath.Base(p), "snappipe-tmp")) {
			t.Errorf("left behind: %s", p)
		}
		return nil
	})
	ents, _ := os.ReadDir(filepath.Join(dir, "out"))
	if len(ents) != 1 {
		t.Errorf("destination holds %d files, want 1", len(ents))
	}
}

func TestInterruptSavesAndResumes(t *testing.T) {
	if testing.Short() {
		t.Skip("subprocess test skipped with -short")
	}
	fx := build(t)
	grpcPort, httpAddr := emulator(t, fx.bin, "--upsert-delay", "30ms")
	dir := t.TempDir()
	cfg := filepath.Join(dir, "p.yaml")
	os.WriteFile(cfg, []byte(fmt.Sprintf(`version: 1
name: sigint
qdrant: { url: "http://%s", grpc_port: %s }
collection:
  name: chaos
  vectors:
    image: { size: %d, distance: Cosine }
    text:  { size: %d, distance: Cosine }
sources:
  metadata: { path: "%[5]s/metadata_0000.parquet" }
  image:    { path: "%[5]s/img_emb_0000.npy" }
  text:     { path: "%[5]s/text_emb_0000.npy" }
points:
  vectors: { image: image, text: text }
  payload: { source: metadata }
upload: { batch_size: 128, parallel: 2 }
snapshot: { destination: out }
`, httpAddr, grpcPort, dim, dim, fx.data)), 0o644)
	cmd := exec.Command(filepath.Join(fx.bin, "snappipe"), "apply", cfg, "--progress", "never")
	cmd.Env = append(os.Environ(), "CI=true", "QDRANT_URL=", "QDRANT_API_KEY=")
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(800 * time.Millisecond)
	cmd.Process.Signal(syscall.SIGINT)
	err := cmd.Wait()
	ee, ok := err.(*exec.ExitError)
	if !ok || ee.ExitCode() != 130 {
		t.Fatalf("exit %v, want 130\n%s", err, out.String())
	}
	if !strings.Contains(out.String(), "Run the same command to resume") {
		t.Fatalf("no resume hint:\n%s", out.String())
	}
	if ph := phase(filepath.Join(dir, ".snappipe", "sigint.state.json"), false); ph != "upsert" {
		t.Fatalf("interrupted during %s, want upsert", ph)
	}
	cmd = exec.Command(filepath.Join(fx.bin, "snappipe"), "apply", cfg, "--progress", "never")
	cmd.Env = append(os.Environ(), "CI=true", "QDRANT_URL=", "QDRANT_API_KEY=")
	if b, err := cmd.CombinedOutput(); err != nil || !strings.Contains(string(b), "(resumed)") {
		t.Fatalf("resume: %v\n%s", err, b)
	}
}
