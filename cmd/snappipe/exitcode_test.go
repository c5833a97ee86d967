package main

import (
	"bytes"
	"encoding/binary"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"unicode/utf16"

	"github.com/snappipe/snappipe/internal/qdrantemu"
	"github.com/snappipe/snappipe/internal/testkit"
	"github.com/snappipe/snappipe/pipeline/config"
)

func TestExitCodes(t *testing.T) {
	testkit.EmulatorEnv(t, qdrantemu.Options{})
	sample := sampleDir()
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
	// Valid YAML whose source file does not exist: a plan problem.
	missing := filepath.Join(dir, "missing.yaml")
	os.WriteFile(missing, []byte(`version: 1
name: codes-missing
qdrant: { url: "${QDRANT_URL}", grpc_port: "${QDRANT_GRPC_PORT}" }
collection:
  name: codes
  vectors: { image: { size: 768, distance: Cosine } }
sources:
  image: { path: "`+sample+`/no_such_file.npy" }
points: { vectors: { image: image } }
snapshot: { destination: out }
`), 0o644)
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
		{[]string{"apply", cfg, "--dry-run", "--detailed-exitcode"}, exitChanges},
		{[]string{"plan", missing}, exitError},
		{[]string{"plan", missing, "--detailed-exitcode"}, exitError},
		{[]string{"plan", cfg, "--detailed-exitcode", "--set", "qdrant.url=http://127.0.0.2:1", "--set", "qdrant.timeout=5s"}, exitError},
		{[]string{"apply", cfg, "--state-dir", filepath.Join(dir, "down"), "--progress", "never", "--set", "qdrant.url=http://127.0.0.2:1", "--set", "qdrant.grpc_port=2", "--set", "upload.max_attempts=2"}, exitError},
		{[]string{"apply", cfg, "--progress", "never"}, exitOK},
		{[]string{"plan", cfg, "--detailed-exitcode"}, exitOK},
		{[]string{"apply", cfg, "--dry-run", "--detailed-exitcode"}, exitOK},
		{[]string{"nosuchcommand"}, exitError},
	} {
		code, out := run(tc.args...)
		if code != tc.code {
			t.Fatalf("%v: exit %d, want %d\n%s", tc.args, code, tc.code, out)
		}
		// A server that is down is said as plan says it, with the address.
		if tc.args[0] == "apply" && strings.Contains(strings.Join(tc.args, " "), "127.0.0.2") &&
			!strings.Contains(out, `check collection "codes": qdrant at http://127.0.0.2:1 (gRPC 127.0.0.2:2, qdrant.grpc_port) could not be reached (Unavailable: `) {
			t.Fatalf("apply to a server that is down:\n%s", out)
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

// The caret shows the line the diagnostic names whatever the file's line
// ends: CRLF (Windows) and a lone CR count as YAML counts them.
func TestCaretLineEndings(t *testing.T) {
	enc16 := func(bom []byte, order binary.AppendByteOrder, s string) []byte {
		b := append([]byte{}, bom...)
		for _, u := range utf16.Encode([]rune(s)) {
			b = order.AppendUint16(b, u)
		}
		return b
	}
	text := func(sep string) string {
		return strings.Join([]string{"version: 1", "name: x", "collection: { name: c, on_exist: fail }", ""}, sep)
	}
	// YAML 1.1 also ends lines at NEL, LS and PS, and reads UTF-16 by its
	// byte order mark: the lines shown are the lines the parser counted.
	for name, data := range map[string][]byte{"lf": []byte(text("\n")), "crlf": []byte(text("\r\n")), "cr": []byte(text("\r")),
		"nel": []byte(text("\u0085")), "ls": []byte(text("\u2028")), "ps": []byte(text("\u2029")),
		"utf8-bom": append([]byte{0xEF, 0xBB, 0xBF}, text("\n")...), "utf16le": enc16([]byte{0xFF, 0xFE}, binary.LittleEndian, text("\r\n")),
		"utf16be": enc16([]byte{0xFE, 0xFF}, binary.BigEndian, text("\n"))} {
		p := filepath.Join(t.TempDir(), name+".yaml")
		os.WriteFile(p, data, 0o644)
		_, err := config.LoadFile(p, config.LoadOptions{Lookup: func(string) (string, bool) { return "", false }})
		ds, ok := err.(config.Diagnostics)
		if !ok || len(ds) == 0 {
			t.Fatalf("%s: %v", name, err)
		}
		var d config.Diagnostic
		for _, x := range ds {
			if strings.Contains(x.Message, "on_exist") {
				d = x
			}
		}
		var b strings.Builder
		(&diagPrinter{caret: true, files: map[string][]string{}}).print(&b, d)
		if d.Line != 3 || !strings.Contains(b.String(), "    3 | collection: { name: c, on_exist: fail }\n") || strings.ContainsAny(b.String(), "\r\u0085\u2028\u2029\x00") {
			t.Fatalf("%s: %+v\n%q", name, d, b.String())
		}
	}
}

// A key the server refuses is said as such (not as "could not be
// reached"), with where the key comes from; go-client's warning about a
// key over plain HTTP is logged once, in snappipe's format, and not at
// --log-level error.
func TestWrongAPIKey(t *testing.T) {
	testkit.EmulatorEnv(t, qdrantemu.Options{APIKey: "right"})
	t.Setenv("QDRANT_API_KEY", "wrong")
	dir := t.TempDir()
	cfg := filepath.Join(dir, "p.yaml")
	sample, _ := filepath.Abs("../../testdata/sample")
	os.WriteFile(cfg, []byte(`version: 1
name: key
qdrant: { url: "${QDRANT_URL}", grpc_port: "${QDRANT_GRPC_PORT}", api_key: "${QDRANT_API_KEY}" }
collection: { name: key, vectors: { image: { size: 768, distance: Cosine } } }
sources: { image: { path: "`+sample+`/img_emb_0000.npy" } }
points: { limit: 10, vectors: { image: image } }
snapshot: { destination: out }
`), 0o644)
	code, out := runCLI("plan", cfg)
	if code == 0 || !strings.Contains(out, "refused the request (Unauthenticated: ") || !strings.Contains(out, "check qdrant.api_key, QDRANT_API_KEY") || strings.Contains(out, "could not be reached") {
		t.Fatalf("plan: %d\n%s", code, out)
	}
	code, out = runCLI("apply", cfg, "--progress", "never")
	if code == 0 || !strings.Contains(out, "the server refused the API key") || strings.Count(out, "API key is being used without TLS") != 1 ||
		!strings.Contains(out, `level=WARN msg="API key is being used without TLS`) || strings.Contains(out, "wrong") {
		t.Fatalf("apply: %d\n%s", code, out)
	}
	if code, out = runCLI("apply", cfg, "--progress", "never", "--log-level", "error"); code == 0 || strings.Contains(out, "without TLS") {
		t.Fatalf("apply --log-level error: %d\n%s", code, out)
	}
}

// validate --allow-unset checks a committed config whose secrets are not
// set: their keys are warnings, and the file is valid.
func TestValidateAllowUnset(t *testing.T) {
	p := filepath.Join(t.TempDir(), "p.yaml")
	os.WriteFile(p, []byte(`version: 1
name: unset
qdrant: { url: "${SNAPPIPE_TEST_UNSET_URL}", api_key: "${SNAPPIPE_TEST_UNSET_KEY:?the API key}" }
collection: { name: c, vectors: { a: { size: 4, distance: Cosine } } }
sources: { s: { path: s.npy } }
points: { vectors: { a: s } }
snapshot: { destination: out }
`), 0o644)
	if code, out := runCLI("validate", p); code != exitError || !strings.Contains(out, "qdrant.api_key: variable SNAPPIPE_TEST_UNSET_KEY: the API key") {
		t.Fatalf("without --allow-unset: %d\n%s", code, out)
	}
	code, out := runCLI("validate", p, "--allow-unset")
	if code != exitOK || !strings.Contains(out, "warning: qdrant.url: variable SNAPPIPE_TEST_UNSET_URL is not set: not checked") ||
		!strings.Contains(out, "warning: qdrant.api_key: variable SNAPPIPE_TEST_UNSET_KEY is not set") || !strings.Contains(out, "1 file(s) valid") {
		t.Fatalf("--allow-unset: %d\n%s", code, out)
	}
}
