package httpra

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

// FuzzRangeReader puts a server that lies in many ways behind the Range
// reader: short bodies, long bodies, wrong Content-Range starts, 200 to a
// range, errors. ReadAt must never panic, never return bytes that are not
// the file's, and never hang.
func FuzzRangeReader(f *testing.F) {
	f.Add([]byte("hello, range reader; this is the file"), uint8(0), int64(3), uint16(10), int64(0))
	f.Add(bytes.Repeat([]byte{7}, 5000), uint8(1), int64(100), uint16(4000), int64(2))
	f.Add(bytes.Repeat([]byte{1, 2, 3}, 700), uint8(2), int64(0), uint16(2100), int64(-5))
	f.Add([]byte("abc"), uint8(3), int64(1), uint16(1), int64(1))
	f.Add([]byte("abcdefgh"), uint8(4), int64(7), uint16(3), int64(0))
	f.Add([]byte("abcdefgh"), uint8(5), int64(0), uint16(8), int64(9))
	f.Fuzz(func(t *testing.T, file []byte, lie uint8, off int64, n uint16, skew int64) {
		if len(file) == 0 {
			return
		}
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Length", fmt.Sprint(len(file)))
			if r.Method == http.MethodHead {
				if lie%8 == 6 {
					w.Header().Set("X-Linked-Size", fmt.Sprint(int64(len(file))+skew))
				}
				return
			}
			var s, e int64
			if _, err := fmt.Sscanf(r.Header.Get("Range"), "bytes=%d-%d", &s, &e); err != nil || s < 0 || e < s || s >= int64(len(file)) {
				w.WriteHeader(http.StatusRequestedRangeNotSatisfiable)
				return
			}
			e = min(e, int64(len(file))-1)
			body := file[s : e+1]
			start := s
			switch lie % 8 {
			case 1: // short body
				body = body[:len(body)/2]
			case 2: // long body: more than asked
				body = append(bytes.Clone(body), 'X', 'Y')
			case 3: // a range starting elsewhere
				start = s + skew
			case 4: // a 200 to a range request
				w.Header().Set("Content-Length", fmt.Sprint(len(file)))
				w.Write(file)
				return
			case 5: // a server error
				w.WriteHeader(http.StatusBadGateway)
				return
			}
			w.Header().Set("Content-Length", fmt.Sprint(len(body)))
			w.Header().Set("Content-Range", fmt.Sprintf("bytes %d-%d/%d", start, start+int64(len(body))-1, len(file)))
			w.WriteHeader(http.StatusPartialContent)
			w.Write(body)
		}))
		defer srv.Close()
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		r, err := Open(ctx, srv.Client(), srv.URL, nil, 256, IdleTimeout(10*time.Second))
		if err != nil {
			return
		}
		if r.Size() < 0 {
			t.Fatalf("negative size %d", r.Size())
		}
		p := make([]byte, n)
		got, err := r.ReadAt(p, off)
		if got < 0 || got > len(p) {
			t.Fatalf("ReadAt returned %d for a %d-byte buffer", got, len(p))
		}
		if err == nil || got > 0 {
			// Whatever was returned must be the file's bytes.
			if off < 0 || off+int64(got) > int64(len(file)) || !bytes.Equal(p[:got], file[off:off+int64(got)]) {
				t.Fatalf("lie %d: ReadAt(%d, %d) returned %d bytes that are not the file's (err %v)", lie%8, n, off, got, err)
			}
		}
	})
}
