package chaos

import (
	"context"
	"flag"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

var hostileSeeds = flag.Int("hostile-seeds", 7, "number of hostile-server scenarios (make chaos runs more)")

// misbehaviour is one way a source server lies or stalls.
type misbehaviour string

const (
	stallBody    misbehaviour = "stall-body"    // half the body, then nothing
	silent       misbehaviour = "silent"        // no headers at all
	busy         misbehaviour = "503"           // 503 with Retry-After: 0
	truncated    misbehaviour = "truncated"     // Content-Length, then the connection closes early
	endless      misbehaviour = "endless"       // the file, then bytes forever, no Content-Length
	lyingSize    misbehaviour = "lying-size"    // X-Linked-Size larger than the file
	fileRedirect misbehaviour = "file-redirect" // 302 to file:///etc/passwd
)

var transient = []misbehaviour{stallBody, silent, busy, truncated}
var permanent = map[misbehaviour]string{
	endless:      "server sent more bytes than the file's declared size",
	lyingSize:    "checksum mismatch",
	fileRedirect: "unsupported protocol scheme",
}

// hostileFiles serves dir; each file's first `bad` requests misbehave as
// told, the rest are honest.
type hostileFiles struct {
	dir  string
	how  misbehaviour
	bad  int
	mu   sync.Mutex
	reqs map[string]int
}

func (h *hostileFiles) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	name := filepath.Base(r.URL.Path)
	h.mu.Lock()
	n := h.reqs[name]
	h.reqs[name]++
	h.mu.Unlock()
	b, err := os.ReadFile(filepath.Join(h.dir, name))
	if err != nil {
		http.NotFound(w, r)
		return
	}
	if n >= h.bad {
		http.ServeFile(w, r, filepath.Join(h.dir, name))
		return
	}
	switch h.how {
	case stallBody:
		w.Header().Set("Content-Length", strconv.Itoa(len(b)))
		w.Write(b[:len(b)/2])
		w.(http.Flusher).Flush()
		<-r.Context().Done()
	case silent:
		<-r.Context().Done()
	case busy:
		w.Header().Set("Retry-After", "0")
		w.WriteHeader(http.StatusServiceUnavailable)
	case truncated:
		w.Header().Set("Content-Length", strconv.Itoa(len(b)))
		w.Write(b[:len(b)/3])
	case endless:
		w.Write(b)
		chunk := make([]byte, 64<<10)
		for r.Context().Err() == nil {
			if _, err := w.Write(chunk); err != nil {
				return
			}
			w.(http.Flusher).Flush()
		}
	case lyingSize:
		w.Header().Set("X-Linked-Size", strconv.Itoa(len(b)+1000))
		http.ServeFile(w, r, filepath.Join(h.dir, name))
	case fileRedirect:
		http.Redirect(w, r, "file:///etc/passwd", http.StatusFound)
	}
}

// TestHostileServers runs apply against source servers that stall, cut
// bodies short, answer 503, send endless bodies, lie about sizes or
// redirect to file://. Transient misbehaviour ends in a complete, correct
// load; permanent misbehaviour ends in exit 1 with the cause named, within
// the attempt caps — never a panic, never a file past its declared size.
func TestHostileServers(t *testing.T) {
	if testing.Short() {
		t.Skip("hostile-server harness skipped with -short")
	}
	fx := build(t)
	all := append(append([]misbehaviour{}, transient...), endless, lyingSize, fileRedirect)
	for s := 1; s <= *hostileSeeds; s++ {
		r := rand.New(rand.NewPCG(uint64(s), 99))
		how := all[(s-1)%len(all)]
		bad := 1 + r.IntN(2)
		if _, ok := permanent[how]; ok {
			bad = 1 << 30 // always
		}
		t.Run(fmt.Sprintf("seed%d-%s", s, how), func(t *testing.T) { hostile(t, fx, how, bad) })
	}
}

func hostile(t *testing.T, fx fixture, how misbehaviour, bad int) {
	grpcPort, httpAddr, _ := emulator(t, fx.bin, "--log-level", "warn")
	hf := &hostileFiles{dir: fx.data, how: how, bad: bad, reqs: map[string]int{}}
	srv := httptest.NewServer(hf)
	t.Cleanup(srv.Close)
	dir := t.TempDir()
	cfg := pipeline{qdrant: emulatorQdrant(httpAddr, grpcPort), collection: "  on_exists: recreate\n",
		sources: fmt.Sprintf(`  metadata: { url: "%[1]s/metadata_0000.parquet" }
  image:    { url: "%[1]s/img_emb_0000.npy" }
  text:     { path: "%[2]s/text_emb_0000.npy" }
`, srv.URL, fx.data),
		rest: `upload: { batch_size: 128, parallel: 3, max_attempts: 4 }
download: { idle_timeout: 500ms, max_undeclared_size: 8388608 }
snapshot: { destination: out }
`}.write(t, dir)
	// A generous outer bound only against a hung harness; the run is
	// bounded by its idle timeout and attempt caps long before.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := snappipe(ctx, fx, "apply", cfg, "--progress", "never", "--log-level", "warn", "-y")
	out, err := cmd.CombinedOutput()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			t.Fatalf("apply killed by %v\n%s", ws.Signal(), out)
		}
	} else if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(out), "panic:") || code == 2 {
		t.Fatalf("apply panicked (exit %d)\n%s", code, out)
	}
	// Nothing in the cache grew past its bound: the real size where one is
	// declared (the npy header declares it even to an endless server), else
	// download.max_undeclared_size (Parquet behind an endless server).
	filepath.Walk(filepath.Join(dir, ".snappipe"), func(p string, info os.FileInfo, err error) error {
		if err != nil || info.IsDir() {
			return nil
		}
		for _, f := range []string{"metadata_0000.parquet", "img_emb_0000.npy"} {
			st, err := os.Stat(filepath.Join(fx.data, f))
			if err != nil || !strings.Contains(p, f) {
				continue
			}
			bound := st.Size()
			if how == endless && strings.HasSuffix(f, ".parquet") {
				bound = 8 << 20
			}
			if info.Size() > bound {
				t.Errorf("%s holds %d bytes, more than its bound %d", p, info.Size(), bound)
			}
		}
		return nil
	})
	want, isPermanent := permanent[how]
	if !isPermanent {
		if code != 0 {
			t.Fatalf("transient %s: exit %d\n%s", how, code, out)
		}
		verify(t, fx, httpAddr, grpcPort, dir)
		return
	}
	if code != 1 || !strings.Contains(string(out), want) {
		t.Fatalf("permanent %s: exit %d, want 1 naming %q\n%s", how, code, want, out)
	}
	hf.mu.Lock()
	defer hf.mu.Unlock()
	for name, n := range hf.reqs {
		if n > 8 {
			t.Errorf("%s requested %d times: a permanent failure was retried past the caps", name, n)
		}
	}
}
