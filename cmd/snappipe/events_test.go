package main

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"

	"github.com/snappipe/snappipe/internal/qdrantemu"
	"github.com/snappipe/snappipe/internal/testkit"
)

var update = flag.Bool("update", false, "rewrite golden files")

// TestJSONEventStream pins the --output json contract: the version line
// first, the summary last, and the set of events between them, with
// run-specific values (times, names, digests) masked.
func TestJSONEventStream(t *testing.T) {
	cfg := hundredPoints(t, "events")
	var out, errb bytes.Buffer
	if code := execute([]string{"apply", cfg, "-o", "json"}, strings.NewReader(""), &out, &errb); code != 0 {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	var lines []string
	finished := map[string]bool{}
	upsertDone := false
	for _, l := range strings.Split(strings.TrimSpace(out.String()), "\n") {
		if !strings.HasPrefix(l, `{"type":"`) {
			t.Fatalf("line does not start with the type: %s", l)
		}
		checkEventKeys(t, l)
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatal(err)
		}
		// A stage's progress comes before its end (its last value is
		// flushed then, not at the next tick).
		stage, _ := m["stage"].(string)
		if m["type"] == "stage_finished" {
			finished[stage] = true
			if stage == "upsert" && !upsertDone {
				t.Fatalf("upsert finished before a progress event said 100 of 100 points:\n%s", out.String())
			}
		}
		if m["type"] == "progress" {
			if finished[stage] {
				t.Fatalf("progress of %s after its stage_finished:\n%s", stage, out.String())
			}
			upsertDone = upsertDone || stage == "upsert" && m["done"] == float64(100) && m["total"] == float64(100)
			continue // timing-dependent otherwise
		}
		for _, k := range []string{"@timestamp", "seconds", "snapshot_name", "snapshot_path", "snapshot_sha256", "snapshot_size", "bytes_fetched", "snappipe"} {
			if _, ok := m[k]; ok {
				m[k] = "<" + k + ">"
			}
		}
		lines = append(lines, string(encodeEvent(m)))
	}
	first, last := lines[0], lines[len(lines)-1]
	mid := lines[1 : len(lines)-1]
	sort.Strings(mid)
	got := first + strings.Join(mid, "") + last
	golden := filepath.Join("testdata", "events.golden")
	if *update {
		os.WriteFile(golden, []byte(got), 0o644)
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	if got != string(want) {
		t.Fatalf("event stream changed (run with -update if intended):\n%s\nwant:\n%s", got, want)
	}
}

// checkEventKeys checks one line as snappipe wrote it (not re-encoded): an
// object whose first key is "type" and whose other keys follow in sorted
// order, at the top level and in nested objects.
func checkEventKeys(t *testing.T, line string) {
	t.Helper()
	dec := json.NewDecoder(strings.NewReader(line))
	var walk func(top bool)
	walk = func(top bool) {
		tok, err := dec.Token()
		if err != nil {
			t.Fatalf("%v in %s", err, line)
		}
		switch tok {
		case json.Delim('{'):
			var keys []string
			for dec.More() {
				k, err := dec.Token()
				if err != nil {
					t.Fatalf("%v in %s", err, line)
				}
				keys = append(keys, k.(string))
				walk(false)
			}
			dec.Token() // '}'
			rest := keys
			if top {
				if len(keys) == 0 || keys[0] != "type" {
					t.Fatalf("first key is not type: %s", line)
				}
				rest = keys[1:]
			}
			if !sort.StringsAreSorted(rest) {
				t.Fatalf("keys not sorted %v: %s", rest, line)
			}
		case json.Delim('['):
			for dec.More() {
				walk(false)
			}
			dec.Token() // ']'
		}
	}
	walk(true)
	if dec.More() {
		t.Fatalf("more than one value on a line: %s", line)
	}
}

// --progress always without a terminal (apply ... 2>&1 | tee log) draws
// the bars and keeps the log lines; it used to print nothing at all, the
// log lines held back for a frame that was never drawn.
func TestProgressAlwaysWithoutTerminal(t *testing.T) {
	cfg := hundredPoints(t, "bars")
	t.Setenv("CI", "")
	var out, errb bytes.Buffer
	if code := execute([]string{"apply", cfg, "--progress", "always", "--log-level", "info"}, strings.NewReader(""), &out, &errb); code != 0 {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	if !strings.Contains(errb.String(), `level=INFO msg="collection created" collection=bars`) {
		t.Errorf("the log lines are missing:\n%s", errb.String())
	}
	if !regexp.MustCompile(`\nupsert +100 / 100 \[=+\] 100 % `).MatchString(errb.String()) {
		t.Errorf("no finished upsert bar:\n%s", errb.String())
	}
	if !strings.Contains(out.String(), "Apply complete: 100 points written") {
		t.Errorf("stdout:\n%s", out.String())
	}
}

// hundredPoints starts an emulator (QDRANT_URL, QDRANT_GRPC_PORT) and
// writes a pipeline loading 100 sample rows into collection name.
func hundredPoints(t *testing.T, name string) string {
	t.Helper()
	testkit.EmulatorEnv(t, qdrantemu.Options{})
	cfg := filepath.Join(t.TempDir(), "p.yaml")
	os.WriteFile(cfg, []byte(`version: 1
name: `+name+`
qdrant: { url: "${QDRANT_URL}", grpc_port: "${QDRANT_GRPC_PORT}" }
collection:
  name: `+name+`
  vectors: { image: { size: 768, distance: Cosine } }
sources:
  image: { path: "`+sampleDir()+`/img_emb_0000.npy" }
points: { limit: 100, vectors: { image: image } }
snapshot: { destination: out }
`), 0o644)
	return cfg
}

// status reads no server: it works without the qdrant: variables (an API
// key kept out of reach), and the checkpoint still matches. A variable in
// any other key decides what the checkpoint belongs to: unset, it is the
// error it is elsewhere.
func TestStatusWithoutServerVariables(t *testing.T) {
	cfg := hundredPoints(t, "st")
	var out, errb bytes.Buffer
	if code := execute([]string{"apply", cfg, "--progress", "never"}, strings.NewReader(""), &out, &errb); code != 0 {
		t.Fatalf("apply: %d %s", code, errb.String())
	}
	os.Unsetenv("QDRANT_URL") // t.Setenv (hundredPoints) restores them
	os.Unsetenv("QDRANT_GRPC_PORT")
	out.Reset()
	errb.Reset()
	if code := execute([]string{"status", cfg}, strings.NewReader(""), &out, &errb); code != 0 ||
		!strings.Contains(out.String(), "upsert     done (100 points)") || strings.Contains(out.String(), "config changed") || errb.Len() > 0 {
		t.Fatalf("status without QDRANT_URL: %d\n%s\n%s", code, out.String(), errb.String())
	}
	b, _ := os.ReadFile(cfg)
	os.WriteFile(cfg, []byte(strings.Replace(string(b), sampleDir(), "${SNAPPIPE_TEST_UNSET_DATA}", 1)), 0o644)
	out.Reset()
	errb.Reset()
	if code := execute([]string{"status", cfg}, strings.NewReader(""), &out, &errb); code == 0 ||
		!strings.Contains(out.String()+errb.String(), "sources.image.path: variable SNAPPIPE_TEST_UNSET_DATA is not set") {
		t.Fatalf("status with a source variable unset: %d\n%s\n%s", code, out.String(), errb.String())
	}
}

// A raised limit: status says apply keeps the progress (not that it
// refuses), apply loads the rows after the kept batches, and a lowered
// limit is still refused.
func TestStatusAndApplyOfAGrownConfig(t *testing.T) {
	cfg := hundredPoints(t, "grow")
	b, _ := os.ReadFile(cfg)
	os.WriteFile(cfg, append(b, "upload: { batch_size: 64 }\n"...), 0o644)
	b, _ = os.ReadFile(cfg)
	run := func(args ...string) (int, string) {
		var out, errb bytes.Buffer
		code := execute(append(args, cfg, "--progress", "never"), strings.NewReader(""), &out, &errb)
		return code, out.String() + errb.String()
	}
	if code, out := run("apply"); code != 0 {
		t.Fatalf("apply: %d %s", code, out)
	}
	os.WriteFile(cfg, []byte(strings.Replace(string(b), "limit: 100", "limit: 300", 1)), 0o644)
	if code, out := run("status"); code != 0 || !strings.Contains(out, "the config changed since this checkpoint only in ways apply takes over") || strings.Contains(out, "refuse") {
		t.Fatalf("status: %d\n%s", code, out)
	}
	// Batches of 64: 0 stays, 1 (36 rows at limit 100) grows.
	if code, out := run("apply"); code != 0 || !strings.Contains(out, "236 points written (resumed)") {
		t.Fatalf("apply: %d\n%s", code, out)
	}
	os.WriteFile(cfg, []byte(strings.Replace(string(b), "limit: 100", "limit: 50", 1)), 0o644)
	if code, out := run("status"); code != 0 || !strings.Contains(out, "apply will refuse to resume") {
		t.Fatalf("status, lowered limit: %d\n%s", code, out)
	}
}
