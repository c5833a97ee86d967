package httpget

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/snappipe/snappipe/internal/retry"
)

// endless writes bytes until the client goes away, flushing so no
// Content-Length is sent (chunked), and counts what it wrote.
func endless(w http.ResponseWriter, r *http.Request, prefix []byte, sent *atomic.Int64) {
	w.Write(prefix)
	sent.Add(int64(len(prefix)))
	chunk := make([]byte, 32<<10)
	for r.Context().Err() == nil {
		if _, err := w.Write(chunk); err != nil {
			return
		}
		sent.Add(int64(len(chunk)))
		w.(http.Flusher).Flush()
	}
}

// An endless body behind an X-Linked-Size stops at that size: refused at
// once (permanent), the part file removed.
func TestEndlessBodyStopsAtDeclaredSize(t *testing.T) {
	var sent, gets atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		gets.Add(1)
		w.Header().Set("X-Linked-Size", "100000")
		endless(w, r, nil, &sent)
	}))
	defer srv.Close()
	_, dest, err := get(t, srv.URL+"/f", nil)
	if !errors.Is(err, ErrTooLarge) || !retry.IsPermanent(err) || gets.Load() != 1 {
		t.Fatalf("err = %v after %d requests", err, gets.Load())
	}
	if _, serr := os.Stat(dest + ".part"); !errors.Is(serr, os.ErrNotExist) {
		t.Fatal("the oversized part file was kept")
	}
}

// npyHead is an .npy header declaring rows × width float32.
func npyHead(rows, width int) []byte {
	dict := fmt.Sprintf("{'descr': '<f4', 'fortran_order': False, 'shape': (%d, %d), }", rows, width)
	pad := 64 - (10+len(dict)+1)%64
	dict += strings.Repeat(" ", pad) + "\n"
	var b bytes.Buffer
	b.WriteString("\x93NUMPY\x01\x00")
	binary.Write(&b, binary.LittleEndian, uint16(len(dict)))
	b.WriteString(dict)
	return b.Bytes()
}

// With no size from the server at all (chunked, no X-Linked-Size), the
// file's own header declares it: an endless body is refused just past
// header + data, not after gigabytes.
func TestEndlessBodyStopsAtTheFormatsSize(t *testing.T) {
	head := npyHead(100, 8) // 128 + 3200 bytes
	declared := int64(len(head) + 100*8*4)
	var sent atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		endless(w, r, head, &sent)
	}))
	defer srv.Close()
	var seen []byte
	_, _, err := get(t, srv.URL+"/f.npy", func(r *Request) {
		r.DeclaredSize = func(h []byte) int64 {
			seen = h
			if bytes.HasPrefix(h, head) {
				return declared
			}
			return -1
		}
	})
	if !errors.Is(err, ErrTooLarge) || !strings.Contains(err.Error(), fmt.Sprint(declared)) {
		t.Fatalf("err = %v", err)
	}
	if len(seen) != HeadBytes {
		t.Fatalf("DeclaredSize saw %d bytes, want the first %d", len(seen), HeadBytes)
	}
}

// A correct file of the declared size passes the same check.
func TestDeclaredSizeAcceptsAnHonestFile(t *testing.T) {
	head := npyHead(10, 4)
	full := append(append([]byte{}, head...), make([]byte, 160)...)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write(full)
		w.(http.Flusher).Flush() // chunked: no Content-Length
	}))
	defer srv.Close()
	res, dest, err := get(t, srv.URL+"/f.npy", func(r *Request) { r.DeclaredSize = func([]byte) int64 { return int64(len(full)) } })
	if err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(dest); !bytes.Equal(b, full) || res.Size != int64(len(full)) {
		t.Fatalf("got %d bytes, res %+v", len(b), res.Meta)
	}
}

// A body that stops sending is abandoned after the idle timeout and
// retried; the retry resumes where the stalled one stopped.
func TestStalledBodyIsRetried(t *testing.T) {
	b := body(50_000)
	var gets atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := gets.Add(1)
		w.Header().Set("ETag", `"e1"`)
		start := 0
		if rg := r.Header.Get("Range"); rg != "" {
			fmt.Sscanf(rg, "bytes=%d-", &start)
			w.Header().Set("Content-Range", fmt.Sprintf("bytes %d-%d/%d", start, len(b)-1, len(b)))
			w.Header().Set("Content-Length", fmt.Sprint(len(b)-start))
			w.WriteHeader(http.StatusPartialContent)
		} else {
			w.Header().Set("Content-Length", fmt.Sprint(len(b)))
		}
		if n == 1 {
			w.Write(b[:20_000])
			w.(http.Flusher).Flush()
			<-r.Context().Done() // then nothing, until the client gives up
			return
		}
		w.Write(b[start:])
	}))
	defer srv.Close()
	var retried []error
	res, dest, err := get(t, srv.URL+"/f", func(r *Request) {
		r.IdleTimeout = 50 * time.Millisecond
		r.OnRetry = func(_ int, err error, _ time.Duration) { retried = append(retried, err) }
	})
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(dest); !bytes.Equal(got, b) {
		t.Fatal("wrong content")
	}
	if len(retried) != 1 || !errors.Is(retried[0], ErrStalled) || res.Fetched != int64(len(b)) {
		t.Fatalf("retries %v, fetched %d", retried, res.Fetched)
	}
}

// A server that never answers (no headers) is abandoned the same way, and
// after the attempts the error says it stalled.
func TestSilentServerTimesOut(t *testing.T) {
	var gets atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		gets.Add(1)
		<-r.Context().Done()
	}))
	defer srv.Close()
	_, _, err := get(t, srv.URL+"/f", func(r *Request) { r.IdleTimeout = 20 * time.Millisecond; r.MaxAttempts = 2 })
	if !errors.Is(err, ErrStalled) || gets.Load() != 2 || !strings.Contains(err.Error(), "failed after 2 attempts") {
		t.Fatalf("err = %v after %d requests", err, gets.Load())
	}
}

// Errors no retry can fix fail on the first attempt.
func TestPermanentErrorsAreNotRetried(t *testing.T) {
	var gets atomic.Int64
	mux := http.NewServeMux()
	mux.HandleFunc("/file-redirect", func(w http.ResponseWriter, r *http.Request) {
		gets.Add(1)
		http.Redirect(w, r, "file:///etc/passwd", http.StatusFound)
	})
	mux.HandleFunc("/forbidden", func(w http.ResponseWriter, r *http.Request) {
		gets.Add(1)
		w.WriteHeader(http.StatusForbidden)
	})
	mux.HandleFunc("/loop", func(w http.ResponseWriter, r *http.Request) {
		gets.Add(1)
		http.Redirect(w, r, "/loop", http.StatusFound)
	})
	srv := httptest.NewServer(mux)
	defer srv.Close()
	tls := httptest.NewTLSServer(mux) // a certificate the client does not trust
	defer tls.Close()
	for _, tc := range []struct{ url, want string }{
		{srv.URL + "/file-redirect", "unsupported protocol scheme"},
		{srv.URL + "/forbidden", "403"},
		{srv.URL + "/loop", "stopped after 10 redirects"},
		{tls.URL + "/forbidden", "certificate"},
	} {
		gets.Store(0)
		_, _, err := get(t, tc.url, func(r *Request) { r.MaxAttempts = 5 })
		if err == nil || !strings.Contains(err.Error(), tc.want) || !retry.IsPermanent(err) || strings.Contains(err.Error(), "attempts") {
			t.Errorf("%s: err = %v", tc.url, err)
		}
		if strings.HasSuffix(tc.url, "/loop") && gets.Load() != 10 || !strings.HasSuffix(tc.url, "/loop") && gets.Load() > 1 {
			t.Errorf("%s: %d requests", tc.url, gets.Load())
		}
	}
}

// Retry-After on a 503 is the wait before the next attempt.
func TestRetryAfterIsTheWait(t *testing.T) {
	var gets atomic.Int64
	b := body(100)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if gets.Add(1) == 1 {
			w.Header().Set("Retry-After", "1")
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		w.Write(b)
	}))
	defer srv.Close()
	var waits []time.Duration
	_, _, err := get(t, srv.URL+"/f", func(r *Request) {
		r.OnRetry = func(_ int, _ error, d time.Duration) { waits = append(waits, d) }
	})
	if err != nil || len(waits) != 1 || waits[0] < time.Second {
		t.Fatalf("err %v waits %v", err, waits)
	}
}

// Limit fetches a prefix by Range; a server that ignores the range end
// (or Range altogether) still yields exactly the prefix.
func TestLimitFetchesAPrefix(t *testing.T) {
	b := body(100_000)
	for _, honour := range []bool{true, false} {
		var sentTotal atomic.Int64
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("ETag", `"v1"`)
			if rg := r.Header.Get("Range"); rg != "" && honour {
				var s, e int
				fmt.Sscanf(rg, "bytes=%d-%d", &s, &e)
				w.Header().Set("Content-Range", fmt.Sprintf("bytes %d-%d/%d", s, e, len(b)))
				w.Header().Set("Content-Length", fmt.Sprint(e-s+1))
				w.WriteHeader(http.StatusPartialContent)
				n, _ := w.Write(b[s : e+1])
				sentTotal.Add(int64(n))
				return
			}
			n, _ := w.Write(b)
			sentTotal.Add(int64(n))
		}))
		res, dest, err := get(t, srv.URL+"/f", func(r *Request) { r.Limit = 12_345 })
		srv.Close()
		if err != nil {
			t.Fatal(err)
		}
		got, _ := os.ReadFile(dest)
		if !bytes.Equal(got, b[:12_345]) || res.Validator != "v1" {
			t.Fatalf("honour=%v: got %d bytes, validator %q", honour, len(got), res.Validator)
		}
		if honour && sentTotal.Load() != 12_345 {
			t.Fatalf("server sent %d bytes for a 12345-byte prefix", sentTotal.Load())
		}
	}
}

// A snapshot whose server announces more bytes than the listed size is
// refused before the body is read.
func TestExpectedSizeBoundsTheBody(t *testing.T) {
	var sent atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		endless(w, r, nil, &sent)
	}))
	defer srv.Close()
	_, _, err := get(t, srv.URL+"/snap", func(r *Request) { r.Size = 5000 })
	if !errors.Is(err, ErrTooLarge) {
		t.Fatalf("err = %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := Get(ctx, http.DefaultClient, Request{URL: srv.URL, Dest: t.TempDir() + "/x"}); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled: %v", err)
	}
}

// With no size from the server and none from the format, an endless body
// stops at MaxUndeclared.
func TestUndeclaredSizeIsBounded(t *testing.T) {
	var sent atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		endless(w, r, nil, &sent)
	}))
	defer srv.Close()
	_, dest, err := get(t, srv.URL+"/f.parquet", func(r *Request) { r.MaxUndeclared = 1 << 20 })
	if !errors.Is(err, ErrTooLarge) || !strings.Contains(err.Error(), "download.max_undeclared_size") || !retry.IsPermanent(err) {
		t.Fatalf("err = %v", err)
	}
	if _, serr := os.Stat(dest + ".part"); !errors.Is(serr, os.ErrNotExist) {
		t.Fatal("the part file was kept")
	}
}

// A body that trickles (a byte at a time, forever) is a stall too: the
// idle timeout needs real progress, not any byte.
func TestTrickleIsAStall(t *testing.T) {
	var gets atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		gets.Add(1)
		w.Header().Set("Content-Length", "1000000")
		for r.Context().Err() == nil {
			if _, err := w.Write([]byte{'x'}); err != nil {
				return
			}
			w.(http.Flusher).Flush()
			select {
			case <-r.Context().Done():
			case <-time.After(5 * time.Millisecond):
			}
		}
	}))
	defer srv.Close()
	_, _, err := get(t, srv.URL+"/f", func(r *Request) { r.IdleTimeout = 100 * time.Millisecond; r.MaxAttempts = 2 })
	if !errors.Is(err, ErrStalled) || gets.Load() != 2 {
		t.Fatalf("err = %v after %d requests", err, gets.Load())
	}
}
