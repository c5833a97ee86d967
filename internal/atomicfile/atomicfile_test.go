package atomicfile

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func names(t *testing.T, dir string) []string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range ents {
		out = append(out, e.Name())
	}
	return out
}

func TestWriteFileCreatesAndReplaces(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "state.json")
	if err := WriteFile(p, []byte("one"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := WriteFile(p, []byte("two"), 0o600); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(p)
	if string(b) != "two" {
		t.Fatalf("content %q", b)
	}
	fi, _ := os.Stat(p)
	if fi.Mode().Perm() != 0o600 {
		t.Fatalf("mode %v, want 0600", fi.Mode().Perm())
	}
	if n := names(t, dir); len(n) != 1 || n[0] != "state.json" {
		t.Fatalf("directory holds %v", n)
	}
}

// The mode is the one asked for whatever the umask allows, since the
// temp file is chmod-ed before it is filled.
func TestWriteModeIsExact(t *testing.T) {
	dir := t.TempDir()
	for _, perm := range []os.FileMode{0o600, 0o644, 0o640} {
		p := filepath.Join(dir, "f")
		if err := WriteFile(p, nil, perm); err != nil {
			t.Fatal(err)
		}
		if fi, _ := os.Stat(p); fi.Mode().Perm() != perm {
			t.Fatalf("mode %v, want %v", fi.Mode().Perm(), perm)
		}
	}
}

// A failing writer leaves the old file untouched and no temp file.
func TestFailedWriteKeepsOldFile(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "snap")
	if err := WriteFile(p, []byte("old"), 0o644); err != nil {
		t.Fatal(err)
	}
	boom := errors.New("boom")
	err := Write(p, 0o644, func(w io.Writer) error {
		// The bytes written so far are in a temp file, never at p.
		w.Write([]byte("partial new content"))
		if b, _ := os.ReadFile(p); string(b) != "old" {
			t.Errorf("final name changed mid-write: %q", b)
		}
		for _, n := range names(t, dir) {
			if n != "snap" && !strings.HasPrefix(n, TempPrefix) {
				t.Errorf("temp file %s lacks the prefix %s", n, TempPrefix)
			}
		}
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatalf("err = %v", err)
	}
	b, _ := os.ReadFile(p)
	if string(b) != "old" {
		t.Fatalf("old content lost: %q", b)
	}
	if n := names(t, dir); len(n) != 1 {
		t.Fatalf("left behind: %v", n)
	}
}

// A new file that fails is never created.
func TestFailedWriteCreatesNothing(t *testing.T) {
	dir := t.TempDir()
	err := Write(filepath.Join(dir, "new"), 0o644, func(w io.Writer) error { return io.ErrUnexpectedEOF })
	if !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatal(err)
	}
	if n := names(t, dir); len(n) != 0 {
		t.Fatalf("left behind: %v", n)
	}
}

func TestWriteIntoMissingDirFails(t *testing.T) {
	if err := WriteFile(filepath.Join(t.TempDir(), "no", "such", "f"), []byte("x"), 0o644); err == nil {
		t.Fatal("wrote into a missing directory")
	}
}

func TestCommit(t *testing.T) {
	dir := t.TempDir()
	tmp := filepath.Join(dir, "x.part")
	if err := os.WriteFile(tmp, bytes.Repeat([]byte("z"), 1000), 0o644); err != nil {
		t.Fatal(err)
	}
	final := filepath.Join(dir, "x")
	if err := Commit(tmp, final); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(final); len(b) != 1000 {
		t.Fatalf("final holds %d bytes", len(b))
	}
	if _, err := os.Stat(tmp); !errors.Is(err, os.ErrNotExist) {
		t.Fatal("temp file still there")
	}
	// Across directories a rename would not be atomic: refused, nothing moved.
	other := t.TempDir()
	tmp2 := filepath.Join(dir, "y.part")
	os.WriteFile(tmp2, []byte("y"), 0o644)
	if err := Commit(tmp2, filepath.Join(other, "y")); err == nil {
		t.Fatal("commit across directories accepted")
	}
	if _, err := os.Stat(tmp2); err != nil {
		t.Fatal("temp file lost on a refused commit")
	}
	if n := names(t, other); len(n) != 0 {
		t.Fatalf("files in the other directory: %v", n)
	}
	// A missing temp file is an error, not a silent success.
	if err := Commit(filepath.Join(dir, "nope"), filepath.Join(dir, "nope2")); err == nil {
		t.Fatal("commit of a missing file accepted")
	}
}

func TestSyncDir(t *testing.T) {
	if err := SyncDir(t.TempDir()); err != nil {
		t.Fatal(err)
	}
	if err := SyncDir(filepath.Join(t.TempDir(), "missing")); err == nil {
		t.Fatal("sync of a missing directory accepted")
	}
}
