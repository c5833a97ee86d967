package pipeline

import (
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"
)

// A reader of a growing file gets exactly the bytes written, waiting for
// them; a restart below bytes already written fails every reader; Wait
// returns the verified path.
func TestStream(t *testing.T) {
	part := filepath.Join(t.TempDir(), "f.part")
	f, err := os.Create(part)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	s := NewStream(part, 10, 0)
	if err := s.Started(0); err != nil {
		t.Fatal(err)
	}
	got := make(chan string, 1)
	go func() {
		b := make([]byte, 4)
		n, err := s.ReadAt(b, 3)
		if err != nil {
			got <- err.Error()
			return
		}
		got <- string(b[:n])
	}()
	f.Write([]byte("abc")) // not enough for bytes 3..6
	s.Wrote(3)
	f.Write([]byte("defghij"))
	s.Wrote(10)
	if g := <-got; g != "defg" {
		t.Fatalf("read %q", g)
	}
	b := make([]byte, 4)
	if n, err := s.ReadAt(b, 8); n != 2 || err != io.EOF || string(b[:2]) != "ij" {
		t.Fatalf("read past the end: %d %v", n, err)
	}
	if err := s.Started(4); !errors.Is(err, ErrStreamReset) {
		t.Fatalf("restart below written: %v", err)
	}
	if _, err := s.ReadAt(b, 0); !errors.Is(err, ErrStreamReset) {
		t.Fatalf("reader after reset: %v", err)
	}
	if _, err := s.Wait(); !errors.Is(err, ErrStreamReset) {
		t.Fatalf("wait after reset: %v", err)
	}

	s2 := NewStream(part, 10, 10) // resumed, all there already
	done := make(chan error, 1)
	go func() { _, err := s2.Wait(); done <- err }()
	s2.Finish("/final", nil)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if p, _ := s2.Wait(); p != "/final" {
		t.Fatalf("final %q", p)
	}
}

// A part file cut under a reader (the download restarted before the
// stream heard of it) is a replay, not a short read.
func TestStreamShrunkUnderReader(t *testing.T) {
	part := filepath.Join(t.TempDir(), "f.part")
	os.WriteFile(part, []byte("0123456789"), 0o644)
	s := NewStream(part, 10, 0)
	if err := s.Started(0); err != nil {
		t.Fatal(err)
	}
	s.Wrote(10)
	os.Truncate(part, 4)
	_, err := s.ReadAt(make([]byte, 8), 0)
	var re *ReplayError
	if !errors.As(err, &re) || !errors.Is(err, ErrStreamReset) {
		t.Fatalf("err = %v", err)
	}
}
