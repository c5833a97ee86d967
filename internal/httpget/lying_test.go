package httpget

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
)

// A server that announces a size (X-Linked-Size) the bytes do not have,
// with no digest to check: the size check refuses the file.
func TestLyingSizeRefused(t *testing.T) {
	b := body(5000)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.URL.Path, "/resolve/main/") {
			w.Header().Set("X-Linked-Size", "6000")
			w.Header().Set("Location", "/cdn/f")
			w.WriteHeader(http.StatusFound)
			return
		}
		w.Write(b)
	}))
	defer srv.Close()
	_, dest, err := get(t, srv.URL+"/resolve/main/f", func(r *Request) { r.MaxAttempts = 2 })
	if !errors.Is(err, ErrChecksum) || !strings.Contains(err.Error(), "(5000 bytes), want (no digest) (6000 bytes)") {
		t.Fatalf("err = %v", err)
	}
	if _, err := os.Stat(dest); !errors.Is(err, os.ErrNotExist) {
		t.Fatal("a file of the wrong size was kept")
	}
}

// The size comes from Content-Length when the server sends no
// X-Linked-Size, and a body shorter than it is retried, not accepted.
func TestShortBodyRetried(t *testing.T) {
	b := body(9000)
	var gets atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := gets.Add(1)
		start := 0
		if rg := r.Header.Get("Range"); rg != "" {
			fmt.Sscanf(rg, "bytes=%d-", &start)
			w.Header().Set("Content-Range", fmt.Sprintf("bytes %d-%d/%d", start, len(b)-1, len(b)))
			w.Header().Set("Content-Length", fmt.Sprint(len(b)-start))
			w.Header().Set("ETag", `"e1"`)
			w.WriteHeader(http.StatusPartialContent)
		} else {
			w.Header().Set("Content-Length", fmt.Sprint(len(b)))
			w.Header().Set("ETag", `"e1"`)
		}
		if n == 1 {
			w.Write(b[:1000]) // then the handler returns: the connection closes short
			w.(http.Flusher).Flush()
			panic(http.ErrAbortHandler)
		}
		w.Write(b[start:])
	}))
	defer srv.Close()
	res, dest, err := get(t, srv.URL+"/f", nil)
	if err != nil {
		t.Fatal(err)
	}
	got, _ := os.ReadFile(dest)
	if string(got) != string(b) || res.Size != int64(len(b)) || gets.Load() != 2 {
		t.Fatalf("%d bytes, meta size %d, %d requests", len(got), res.Size, gets.Load())
	}
}

// A server that answers a resumed Range request with 206 for a different
// version of the file (its ETag changed, it ignored If-Range): the partial
// bytes are discarded and the download restarts, never mixing versions.
func TestResumeAcrossChangedFileRestarts(t *testing.T) {
	v2 := body(8000)
	v2[0] ^= 0xff
	sum := sha256.Sum256(v2)
	var ranges atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("ETag", `"v2"`)
		start := 0
		if rg := r.Header.Get("Range"); rg != "" { // honours Range, ignores If-Range
			ranges.Add(1)
			fmt.Sscanf(rg, "bytes=%d-", &start)
			w.Header().Set("Content-Range", fmt.Sprintf("bytes %d-%d/%d", start, len(v2)-1, len(v2)))
			w.Header().Set("Content-Length", fmt.Sprint(len(v2)-start))
			w.WriteHeader(http.StatusPartialContent)
		}
		w.Write(v2[start:])
	}))
	defer srv.Close()
	dest := filepath.Join(t.TempDir(), "f.bin")
	// A .part of version 1 (its first 3000 bytes) with its validator.
	v1 := body(8000)
	os.WriteFile(dest+".part", v1[:3000], 0o644)
	os.WriteFile(dest+".part.etag", []byte(`"v1"`), 0o644)
	res, err := Get(context.Background(), http.DefaultClient, Request{URL: srv.URL + "/f", Dest: dest, MaxAttempts: 3})
	if err != nil {
		t.Fatal(err)
	}
	got, _ := os.ReadFile(dest)
	if string(got) != string(v2) || res.SHA256 != hex.EncodeToString(sum[:]) {
		t.Fatalf("mixed or wrong bytes (%d), sha %s", len(got), res.SHA256)
	}
	if ranges.Load() == 0 {
		t.Fatal("the resume was never tried with Range")
	}
}
