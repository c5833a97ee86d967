// Command bench runs snappipe's end-to-end benchmarks (make bench): it
// generates real-layout shards (cached), serves them over a Range-capable
// local HTTP server, starts the emulator with --discard, runs `snappipe
// apply` per scenario as a child process, and prints one table row per
// scenario with points/s, wall and CPU seconds, peak RSS (rusage of the
// child) and bytes fetched. A minimal client that upserts pre-built points
// the same way gives the reference for the throughput ratio.
//
//	go run ./cmd/bench -sizes 100000,1000000
package main

import (
	"bufio"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"
)

func main() {
	if len(os.Args) > 1 && os.Args[1] == "rawclient" {
		os.Exit(rawClient(os.Args[2:]))
	}
	sizes := flag.String("sizes", "100000,1000000", "shard sizes (rows) to benchmark")
	cache := flag.String("cache", ".cache/bench", "where generated shards are kept")
	bin := flag.String("bin", "bin", "directory with snappipe and qdrant-emulator")
	batch := flag.Int("batch", 256, "upload.batch_size")
	parallel := flag.Int("parallel", 2, "upload.parallel")
	embeddedRows := flag.Int("embedded-rows", 100000, "rows of the Parquet-embedded-vectors scenario (0: skip)")
	only := flag.String("only", "local,sink,http,limit,raw,embedded,embedded-f32,embedded-f32-crc,shards", "scenarios to run")
	shards := flag.String("shard-counts", "8,32", "shard counts of the shard-set scenario (same total rows): peak RSS must not grow with the count")
	flag.Parse()
	for _, k := range strings.Split(*only, ",") {
		want[strings.TrimSpace(k)] = true
	}
	var counts []int
	for _, c := range strings.Split(*shards, ",") {
		k, err := strconv.Atoi(strings.TrimSpace(c))
		if err != nil || k < 1 {
			fmt.Fprintf(os.Stderr, "bench: -shard-counts: %q is not a positive number\n", c)
			os.Exit(2)
		}
		counts = append(counts, k)
	}
	if err := run(*sizes, *cache, *bin, *batch, *parallel, *embeddedRows, counts); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

// want holds the scenarios selected with -only.
var want = map[string]bool{}

type result struct {
	name       string
	rows       int64
	wall, cpu  float64
	rssMiB     float64
	fetched    int64
	pointsPerS float64
}

// ensureData generates a shard set once (cached). It runs gensample as a
// child: rusage's peak RSS of later children would otherwise include this
// process's memory at fork time.
func ensureData(bin, dir string, rows int, embedded bool, extra ...string) error {
	marker := filepath.Join(dir, ".complete")
	args := []string{"-rows", strconv.Itoa(rows), "-dim", "768", "-seed", "42", "-out", dir}
	if embedded {
		args = append(args, "-embedded")
	}
	args = append(args, extra...)
	// The marker holds the generator's version and arguments: data from an
	// older generator (fewer files) is made again.
	stamp := dataVersion + " " + strings.Join(args, " ")
	if b, err := os.ReadFile(marker); err == nil && string(b) == stamp {
		return nil
	}
	fmt.Fprintf(os.Stderr, "generating %d rows in %s ...\n", rows, dir)
	cmd := exec.Command(filepath.Join(bin, "gensample"), args...)
	cmd.Stderr = os.Stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("gensample: %w", err)
	}
	return os.WriteFile(marker, []byte(stamp), 0o644)
}

// dataVersion changes when gensample writes different files for the same
// arguments (v2: -full-precision also writes float32 .npy files).
const dataVersion = "v2"

// warm reads the files of dir once, so a scenario measures snappipe's CPU
// and not the disk: a file evicted from the page cache by an earlier
// scenario costs readahead and page-cache fills in the kernel, charged to
// the run that reads it (6–8% of a Parquet run's profile, seen with perf).
func warm(dir string) {
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		if e.Type().IsRegular() {
			if f, err := os.Open(filepath.Join(dir, e.Name())); err == nil {
				io.Copy(io.Discard, f)
				f.Close()
			}
		}
	}
}

// ensureShards generates k shards of rows/k rows each (seeds differ) with
// the shard-set names metadata_000I.parquet, img_emb_000I.npy and
// text_emb_000I.npy (cached).
func ensureShards(bin, dir string, rows, k int) error {
	marker := filepath.Join(dir, ".complete")
	if _, err := os.Stat(marker); err == nil {
		return nil
	}
	for i := 0; i < k; i++ {
		sub := filepath.Join(dir, fmt.Sprintf("tmp-%d", i))
		fmt.Fprintf(os.Stderr, "generating shard %d (%d rows) in %s ...\n", i, rows/k, dir)
		cmd := exec.Command(filepath.Join(bin, "gensample"), "-rows", strconv.Itoa(rows/k), "-dim", "768", "-seed", strconv.Itoa(42+i), "-out", sub)
		cmd.Stderr = os.Stderr
		if err := cmd.Run(); err != nil {
			return fmt.Errorf("gensample: %w", err)
		}
		for _, f := range []string{"metadata_0000.parquet", "img_emb_0000.npy", "text_emb_0000.npy"} {
			to := strings.Replace(f, "0000", fmt.Sprintf("%04d", i), 1)
			if err := os.Rename(filepath.Join(sub, f), filepath.Join(dir, to)); err != nil {
				return err
			}
		}
		os.RemoveAll(sub)
	}
	return os.WriteFile(marker, nil, 0o644)
}

// counter serves files with Range support and counts body bytes.
type counter struct{ sent atomic.Int64 }

func (c *counter) server(root string) *httptest.Server {
	return httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p := filepath.Join(root, filepath.FromSlash(strings.TrimPrefix(r.URL.Path, "/")))
		f, err := os.Open(p)
		if err != nil {
			http.NotFound(w, r)
			return
		}
		defer f.Close()
		st, _ := f.Stat()
		w.Header().Set("ETag", fmt.Sprintf(`"%x-%x"`, st.Size(), st.ModTime().UnixNano()))
		http.ServeContent(&countingWriter{w, &c.sent}, r, st.Name(), st.ModTime(), f)
	}))
}

type countingWriter struct {
	http.ResponseWriter
	n *atomic.Int64
}

func (w *countingWriter) Write(p []byte) (int, error) {
	n, err := w.ResponseWriter.Write(p)
	w.n.Add(int64(n))
	return n, err
}

func startEmulator(bin, mode string) (grpcPort, httpAddr string, stop func(), err error) {
	cmd := exec.Command(filepath.Join(bin, "qdrant-emulator"), "--grpc-addr", "127.0.0.1:0", "--http-addr", "127.0.0.1:0", mode, "--log-level", "warn")
	out, _ := cmd.StdoutPipe()
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		return "", "", nil, err
	}
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		cmd.Process.Kill()
		return "", "", nil, err
	}
	f := strings.Fields(line)
	_, grpcPort, _ = net.SplitHostPort(strings.TrimPrefix(f[1], "grpc="))
	httpAddr = strings.TrimPrefix(f[2], "http=")
	return grpcPort, httpAddr, func() { cmd.Process.Signal(syscall.SIGTERM); cmd.Wait() }, nil
}

// measure runs a child and reports wall time and its rusage.
func measure(cmd *exec.Cmd) (wall, cpu, rssMiB float64, out []byte, err error) {
	start := time.Now()
	out, err = cmd.Output()
	wall = time.Since(start).Seconds()
	if cmd.ProcessState != nil {
		if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
			cpu = time.Duration(ru.Utime.Nano() + ru.Stime.Nano()).Seconds()
			rssMiB = float64(ru.Maxrss) / 1024
		}
	}
	return
}

func run(sizesFlag, cache, bin string, batch, parallel, embeddedRows int, shardCounts []int) error {
	var sizes []int
	for _, s := range strings.Split(sizesFlag, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil {
			return fmt.Errorf("-sizes: %v", err)
		}
		sizes = append(sizes, n)
	}
	var c counter
	srv := c.server(cache)
	defer srv.Close()
	grpcPort, httpAddr, stop, err := startEmulator(bin, "--discard")
	if err != nil {
		return err
	}
	defer stop()
	// The "sink" scenario's server: an emulator that counts the points of
	// an upsert without decoding them (--sink), so that snappipe does not
	// share the two cores with the ~5 CPU-s per 100k points the
	// emulator's decoding costs. The npy figure is into such a
	// no-op sink.
	toSink := func(cfg string) string { return cfg }
	if want["sink"] {
		sinkGRPC, sinkHTTP, stopSink, err := startEmulator(bin, "--sink")
		if err != nil {
			return err
		}
		defer stopSink()
		toSink = func(cfg string) string {
			return strings.Replace(cfg, fmt.Sprintf(`qdrant: { url: "http://%s", grpc_port: %s }`, httpAddr, grpcPort),
				fmt.Sprintf(`qdrant: { url: "http://%s", grpc_port: %s }`, sinkHTTP, sinkGRPC), 1)
		}
	}
	var sinkLines []string
	work, _ := os.MkdirTemp("", "snappipe-bench-")
	defer os.RemoveAll(work)
	var results []result
	apply := func(name string, rows int64, cfg string, data string) error {
		warm(data)
		dir := filepath.Join(work, strings.NewReplacer(" ", "-", "/", "-").Replace(name))
		os.MkdirAll(dir, 0o755)
		p := filepath.Join(dir, "p.yaml")
		if err := os.WriteFile(p, []byte(cfg), 0o644); err != nil {
			return err
		}
		before := c.sent.Load()
		cmd := exec.Command(filepath.Join(bin, "snappipe"), "apply", p, "-o", "json", "--progress", "never", "--log-level", "warn", "--full-refresh", "-y")
		cmd.Env = append(os.Environ(), "CI=true", "QDRANT_URL=", "QDRANT_API_KEY=")
		cmd.Stderr = os.Stderr
		wall, cpu, rss, out, err := measure(cmd)
		if err != nil {
			return fmt.Errorf("%s: %v", name, err)
		}
		var sum struct {
			Points int64 `json:"points_written"`
		}
		for _, l := range strings.Split(string(out), "\n") {
			if strings.HasPrefix(l, `{"type":"summary"`) {
				json.Unmarshal([]byte(l), &sum)
			}
		}
		if sum.Points != rows {
			return fmt.Errorf("%s: wrote %d points, want %d", name, sum.Points, rows)
		}
		r := result{name: name, rows: rows, wall: wall, cpu: cpu, rssMiB: rss, fetched: c.sent.Load() - before, pointsPerS: float64(rows) / wall}
		results = append(results, r)
		print1(r)
		return nil
	}
	fmt.Printf("batch_size %d, parallel %d; emulator with --discard\n\n", batch, parallel)
	fmt.Printf("| scenario | rows | points/s | wall s | CPU s | peak RSS MiB | bytes fetched |\n|---|---:|---:|---:|---:|---:|---:|\n")
	header := func(name string, limit string, sources string) string {
		return fmt.Sprintf(`version: 1
name: %s
qdrant: { url: "http://%s", grpc_port: %s }
collection:
  name: bench
  on_exists: recreate
  vectors:
    image: { size: 768, distance: Cosine }
    text:  { size: 768, distance: Cosine }
sources:
%s
points:
%s  vectors: { image: image, text: text }
  payload: { source: metadata }
upload: { batch_size: %d, parallel: %d }
snapshot: { destination: out }
`, name, httpAddr, grpcPort, sources, limit, batch, parallel)
	}
	ratios := map[int][2]float64{}
	var shardRatios []string
	var sameBytes string
	for _, n := range sizes {
		dir := filepath.Join(cache, fmt.Sprintf("rows-%d", n))
		if err := ensureData(bin, dir, n, false); err != nil {
			return err
		}
		abs, _ := filepath.Abs(dir)
		rel := fmt.Sprintf("rows-%d", n)
		local := fmt.Sprintf("  metadata: { path: %s/metadata_0000.parquet }\n  image: { path: %s/img_emb_0000.npy }\n  text: { path: %s/text_emb_0000.npy }", abs, abs, abs)
		remote := fmt.Sprintf("  metadata: { url: \"%s/%s/metadata_0000.parquet\" }\n  image: { url: \"%s/%s/img_emb_0000.npy\" }\n  text: { url: \"%s/%s/text_emb_0000.npy\" }", srv.URL, rel, srv.URL, rel, srv.URL, rel)
		var pipe float64
		if want["local"] {
			if err := apply(fmt.Sprintf("local full shard %d", n), int64(n), header("local", "", local), dir); err != nil {
				return err
			}
			pipe = results[len(results)-1].pointsPerS
		}
		if want["sink"] {
			if err := apply(fmt.Sprintf("local full shard %d into a no-op sink", n), int64(n), toSink(header("sink", "", local)), dir); err != nil {
				return err
			}
			l := fmt.Sprintf("npy path (LAION float16, local) at %d rows: %.2f CPU-s per 100k points into a no-op sink (emulator --sink)", n, results[len(results)-1].cpu*1e5/float64(n))
			if want["local"] {
				l += fmt.Sprintf(", %.2f into the emulator (--discard)", results[len(results)-2].cpu*1e5/float64(n))
			}
			sinkLines = append(sinkLines, l)
		}
		if want["http"] {
			if err := apply(fmt.Sprintf("HTTP full shard %d", n), int64(n), header("http", "", remote), dir); err != nil {
				return err
			}
		}
		if want["limit"] {
			if err := apply(fmt.Sprintf("HTTP limit 1000 of %d", n), 1000, header("limit", "  limit: 1000\n", remote), dir); err != nil {
				return err
			}
		}
		for _, k := range shardCounts {
			if !want["shards"] || !want["http"] {
				break
			}
			sdir := filepath.Join(cache, fmt.Sprintf("shards-%dx%d", k, n/k))
			if err := ensureShards(bin, sdir, n, k); err != nil {
				return err
			}
			srel := filepath.Base(sdir)
			sharded := fmt.Sprintf("  metadata: { url: \"%[1]s/%[2]s/metadata_{0000..%04[3]d}.parquet\" }\n  image: { url: \"%[1]s/%[2]s/img_emb_{0000..%04[3]d}.npy\" }\n  text: { url: \"%[1]s/%[2]s/text_emb_{0000..%04[3]d}.npy\" }", srv.URL, srel, k-1)
			single := results[len(results)-1]
			if single.name != fmt.Sprintf("HTTP full shard %d", n) {
				for _, r := range results {
					if r.name == fmt.Sprintf("HTTP full shard %d", n) {
						single = r
					}
				}
			}
			if err := apply(fmt.Sprintf("HTTP %d shards x 3 sources, %d rows", k, n/k*k), int64(n/k*k), header("shards", "", sharded), sdir); err != nil {
				return err
			}
			sh := results[len(results)-1]
			shardRatios = append(shardRatios, fmt.Sprintf("at %d rows: %d shards over HTTP / one file over HTTP: wall %.2f (%.2fs / %.2fs), peak RSS %.0f / %.0f MiB",
				n, k, sh.wall/single.wall, sh.wall, single.wall, sh.rssMiB, single.rssMiB))
		}
		if !want["raw"] {
			continue
		}
		cmd := exec.Command(os.Args[0], "rawclient", "-grpc-port", grpcPort, "-http", httpAddr, "-rows", strconv.Itoa(n),
			"-batch", strconv.Itoa(batch), "-parallel", strconv.Itoa(parallel), "-data", abs)
		cmd.Stderr = os.Stderr
		wall, cpu, rss, _, err := measure(cmd)
		if err != nil {
			return fmt.Errorf("raw client: %v", err)
		}
		r := result{name: fmt.Sprintf("pre-built points client %d", n), rows: int64(n), wall: wall, cpu: cpu, rssMiB: rss, pointsPerS: float64(n) / wall}
		results = append(results, r)
		print1(r)
		ratios[n] = [2]float64{pipe, r.pointsPerS}
	}
	// The same rows with their vectors in list<float> columns: as float16
	// values widened (the .npy rows exactly), and at float32 precision as a
	// model's outputs are — Snappy decodes the first ~15× slower (its many
	// short matches) than the second (literal runs).
	for _, v := range []struct {
		scenario, dir, name string
		extra               []string
	}{
		{"embedded", "embedded-%d", "Parquet-embedded vectors %d", nil},
		// The Hugging Face layout (pyarrow's defaults: data page v1, no
		// page CRCs), and the same rows as parquet-go writes them (data
		// page v2, a CRC per page that the reader checks).
		{"embedded-f32", "embedded-f32-hf-%d", "Parquet-embedded full-precision float32 vectors, Hugging Face layout %d", []string{"-full-precision", "-pyarrow"}},
		{"embedded-f32-crc", "embedded-f32-%d", "Parquet-embedded full-precision float32 vectors, parquet-go layout with page CRCs %d", []string{"-full-precision"}},
	} {
		if embeddedRows <= 0 || !want[v.scenario] {
			continue
		}
		dir := filepath.Join(cache, fmt.Sprintf(v.dir, embeddedRows))
		if err := ensureData(bin, dir, embeddedRows, true, v.extra...); err != nil {
			return err
		}
		abs, _ := filepath.Abs(dir)
		cfg := strings.Replace(header("embedded", "", fmt.Sprintf("  data: { path: %s/data.parquet }", abs)),
			"  vectors: { image: image, text: text }\n  payload: { source: metadata }",
			"  vectors: { image: { source: data, column: image }, text: { source: data, column: text } }\n  payload: { source: data, exclude: [image, text] }", 1)
		if err := apply(fmt.Sprintf(v.name, embeddedRows), int64(embeddedRows), cfg, dir); err != nil {
			return err
		}
		if v.scenario != "embedded-f32" {
			continue
		}
		// The same float32 values as .npy files (and the metadata as
		// payload): the two readers on the same bytes.
		parquetCPU := results[len(results)-1].cpu
		f32 := fmt.Sprintf("  metadata: { path: %[1]s/metadata_0000.parquet }\n  image: { path: %[1]s/img_emb_f32.npy }\n  text: { path: %[1]s/text_emb_f32.npy }", abs)
		if err := apply(fmt.Sprintf("local npy float32, the same values %d", embeddedRows), int64(embeddedRows), header("npyf32", "", f32), dir); err != nil {
			return err
		}
		npyCPU := results[len(results)-1].cpu
		sameBytes = fmt.Sprintf("Parquet list columns (Hugging Face layout) / npy, the same float32 values: CPU %.2f (%.2fs / %.2fs)", parquetCPU/npyCPU, parquetCPU, npyCPU)
		for _, r := range results {
			if r.name == fmt.Sprintf("local full shard %d", embeddedRows) {
				sameBytes += fmt.Sprintf("\nParquet list columns (Hugging Face layout) / npy float16 (LAION), the same rows: CPU %.2f (%.2fs / %.2fs)", parquetCPU/r.cpu, parquetCPU, r.cpu)
			}
		}
		if !want["sink"] {
			continue
		}
		// The same three into the no-op sink, as the issue measured them:
		// the emulator's decoding (beside snappipe on the same cores)
		// costs the npy runs, shorter, relatively more than the Parquet
		// ones, which makes the ratios look better than they are.
		if err := apply(fmt.Sprintf(v.name+" into a no-op sink", embeddedRows), int64(embeddedRows), toSink(cfg), dir); err != nil {
			return err
		}
		parquetSink := results[len(results)-1].cpu
		if err := apply(fmt.Sprintf("local npy float32, the same values %d into a no-op sink", embeddedRows), int64(embeddedRows), toSink(header("npyf32", "", f32)), dir); err != nil {
			return err
		}
		npySink := results[len(results)-1].cpu
		f16 := fmt.Sprintf("  metadata: { path: %[1]s/metadata_0000.parquet }\n  image: { path: %[1]s/img_emb_0000.npy }\n  text: { path: %[1]s/text_emb_0000.npy }", abs)
		if err := apply(fmt.Sprintf("local npy float16 (LAION), the same rows %d into a no-op sink", embeddedRows), int64(embeddedRows), toSink(header("npyf16", "", f16)), dir); err != nil {
			return err
		}
		halfSink := results[len(results)-1].cpu
		sameBytes += fmt.Sprintf("\nInto a no-op sink: Parquet list columns (Hugging Face layout) / npy, the same float32 values: CPU %.2f (%.2fs / %.2fs)", parquetSink/npySink, parquetSink, npySink)
		sameBytes += fmt.Sprintf("\nInto a no-op sink: Parquet list columns (Hugging Face layout) / npy float16 (LAION), the same rows: CPU %.2f (%.2fs / %.2fs)", parquetSink/halfSink, parquetSink, halfSink)
	}
	if sameBytes != "" {
		fmt.Println()
		fmt.Println(sameBytes)
	}
	fmt.Println()
	for _, l := range sinkLines {
		fmt.Println(l)
	}
	for _, l := range shardRatios {
		fmt.Println("shard sets", l)
	}
	for _, n := range sizes {
		r, ok := ratios[n]
		if !ok || r[0] == 0 {
			continue
		}
		fmt.Printf("ratio at %d rows: snappipe %.0f points/s / pre-built client %.0f points/s = %.2f\n", n, r[0], r[1], r[0]/r[1])
	}
	return nil
}

func print1(r result) {
	fmt.Printf("| %s | %d | %.0f | %.2f | %.2f | %.0f | %d |\n", r.name, r.rows, r.pointsPerS, r.wall, r.cpu, r.rssMiB, r.fetched)
}
