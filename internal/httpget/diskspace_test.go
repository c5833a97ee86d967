package httpget

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"

	"github.com/snappipe/snappipe/internal/retry"
)

// A download the destination cannot hold fails at once, before a byte is
// written and without retries, naming the directory and its free space;
// a file system that fills up during a download is not retried either.
func TestNoSpaceIsNotRetried(t *testing.T) {
	if freeBytes(t.TempDir()) < 0 {
		t.Skip("free space cannot be told on this system")
	}
	var gets atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		gets.Add(1)
		w.Header().Set("X-Linked-Size", "1000000000000000000") // 1 EB
		w.Write([]byte("data"))
	}))
	defer srv.Close()
	dest := filepath.Join(t.TempDir(), "f.npy")
	_, err := Get(context.Background(), http.DefaultClient, Request{URL: srv.URL + "/f.npy", Dest: dest, MaxAttempts: 5})
	if !errors.Is(err, ErrNoSpace) || !strings.Contains(err.Error(), "not enough space for the download in "+filepath.Dir(dest)+": 1000000000000000000 bytes to come") || gets.Load() != 1 {
		t.Fatalf("%v (%d requests)", err, gets.Load())
	}
	if _, serr := os.Stat(dest + ".part"); !os.IsNotExist(serr) {
		t.Fatalf("a part file was written: %v", serr)
	}
	// Filling up while writing: ENOSPC (or a quota) is permanent.
	werr := fmt.Errorf("GET u: after 10 bytes: %w", &os.PathError{Op: "write", Path: dest + ".part", Err: syscall.ENOSPC})
	err = noSpace(werr, dest+".part", "u")
	if !errors.Is(err, ErrNoSpace) || !retry.IsPermanent(err) || !errors.Is(err, syscall.ENOSPC) || !strings.Contains(err.Error(), filepath.Dir(dest)+" is full") {
		t.Fatalf("ENOSPC while writing: %v", err)
	}
	other := errors.New("connection reset")
	if noSpace(other, dest, "u") != other {
		t.Fatal("another error changed")
	}
}
