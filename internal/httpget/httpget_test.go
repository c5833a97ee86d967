package httpget

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// hf is a Hugging Face-like server: /resolve/main/f 302s to /cdn/f with
// X-Linked-Etag (the SHA-256) and X-Linked-Size; the CDN serves Range
// requests with a multipart-style ETag. Faults are set per test.
type hf struct {
	mu        sync.Mutex
	body      []byte
	dropAfter int  // first N GETs to the CDN drop the connection mid-body
	ignoreRng bool // CDN answers 200 to Range requests
	statuses  []int
	wrongBody bool
	etag      string
	cdnBytes  int64
	gets      int
	auth      []string
}

func (h *hf) server(t *testing.T) *httptest.Server {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h.mu.Lock()
		defer h.mu.Unlock()
		switch {
		case strings.HasPrefix(r.URL.Path, "/resolve/main/"):
			h.auth = append(h.auth, r.Header.Get("Authorization"))
			sum := sha256.Sum256(h.body)
			w.Header().Set("X-Linked-Etag", `"`+hex.EncodeToString(sum[:])+`"`)
			w.Header().Set("X-Linked-Size", fmt.Sprint(len(h.body)))
			w.Header().Set("Location", "/cdn/"+strings.TrimPrefix(r.URL.Path, "/resolve/main/")+"?X-Amz-Signature=secret")
			w.WriteHeader(http.StatusFound)
		case strings.HasPrefix(r.URL.Path, "/cdn/"):
			h.gets++
			if len(h.statuses) > 0 {
				code := h.statuses[0]
				h.statuses = h.statuses[1:]
				if code == 429 {
					w.Header().Set("Retry-After", "1")
				}
				w.WriteHeader(code)
				return
			}
			body := h.body
			if h.wrongBody {
				body = append([]byte("X"), body[1:]...)
			}
			etag := h.etag
			if etag == "" {
				etag = `"cdn-etag-1-64"`
			}
			w.Header().Set("ETag", etag)
			start := 0
			if ir := r.Header.Get("If-Range"); ir != "" && ir != etag {
				r.Header.Del("Range") // validator differs: whole body (RFC 9110 13.1.5)
			}
			if rg := r.Header.Get("Range"); rg != "" && !h.ignoreRng {
				fmt.Sscanf(rg, "bytes=%d-", &start)
				w.Header().Set("Content-Range", fmt.Sprintf("bytes %d-%d/%d", start, len(body)-1, len(body)))
				w.Header().Set("Content-Length", fmt.Sprint(len(body)-start))
				w.WriteHeader(http.StatusPartialContent)
			} else {
				w.Header().Set("Content-Length", fmt.Sprint(len(body)))
				w.WriteHeader(http.StatusOK)
			}
			rest := body[start:]
			if h.dropAfter > 0 {
				h.dropAfter--
				n := len(rest) / 3
				w.Write(rest[:n])
				h.cdnBytes += int64(n)
				w.(http.Flusher).Flush()
				panic(http.ErrAbortHandler)
			}
			w.Write(rest)
			h.cdnBytes += int64(len(rest))
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(srv.Close)
	return srv
}

func body(n int) []byte {
	b := make([]byte, n)
	r := rand.New(rand.NewPCG(1, 2))
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

func get(t *testing.T, url string, mod func(*Request)) (Result, string, error) {
	t.Helper()
	dest := filepath.Join(t.TempDir(), "f.bin")
	req := Request{URL: url, Dest: dest, MaxAttempts: 4, Header: http.Header{"Authorization": {"Bearer hf_token"}}}
	if mod != nil {
		mod(&req)
	}
	res, err := Get(context.Background(), http.DefaultClient, req)
	return res, dest, err
}

func TestHuggingFaceRedirectAndLinkedEtag(t *testing.T) {
	h := &hf{body: body(300_000)}
	srv := h.server(t)
	res, dest, err := get(t, srv.URL+"/resolve/main/img_emb_0000.npy", nil)
	if err != nil {
		t.Fatal(err)
	}
	got, _ := os.ReadFile(dest)
	sum := sha256.Sum256(h.body)
	if string(got) != string(h.body) || res.SHA256 != hex.EncodeToString(sum[:]) || res.Meta.SHA256 != res.SHA256 || res.Size != 300_000 {
		t.Fatalf("result %+v", res)
	}
	if strings.Contains(res.FinalURL, "secret") {
		t.Fatalf("final URL keeps the signed query: %s", res.FinalURL)
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.auth[0] != "Bearer hf_token" {
		t.Fatalf("token not sent to the hub: %v", h.auth)
	}
	if _, err := os.Stat(dest + ".part"); !errors.Is(err, os.ErrNotExist) {
		t.Fatal(".part left behind")
	}
}

func TestResumeAfterDroppedConnection(t *testing.T) {
	h := &hf{body: body(900_000), dropAfter: 2}
	srv := h.server(t)
	res, dest, err := get(t, srv.URL+"/resolve/main/x.npy", nil)
	if err != nil {
		t.Fatal(err)
	}
	got, _ := os.ReadFile(dest)
	if string(got) != string(h.body) {
		t.Fatal("content differs")
	}
	// Resumed with Range: the CDN sent each byte once.
	h.mu.Lock()
	sent := h.cdnBytes
	h.mu.Unlock()
	if sent != int64(len(h.body)) || res.Fetched != int64(len(h.body)) {
		t.Fatalf("cdn sent %d bytes, fetched %d, file %d", sent, res.Fetched, len(h.body))
	}
}

func TestRangeIgnoredStartsOver(t *testing.T) {
	h := &hf{body: body(600_000), dropAfter: 1, ignoreRng: true}
	srv := h.server(t)
	_, dest, err := get(t, srv.URL+"/resolve/main/x.npy", nil)
	if err != nil {
		t.Fatal(err)
	}
	got, _ := os.ReadFile(dest)
	if string(got) != string(h.body) {
		t.Fatal("content differs after a 200 answer to a Range request")
	}
}

func TestETagChangeStartsOver(t *testing.T) {
	h := &hf{body: body(600_000), dropAfter: 1, ignoreRng: true}
	srv := h.server(t)
	url := srv.URL + "/cdn/x.npy"
	dest := filepath.Join(t.TempDir(), "f")
	// First attempt drops; the file then changes (new ETag and bytes).
	_, err := Get(context.Background(), http.DefaultClient, Request{URL: url, Dest: dest, MaxAttempts: 1})
	if err == nil {
		t.Fatal("expected the first attempt to fail")
	}
	h.mu.Lock()
	h.body, h.etag, h.ignoreRng = body(500_000)[:500_000], `"v2"`, false
	for i := range h.body {
		h.body[i] ^= 0x5a
	}
	h.mu.Unlock()
	if _, err := Get(context.Background(), http.DefaultClient, Request{URL: url, Dest: dest, MaxAttempts: 3}); err != nil {
		t.Fatal(err)
	}
	got, _ := os.ReadFile(dest)
	if string(got) != string(h.body) {
		t.Fatalf("stale bytes kept across an ETag change (%d bytes)", len(got))
	}
}

func TestRetries5xxAnd429(t *testing.T) {
	h := &hf{body: body(10_000), statuses: []int{503, 429}}
	srv := h.server(t)
	start := time.Now()
	_, dest, err := get(t, srv.URL+"/resolve/main/x.npy", nil)
	if err != nil {
		t.Fatal(err)
	}
	if time.Since(start) < time.Second {
		t.Fatal("Retry-After: 1 not honoured")
	}
	got, _ := os.ReadFile(dest)
	if string(got) != string(h.body) {
		t.Fatal("content differs")
	}
}

func TestWrongBytesFailVerification(t *testing.T) {
	h := &hf{body: body(10_000), wrongBody: true}
	srv := h.server(t)
	_, dest, err := get(t, srv.URL+"/resolve/main/x.npy", func(r *Request) { r.MaxAttempts = 2 })
	if !errors.Is(err, ErrChecksum) {
		t.Fatalf("err = %v", err)
	}
	for _, p := range []string{dest, dest + ".part"} {
		if _, err := os.Stat(p); !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("%s left behind after a checksum mismatch", p)
		}
	}
	// A sha256 pin is checked too (here against correct bytes, wrong pin).
	h.wrongBody = false
	_, _, err = get(t, srv.URL+"/resolve/main/x.npy", func(r *Request) { r.SHA256 = strings.Repeat("ab", 32); r.MaxAttempts = 1 })
	if !errors.Is(err, ErrChecksum) {
		t.Fatalf("pin: err = %v", err)
	}
}

func TestNotFoundIsFinal(t *testing.T) {
	var requests atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		requests.Add(1)
		http.NotFound(w, r)
	}))
	defer srv.Close()
	_, _, err := get(t, srv.URL+"/x?token=abc", func(r *Request) { r.MaxAttempts = 5 })
	var se *StatusError
	if !errors.As(err, &se) || se.Code != 404 {
		t.Fatalf("err = %v", err)
	}
	// Final means one request: a 404 is never retried.
	if n := requests.Load(); n != 1 {
		t.Fatalf("a 404 was requested %d times", n)
	}
	if strings.Contains(err.Error(), "abc") {
		t.Fatalf("query leaked into the error: %v", err)
	}
}

// A part file that already holds the whole resource (a run killed after
// the last byte, before the rename) is finished from the server's 416
// answer, without fetching or restarting.
func TestCompletePartFinishesOn416(t *testing.T) {
	b := body(300_000)
	var sent atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		cw := &countingWriter{ResponseWriter: w, n: &sent}
		http.ServeContent(cw, r, "x.npy", time.Time{}, bytes.NewReader(b))
	}))
	t.Cleanup(srv.Close)
	var starts []int64
	_, dest, err := get(t, srv.URL+"/x.npy", func(r *Request) {
		os.WriteFile(r.Dest+".part", b, 0o644)
		r.OnStart = func(off int64) { starts = append(starts, off) }
	})
	if err != nil {
		t.Fatal(err)
	}
	got, _ := os.ReadFile(dest)
	if !bytes.Equal(got, b) || sent.Load() != 0 || len(starts) != 0 {
		t.Fatalf("%d bytes, %d sent again, starts %v", len(got), sent.Load(), starts)
	}
}

// countingWriter counts the body bytes of successful answers.
type countingWriter struct {
	http.ResponseWriter
	n    *atomic.Int64
	code int
}

func (c *countingWriter) WriteHeader(code int) {
	c.code = code
	c.ResponseWriter.WriteHeader(code)
}

func (c *countingWriter) Write(p []byte) (int, error) {
	if c.code == 0 || c.code < 300 {
		c.n.Add(int64(len(p)))
	}
	return c.ResponseWriter.Write(p)
}
