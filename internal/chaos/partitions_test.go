package chaos

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/parquet-go/parquet-go"

	"github.com/snappipe/snappipe/internal/npy"
	"github.com/snappipe/snappipe/internal/sample"
	"github.com/snappipe/snappipe/internal/testkit"
)

// splitShards cuts the generated single files into shards at the given
// row boundaries (metadata_000K.parquet, img_emb_000K.npy and
// text_emb_000K.npy): the shard set holds exactly the oracle's rows.
func splitShards(t *testing.T, from, to string, bounds []int) {
	t.Helper()
	for _, kind := range []string{"img_emb", "text_emb"} {
		rows := testkit.NpyRows(t, filepath.Join(from, kind+"_0000.npy"))
		for k := 0; k+1 < len(bounds); k++ {
			f, err := os.Create(filepath.Join(to, fmt.Sprintf("%s_%04d.npy", kind, k)))
			if err != nil {
				t.Fatal(err)
			}
			part := rows[bounds[k]:bounds[k+1]]
			npy.WriteHeader(f, "<f4", int64(len(part)), dim)
			for _, r := range part {
				for _, v := range r {
					var b [4]byte
					putF32(b[:], v)
					f.Write(b[:])
				}
			}
			f.Close()
		}
	}
	rf, err := os.Open(filepath.Join(from, "metadata_0000.parquet"))
	if err != nil {
		t.Fatal(err)
	}
	defer rf.Close()
	r := parquet.NewGenericReader[sample.Meta](rf)
	all := make([]sample.Meta, r.NumRows())
	if n, err := r.Read(all); err != nil && err != io.EOF || n != len(all) {
		t.Fatalf("read metadata: %d rows, %v", n, err)
	}
	for k := 0; k+1 < len(bounds); k++ {
		f, err := os.Create(filepath.Join(to, fmt.Sprintf("metadata_%04d.parquet", k)))
		if err != nil {
			t.Fatal(err)
		}
		w := parquet.NewGenericWriter[sample.Meta](f)
		if _, err := w.Write(all[bounds[k]:bounds[k+1]]); err != nil {
			t.Fatal(err)
		}
		w.Close()
		f.Close()
	}
}

// TestPartitionsAcrossProcesses runs three partitions of a 7-shard set as
// separate processes at once, each with its own state dir; one is killed
// (SIGKILL) once it has acknowledged batches and is run again; then
// finalize checks the collection and takes the one snapshot. Every point
// equals the generator's row, and the snapshot restores elsewhere.
func TestPartitionsAcrossProcesses(t *testing.T) {
	if testing.Short() {
		t.Skip("multi-process harness skipped with -short")
	}
	fx := build(t)
	shards := t.TempDir()
	n := *rows
	bounds := []int{0, n * 14 / 100, n * 30 / 100, n * 30 / 100, n * 55 / 100, n * 70 / 100, n * 88 / 100, n} // shard 2 empty
	splitShards(t, fx.data, shards, bounds)
	files := slowFiles(t, shards)
	// 40ms an upsert: partition 1's ~25 batches take about half a second,
	// so its checkpoint (saved every 250ms) shows acknowledged batches well
	// before it is done.
	grpcPort, httpAddr, _ := emulator(t, fx.bin, "--upsert-delay", "40ms", "--log-level", "warn")
	dir := t.TempDir()
	cfg := pipeline{qdrant: emulatorQdrant(httpAddr, grpcPort), collection: "  on_exists: reuse\n",
		sources: fmt.Sprintf(`  metadata: { url: "%[1]s/metadata_{0000..0006}.parquet" }
  image:    { url: "%[1]s/img_emb_{0000..0006}.npy" }
  text:     { path: "%[2]s/text_emb_*.npy" }
`, files, shards),
		rest: "upload: { batch_size: 128, parallel: 2 }\nsnapshot: { destination: out }\n"}.write(t, dir)
	run := func(args ...string) *exec.Cmd {
		cmd := snappipe(nil, fx, append([]string{"apply", cfg, "--progress", "never", "--log-level", "warn"}, args...)...)
		return cmd
	}
	stateDir := func(i int) string { return filepath.Join(dir, fmt.Sprintf("state-%d", i)) }
	type result struct {
		i   int
		out string
		err error
	}
	done := make(chan result, 3)
	var victim *exec.Cmd
	var victimOut strings.Builder
	for i := 0; i < 3; i++ {
		cmd := run("--partition", fmt.Sprintf("%d/3", i), "--state-dir", stateDir(i))
		if i == 1 {
			victim = cmd
			cmd.Stdout, cmd.Stderr = &victimOut, &victimOut
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			continue
		}
		go func() {
			out, err := cmd.CombinedOutput()
			done <- result{i, string(out), err}
		}()
	}
	// Kill partition 1 once its checkpoint holds acknowledged batches.
	statePath := filepath.Join(stateDir(1), "chaos.part-1-of-3.state.json")
	exited := make(chan error, 1)
	go func() { exited <- victim.Wait() }()
	killed := false
	for !killed {
		select {
		case err := <-exited:
			t.Fatalf("partition 1 ended (%v) before it acknowledged a batch\n%s", err, victimOut.String())
		default:
		}
		var st struct {
			Upsert struct {
				Watermark int64   `json:"watermark"`
				Above     []int64 `json:"acked_above_watermark"`
				Done      bool    `json:"done"`
			} `json:"upsert"`
		}
		if b, err := os.ReadFile(statePath); err == nil && json.Unmarshal(b, &st) == nil && st.Upsert.Watermark+int64(len(st.Upsert.Above)) > 0 {
			if st.Upsert.Done {
				t.Fatal("partition 1 was done before the kill: the harness proves nothing (slow the upserts more)")
			}
			victim.Process.Signal(syscall.SIGKILL)
			<-exited
			killed = true
		}
		time.Sleep(5 * time.Millisecond)
	}
	for range 2 {
		r := <-done
		if r.err != nil {
			t.Fatalf("partition %d: %v\n%s", r.i, r.err, r.out)
		}
		if !strings.Contains(r.out, fmt.Sprintf("Partition %d/3 loaded; run `snappipe apply --finalize --partitions 3 ", r.i)) {
			t.Fatalf("partition %d output:\n%s", r.i, r.out)
		}
	}
	// Finalize now fails, naming partition 1's shards (1 and 4).
	out, err := run("--finalize", "--partitions", "3", "--state-dir", filepath.Join(dir, "final")).CombinedOutput()
	if err == nil || !strings.Contains(string(out), "(partitions 1 of 3)") {
		t.Fatalf("finalize before partition 1 finished: %v\n%s", err, out)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	rerun := snappipe(ctx, fx, "apply", cfg, "--progress", "never", "--log-level", "warn", "--partition", "1/3", "--state-dir", stateDir(1))
	if out, err := rerun.CombinedOutput(); err != nil || !strings.Contains(string(out), "(resumed)") {
		t.Fatalf("partition 1 rerun: %v\n%s", err, out)
	}
	if out, err := run("--finalize", "--partitions", "3", "--state-dir", filepath.Join(dir, "final")).CombinedOutput(); err != nil {
		t.Fatalf("finalize: %v\n%s", err, out)
	}
	verify(t, fx, httpAddr, grpcPort, dir)
}

func putF32(b []byte, v float32) { binary.LittleEndian.PutUint32(b, math.Float32bits(v)) }
