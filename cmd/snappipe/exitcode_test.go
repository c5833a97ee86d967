package main

import (
	"bytes"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/snappipe/snappipe/internal/qdrantemu"
)

func TestExitCodes(t *testing.T) {
	srv, err := qdrantemu.Start("127.0.0.1:0", "127.0.0.1:0", qdrantemu.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	_, port, _ := net.SplitHostPort(srv.GRPCAddr())
	t.Setenv("QDRANT_URL", srv.URL())
	t.Setenv("QDRANT_GRPC_PORT", port)
	wd, _ := os.Getwd()
	sample := filepath.Join(wd, "..", "..", "testdata", "sample")
	dir := t.TempDir()
	cfg := filepath.Join(dir, "p.yaml")
	os.WriteFile(cfg, []byte(`version: 1
name: codes
qdrant: { url: "${QDRANT_URL}", grpc_port: "${QDRANT_GRPC_PORT}" }
collection:
  name: codes
  vectors: { image: { size: 768, distance: Cosine } }
sources:
  image: { path: "`+sample+`/img_emb_0000.npy" }
points: { limit: 100, vectors: { image: image } }
snapshot: { destination: out }
`), 0o644)
	os.WriteFile(filepath.Join(dir, "bad.yaml"), []byte("version: 2\n"), 0o644)
	run := func(args ...string) (int, string) {
		var out, errb bytes.Buffer
		code := execute(args, strings.NewReader(""), &out, &errb)
		return code, out.String() + errb.String()
	}
	for _, tc := range []struct {
		args []string
		code int
	}{
		{[]string{"validate", cfg}, exitOK},
		{[]string{"validate", filepath.Join(dir, "bad.yaml")}, exitError},
		{[]string{"plan", cfg}, exitOK},
		{[]string{"plan", cfg, "--detailed-exitcode"}, exitChanges},
		{[]string{"apply", cfg, "--dry-run"}, exitOK},
		{[]string{"apply", cfg, "--progress", "never"}, exitOK},
		{[]string{"plan", cfg, "--detailed-exitcode"}, exitOK},
		{[]string{"nosuchcommand"}, exitError},
	} {
		if code, out := run(tc.args...); code != tc.code {
			t.Fatalf("%v: exit %d, want %d\n%s", tc.args, code, tc.code, out)
		}
	}
}

func TestCaretLines(t *testing.T) {
	got := caretLines("    image: { size: 768, distance: cosine }", 8, 35)
	want := "    8 |     image: { size: 768, distance: cosine }\n      |                                   ^\n"
	if got != want {
		t.Fatalf("got:\n%q\nwant:\n%q", got, want)
	}
	if got := caretLines("\tkey: x", 3, 7); !strings.HasSuffix(got, "| \t     ^\n") {
		t.Fatalf("tab: %q", got)
	}
}
