package main

import (
	"bytes"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/charmbracelet/x/vt"
	"github.com/creack/pty"

	"github.com/snappipe/snappipe/internal/qdrantemu"
	"github.com/snappipe/snappipe/internal/testkit"
)

// On a terminal (a pseudo-terminal here): a spinner shows while the server
// creates the snapshot, and log lines are printed whole above the bars,
// not cut by them.
func TestTerminalProgress(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a binary")
	}
	bin := filepath.Join(t.TempDir(), "snappipe")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	srv := testkit.EmulatorEnv(t, qdrantemu.Options{Faults: qdrantemu.Faults{SnapshotDelay: 1500 * time.Millisecond, UpsertDelay: 5 * time.Millisecond}})
	_ = srv
	sample := sampleDir()
	dir := t.TempDir()
	cfg := filepath.Join(dir, "p.yaml")
	os.WriteFile(cfg, []byte(`version: 1
name: tty
qdrant: { url: "${QDRANT_URL}", grpc_port: "${QDRANT_GRPC_PORT}" }
collection: { name: tty, vectors: { image: { size: 768, distance: Cosine } } }
sources: { image: { path: "`+sample+`/img_emb_0000.npy" } }
points: { limit: 600, vectors: { image: image } }
upload: { batch_size: 50, parallel: 1 }
snapshot: { destination: out }
`), 0o644)
	cmd := exec.Command(bin, "apply", cfg, "--progress", "always", "--log-level", "info")
	cmd.Env = append(os.Environ(), "CI=", "TERM=xterm")
	f, err := pty.StartWithSize(cmd, &pty.Winsize{Rows: 40, Cols: 110})
	if err != nil {
		t.Fatal(err)
	}
	var raw bytes.Buffer
	done := make(chan struct{})
	go func() { io.Copy(&raw, f); close(done) }()
	if err := cmd.Wait(); err != nil {
		t.Fatalf("apply: %v\n%s", err, raw.String())
	}
	<-done
	out := raw.String()
	if !strings.Contains(out, "creating on the server") {
		t.Errorf("no spinner during snapshot creation:\n%q", out)
	}
	// A log line printed while bars are drawn arrives whole, after the
	// bars were erased (cursor up, clear to the end of the screen), so the
	// bars are drawn again below it once instead of leaving a copy above.
	if !regexp.MustCompile(`\x1b\[\d*A\x1b\[J[^\x1b]*level=INFO msg="creating snapshot" collection=tty\r?\n`).MatchString(out) {
		t.Errorf("the log line was not printed above the bars:\n%q", out)
	}
	if !strings.Contains(out, "Apply complete: 600 points written") {
		t.Errorf("no summary:\n%q", out)
	}
	checkRenderedScreen(t, raw.Bytes(), 110, 40)
}

// checkRenderedScreen plays the bytes through a terminal emulator of the
// pane's size (charmbracelet/x/vt) and checks what a person would see at
// the end: every log line once and whole, each progress bar once, no bar
// text left inside a log line.
func checkRenderedScreen(t *testing.T, raw []byte, cols, rows int) {
	t.Helper()
	term := vt.NewEmulator(cols, rows)
	term.SetScrollbackSize(10000)
	term.Write(raw)
	var lines []string
	for _, l := range term.Scrollback().Lines() {
		lines = append(lines, strings.TrimRight(l.String(), " "))
	}
	lines = append(lines, strings.Split(term.String(), "\n")...)
	screen := strings.Join(lines, "\n")
	count := func(re string) int { return len(regexp.MustCompile(re).FindAllString(screen, -1)) }
	for _, msg := range []string{`msg="creating snapshot"`, `msg="snapshot created"`} {
		if n := count(`(?m)^time=\S+ level=INFO ` + regexp.QuoteMeta(msg) + `[^\n]*$`); n != 1 {
			t.Errorf("log line %s appears %d times on the rendered screen (want once, whole, at the start of a line):\n%s", msg, n, screen)
		}
	}
	for _, bar := range []string{`(?m)^\s*upsert\b`, `(?m)^\s*snapshot\b`} {
		if n := count(bar); n != 1 {
			t.Errorf("bar %s drawn %d times on the rendered screen (want once):\n%s", bar, n, screen)
		}
	}
	if n := count(`level=INFO[^\n]*(\[=|points/s)`); n != 0 {
		t.Errorf("bar text inside a log line:\n%s", screen)
	}
}
