// Package chaos kills `snappipe apply` with SIGKILL and checks that running
// it again always ends in the exact final state. The first kill of each
// scenario lands inside a chosen stage (after download bytes are written,
// after N acknowledged batches, after the server received the snapshot
// request, after snapshot bytes are fetched), the others at random moments;
// where every kill landed is reported, and a stage never hit inside fails
// the run. The end state is checked against the generator's formula (not
// the pipeline's readers), on the server and in the fetched snapshot
// recovered into a fresh emulator.
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
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/qdrant/go-client/qdrant"
	"github.com/snappipe/snappipe/internal/sample"
	"github.com/snappipe/snappipe/internal/testkit"
	"google.golang.org/protobuf/proto"
)

var (
	seeds     = flag.Int("seeds", 10, "number of kill scenarios")
	firstSeed = flag.Int("first-seed", 1, "first seed")
	rows      = flag.Int("rows", 10000, "rows in the generated shard (make chaos uses 20000)")
)

const (
	dim  = 64
	seed = 1 // gensample's default
)

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
// snapReqs counts the snapshot requests it has received (from its log).
func emulator(t *testing.T, bin string, args ...string) (grpcPort, httpAddr string, snapReqs *atomic.Int64) {
	t.Helper()
	cmd := exec.Command(filepath.Join(bin, "qdrant-emulator"), append([]string{"--grpc-addr", "127.0.0.1:0", "--http-addr", "127.0.0.1:0", "--log-level", "info"}, args...)...)
	out, _ := cmd.StdoutPipe()
	logs, _ := cmd.StderrPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	snapReqs = &atomic.Int64{}
	go func() {
		sc := bufio.NewScanner(logs)
		for sc.Scan() {
			line := sc.Text()
			switch {
			case strings.Contains(line, `msg="snapshot requested"`):
				snapReqs.Add(1)
			case strings.Contains(line, "level=ERROR"):
				fmt.Fprintln(os.Stderr, line)
			}
		}
	}()
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
	return grpcPort, strings.TrimPrefix(f[2], "http="), snapReqs
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

// snappipe is the built binary with args, its environment isolated from
// the host's QDRANT_* settings; ctx may be nil.
func snappipe(ctx context.Context, fx fixture, args ...string) *exec.Cmd {
	var cmd *exec.Cmd
	if ctx != nil {
		cmd = exec.CommandContext(ctx, filepath.Join(fx.bin, "snappipe"), args...)
	} else {
		cmd = exec.Command(filepath.Join(fx.bin, "snappipe"), args...)
	}
	cmd.Env = append(os.Environ(), "CI=true", "QDRANT_URL=", "QDRANT_API_KEY=")
	return cmd
}

var stages = []string{"download", "upsert", "snapshot", "fetch"}

func TestKillAndResume(t *testing.T) {
	if testing.Short() {
		t.Skip("kill harness skipped with -short")
	}
	fx := build(t)
	files := slowFiles(t, fx.data)
	for s := *firstSeed; s < *firstSeed+*seeds; s++ {
		t.Run(fmt.Sprintf("seed%d", s), func(t *testing.T) { scenario(t, fx, files, uint64(s)) })
	}
	t.Logf("kills inside each stage: %v; at an edge between stages: %v", inside, edges)
	if *seeds >= len(stages) {
		for _, st := range stages {
			if inside[st] == 0 {
				t.Errorf("no kill landed inside %s", st)
			}
		}
	}
}

// inside counts, over all scenarios, the kills that landed inside each
// stage; edges those that landed before or between stages.
var inside, edges = map[string]int{}, map[string]int{}

func scenario(t *testing.T, fx fixture, files string, sd uint64) {
	r := rand.New(rand.NewPCG(sd, 7))
	grpcPort, httpAddr, snapReqs := emulator(t, fx.bin, "--upsert-delay", "2ms", "--snapshot-delay", "400ms", "--fail-rate", "0.02", "--truncate-download-after", "3000000", "--seed", strconv.FormatUint(sd, 10))
	dir := t.TempDir()
	cfg := pipeline{qdrant: emulatorQdrant(httpAddr, grpcPort), collection: "  on_exists: recreate\n",
		sources: fmt.Sprintf(`  metadata: { url: "%[1]s/metadata_0000.parquet" }
  image:    { url: "%[1]s/img_emb_0000.npy" }
  text:     { path: "%[2]s/text_emb_0000.npy" }
`, files, fx.data),
		rest: "upload: { batch_size: 128, parallel: 3 }\nsnapshot: { destination: out }\n"}.write(t, dir)
	apply := func(ctx context.Context) *exec.Cmd {
		cmd := exec.CommandContext(ctx, filepath.Join(fx.bin, "snappipe"), "apply", cfg, "--progress", "never", "--log-level", "warn", "-y")
		cmd.Env = append(os.Environ(), "CI=true", "QDRANT_URL=", "QDRANT_API_KEY=")
		return cmd
	}
	pr := probe{dir: dir, snapReqs: snapReqs}
	// Kill 3-5 times. The first kill waits until the run is inside the
	// scenario's target stage (in turn over the seeds); the others land at
	// random moments over a run (~3 s: throttled downloads, slowed upserts,
	// a slow snapshot, a snapshot download cut every 3 MB).
	target := stages[sd%uint64(len(stages))]
	minBatches := int64(1 + r.IntN(max(1, *rows/128/3))) // of rows/128 batches
	kills := 3 + r.IntN(3)
	for k := 0; k < kills; k++ {
		cmd := apply(context.Background())
		var out strings.Builder
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		var trigger <-chan time.Time
		if k == 0 {
			ch := make(chan time.Time, 1)
			trigger = ch
			stop := make(chan struct{})
			defer close(stop)
			go func() {
				for {
					select {
					case <-stop:
						return
					default:
					}
					rd := pr.read()
					if st, _ := rd.inside(); st == target && (target != "upsert" || rd.acked >= minBatches) {
						ch <- time.Now()
						return
					}
					time.Sleep(2 * time.Millisecond)
				}
			}()
		} else {
			trigger = time.After(time.Duration(50+r.IntN(3000)) * time.Millisecond)
		}
		select {
		case err := <-done:
			if k == 0 {
				t.Fatalf("the run ended (%v) before it was inside %s: the targeted kill never landed\n%s", err, target, out.String())
			}
			if err != nil {
				t.Fatalf("run %d failed before the kill: %v\n%s", k, err, out.String())
			}
		case <-trigger:
			cmd.Process.Signal(syscall.SIGKILL)
			<-done
			st, detail := pr.read().inside()
			if st != "" {
				inside[st]++
				t.Logf("kill %d after %s: inside %s (%s)", k, time.Since(start).Round(time.Millisecond), st, detail)
			} else {
				edges[detail]++
				t.Logf("kill %d after %s: at an edge (%s)", k, time.Since(start).Round(time.Millisecond), detail)
			}
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

// probe reads what a (killed) run left on disk and what the server saw.
type probe struct {
	dir      string
	snapReqs *atomic.Int64
}

// reading is one look at a run's progress.
type reading struct {
	state     chaosState
	cachePart int64 // bytes in the download cache's .part files
	outPart   int64 // bytes in the destination's .part files
	acked     int64 // batches acknowledged in the checkpoint
	snapReqs  int64 // snapshot requests the server received
}

type chaosState struct {
	Downloads map[string]struct{ Done bool } `json:"downloads"`
	Upsert    struct {
		Watermark int64   `json:"watermark"`
		Above     []int64 `json:"acked_above_watermark"`
		Done      bool    `json:"done"`
	} `json:"upsert"`
	Snapshot struct {
		RequestedAt *time.Time `json:"requested_at"`
		Name        string     `json:"name"`
	} `json:"snapshot"`
	Fetch struct{ Done bool } `json:"fetch"`
}

func partBytes(dir string) int64 {
	var n int64
	m, _ := filepath.Glob(filepath.Join(dir, "*.part"))
	for _, p := range m {
		if fi, err := os.Stat(p); err == nil {
			n += fi.Size()
		}
	}
	return n
}

func (p probe) read() reading {
	var rd reading
	if b, err := os.ReadFile(filepath.Join(p.dir, ".snappipe", "chaos.state.json")); err == nil {
		json.Unmarshal(b, &rd.state)
	}
	rd.cachePart = partBytes(filepath.Join(p.dir, ".snappipe", "cache", "chaos"))
	rd.outPart = partBytes(filepath.Join(p.dir, "out"))
	rd.acked = rd.state.Upsert.Watermark + int64(len(rd.state.Upsert.Above))
	rd.snapReqs = p.snapReqs.Load()
	return rd
}

// inside names the stage the run was inside, with evidence, or "" and the
// edge it was at.
func (rd reading) inside() (stage, detail string) {
	st := rd.state
	downloaded := st.Downloads["image"].Done && st.Downloads["metadata"].Done
	switch {
	case !downloaded && rd.cachePart > 0:
		return "download", fmt.Sprintf("%d bytes in .part files", rd.cachePart)
	case !downloaded:
		return "", "before download bytes"
	case !st.Upsert.Done && rd.acked > 0:
		return "upsert", fmt.Sprintf("%d batches acknowledged", rd.acked)
	case !st.Upsert.Done:
		return "", "before the first acknowledged batch"
	case st.Snapshot.Name == "" && st.Snapshot.RequestedAt != nil && rd.snapReqs > 0:
		return "snapshot", "request received by the server, name not yet recorded"
	case st.Snapshot.Name == "":
		return "", "before the snapshot request reached the server"
	case !st.Fetch.Done && rd.outPart > 0:
		return "fetch", fmt.Sprintf("%d snapshot bytes fetched", rd.outPart)
	case !st.Fetch.Done:
		return "", "before the first snapshot byte"
	}
	return "", "after the run finished"
}

// expected is the oracle: every point as the generator's formula says,
// computed without the pipeline's npy/Parquet readers.
type expected struct {
	image, text [][]float32
	payload     []map[string]*qdrant.Value
}

var oracle = sync.OnceValues(func() (*expected, error) {
	e := &expected{}
	err := sample.Each(*rows, dim, seed, func(i int, m sample.Meta, img, txt []float32) error {
		e.image = append(e.image, append([]float32(nil), img...))
		e.text = append(e.text, append([]float32(nil), txt...))
		e.payload = append(e.payload, metaPayload(m))
		return nil
	})
	return e, err
})

// metaPayload is the payload a metadata row must become: every column,
// nulls as null, strings, doubles and integers as such.
func metaPayload(m sample.Meta) map[string]*qdrant.Value {
	out := map[string]*qdrant.Value{}
	str := func(k string, v *string) {
		if v == nil {
			out[k] = qdrant.NewValueNull()
		} else {
			out[k] = qdrant.NewValueString(*v)
		}
	}
	num := func(k string, v *int64) {
		if v == nil {
			out[k] = qdrant.NewValueNull()
		} else {
			out[k] = qdrant.NewValueInt(*v)
		}
	}
	str("image_path", m.ImagePath)
	str("caption", m.Caption)
	str("NSFW", m.NSFW)
	if m.Similarity == nil {
		out["similarity"] = qdrant.NewValueNull()
	} else {
		out["similarity"] = qdrant.NewValueDouble(*m.Similarity)
	}
	str("LICENSE", m.LICENSE)
	str("url", m.URL)
	str("key", m.Key)
	str("status", m.Status)
	str("error_message", m.ErrorMessage)
	num("width", m.Width)
	num("height", m.Height)
	num("original_width", m.OriginalWidth)
	num("original_height", m.OriginalHeight)
	str("exif", m.Exif)
	str("md5", m.MD5)
	return out
}

// checkCollection compares every point of a collection with the oracle.
func checkCollection(t *testing.T, c *qdrant.Client, name string) {
	t.Helper()
	want, err := oracle()
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	n, err := c.Count(ctx, &qdrant.CountPoints{CollectionName: name, Exact: qdrant.PtrOf(true)})
	if err != nil || n != uint64(*rows) {
		t.Fatalf("%s: count %d (%v), want %d", name, n, err, *rows)
	}
	var off *qdrant.PointId
	i := 0
	for {
		pts, next, err := c.ScrollAndOffset(ctx, &qdrant.ScrollPoints{CollectionName: name, Offset: off, Limit: qdrant.PtrOf(uint32(1000)),
			WithPayload: qdrant.NewWithPayload(true), WithVectors: qdrant.NewWithVectors(true)})
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range pts {
			if p.GetId().GetNum() != uint64(i) {
				t.Fatalf("%s: point %d has id %v", name, i, p.GetId())
			}
			vs := p.GetVectors().GetVectors().GetVectors()
			if !testkit.EqualF32(vs["image"].GetDense().GetData(), want.image[i]) || !testkit.EqualF32(vs["text"].GetDense().GetData(), want.text[i]) {
				t.Fatalf("%s: point %d: vectors differ from the generator's rows", name, i)
			}
			if !proto.Equal(&qdrant.Struct{Fields: p.GetPayload()}, &qdrant.Struct{Fields: want.payload[i]}) {
				t.Fatalf("%s: point %d: payload %v, want %v", name, i, p.GetPayload(), want.payload[i])
			}
			i++
		}
		if next == nil {
			break
		}
		off = next
	}
	if i != *rows {
		t.Fatalf("%s: scrolled %d points, want %d", name, i, *rows)
	}
}

func connect(t *testing.T, grpcPort string) *qdrant.Client {
	t.Helper()
	port, _ := strconv.Atoi(grpcPort)
	c, err := qdrant.NewClient(&qdrant.Config{Host: "127.0.0.1", Port: port, SkipCompatibilityCheck: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func verify(t *testing.T, fx fixture, httpAddr, grpcPort, dir string) {
	t.Helper()
	c := connect(t, grpcPort)
	checkCollection(t, c, "chaos")
	list, err := c.ListSnapshots(context.Background(), "chaos")
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
	// The fetched file restores elsewhere: recover it into a fresh
	// emulator and compare every point again.
	// (another emulator process: the restore runs outside the race detector)
	freshGRPC, freshHTTP, _ := emulator(t, fx.bin, "--log-level", "warn")
	testkit.RecoverSnapshot(t, "http://"+freshHTTP, "", "restored", snap)
	checkCollection(t, connect(t, freshGRPC), "restored")
	// No partial or temporary files anywhere snappipe writes.
	filepath.Walk(dir, func(p string, info os.FileInfo, err error) error {
		if err == nil && (strings.HasSuffix(p, ".part") || strings.HasSuffix(p, ".etag") || strings.Contains(filepath.Base(p), "snappipe-tmp")) {
			t.Errorf("left behind: %s", p)
		}
		return nil
	})
	ents, _ := os.ReadDir(filepath.Join(dir, "out"))
	if len(ents) != 2 {
		t.Errorf("destination holds %d files, want the snapshot and its manifest", len(ents))
	}
	var m struct {
		Snapshot string `json:"snapshot"`
		SHA256   string `json:"sha256"`
		Points   int64  `json:"points"`
	}
	if b, err := os.ReadFile(snap + ".json"); err != nil || json.Unmarshal(b, &m) != nil || m.Snapshot != list[0].GetName() || m.SHA256 != list[0].GetChecksum() || m.Points != int64(*rows) {
		t.Errorf("manifest %s: %+v (%v)", snap+".json", m, err)
	}
}

// An interrupt (SIGINT or SIGTERM) during the upload stops sending, saves
// what was acknowledged, exits 130 with a resume hint; the same command
// then finishes with exactly the source's points.
func TestInterruptSavesAndResumes(t *testing.T) {
	if testing.Short() {
		t.Skip("subprocess test skipped with -short")
	}
	fx := build(t)
	for _, sig := range []syscall.Signal{syscall.SIGINT, syscall.SIGTERM} {
		t.Run(sig.String(), func(t *testing.T) { interrupt(t, fx, sig) })
	}
}

func interrupt(t *testing.T, fx fixture, sig syscall.Signal) {
	grpcPort, httpAddr, _ := emulator(t, fx.bin, "--upsert-delay", "30ms")
	dir := t.TempDir()
	cfg := pipeline{name: "sigint", qdrant: emulatorQdrant(httpAddr, grpcPort), sources: localSources(fx.data),
		rest: "upload: { batch_size: 128, parallel: 2 }\nsnapshot: { destination: out }\n"}.write(t, dir)
	cmd := exec.Command(filepath.Join(fx.bin, "snappipe"), "apply", cfg, "--progress", "never")
	cmd.Env = append(os.Environ(), "CI=true", "QDRANT_URL=", "QDRANT_API_KEY=")
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	// Interrupt once a few batches are acknowledged (observed in the
	// checkpoint), not after a fixed time.
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	statePath := filepath.Join(dir, ".snappipe", "sigint.state.json")
	for {
		b, _ := os.ReadFile(statePath)
		var st chaosState
		if json.Unmarshal(b, &st) == nil && st.Upsert.Watermark+int64(len(st.Upsert.Above)) >= 3 {
			break
		}
		select {
		case err := <-done:
			t.Fatalf("run ended (%v) before 3 batches were acknowledged:\n%s", err, out.String())
		case <-time.After(2 * time.Millisecond):
		}
	}
	cmd.Process.Signal(sig)
	err := <-done
	ee, ok := err.(*exec.ExitError)
	if !ok || ee.ExitCode() != 130 {
		t.Fatalf("exit %v, want 130\n%s", err, out.String())
	}
	if !strings.Contains(out.String(), "Run the same command to resume") {
		t.Fatalf("no resume hint:\n%s", out.String())
	}
	b, _ := os.ReadFile(statePath)
	var st chaosState
	json.Unmarshal(b, &st)
	if st.Upsert.Done || st.Upsert.Watermark+int64(len(st.Upsert.Above)) < 3 {
		t.Fatalf("interrupted state: %+v", st.Upsert)
	}
	cmd = exec.Command(filepath.Join(fx.bin, "snappipe"), "apply", cfg, "--progress", "never")
	cmd.Env = append(os.Environ(), "CI=true", "QDRANT_URL=", "QDRANT_API_KEY=")
	if b, err := cmd.CombinedOutput(); err != nil || !strings.Contains(string(b), "(resumed)") {
		t.Fatalf("resume: %v\n%s", err, b)
	}
	checkCollection(t, connect(t, grpcPort), "chaos")
}
