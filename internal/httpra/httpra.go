// Package httpra is an io.ReaderAt over HTTP Range requests, with aligned
// read-ahead blocks and a small cache, so footers, headers and the first
// pages of large remote files can be read without downloading them.
package httpra

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/snappipe/snappipe/internal/httpget"
)

// ErrNoRange means the server ignores Range requests.
var ErrNoRange = errors.New("server does not support HTTP Range requests")

// Reader reads a remote file at offsets. Safe for concurrent use.
type Reader struct {
	ctx       context.Context
	client    *http.Client
	url       string
	header    http.Header
	size      int64
	etag      string
	validator string
	block     int64

	mu    sync.Mutex
	cache map[int64][]byte // block index -> bytes
	order []int64
	max   int

	fetched atomic.Int64
}

// Open asks the server for the size (HEAD, following redirects; Hugging
// Face's X-Linked-Size/X-Linked-Etag are honoured) and returns a reader
// fetching block bytes per request.
func Open(ctx context.Context, c *http.Client, url string, header http.Header, block int64) (*Reader, error) {
	if block <= 0 {
		block = 1 << 20
	}
	r := &Reader{ctx: ctx, client: httpget.OriginOnly(c), url: url, header: header, block: block, cache: map[int64][]byte{}, max: 64}
	info, err := Head(ctx, c, url, header)
	if err != nil {
		return nil, err
	}
	if info.Size < 0 {
		return nil, fmt.Errorf("HEAD %s: server gave no size", httpget.Redact(url))
	}
	r.size, r.etag, r.validator = info.Size, info.ETag, info.Validator
	return r, nil
}

// Info is what a HEAD request says about a file.
type Info struct {
	FinalURL    string
	Size        int64
	ETag        string // X-Linked-Etag when present, else ETag
	Validator   string // the serving response's strong ETag (for If-Range)
	AcceptRange bool
}

// Head makes a HEAD request, following redirects.
func Head(ctx context.Context, c *http.Client, url string, header http.Header) (Info, error) {
	info := Info{Size: -1}
	req, err := http.NewRequestWithContext(ctx, http.MethodHead, url, nil)
	if err != nil {
		return info, err
	}
	for k, vs := range header {
		req.Header[k] = vs
	}
	req.Header.Set("Accept-Encoding", "identity")
	cc, linked := httpget.WithLinkedHeaders(c)
	resp, err := cc.Do(req)
	if err != nil {
		var ue interface{ Unwrap() error }
		if errors.As(err, &ue) {
			err = ue.Unwrap()
		}
		return info, fmt.Errorf("HEAD %s: %w", httpget.Redact(url), err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return info, &httpget.StatusError{URL: httpget.Redact(url), Status: resp.Status, Code: resp.StatusCode}
	}
	u := *resp.Request.URL
	u.RawQuery = ""
	info.FinalURL = u.String()
	etag := resp.Header.Get("X-Linked-Etag")
	if etag == "" {
		etag = linked.ETag
	}
	if etag == "" {
		etag = resp.Header.Get("ETag")
	}
	info.ETag = strings.Trim(strings.TrimPrefix(etag, "W/"), `"`)
	if v := resp.Header.Get("ETag"); v != "" && !strings.HasPrefix(v, "W/") {
		info.Validator = strings.Trim(v, `"`)
	}
	size := resp.Header.Get("X-Linked-Size")
	if size == "" {
		size = linked.Size
	}
	if n, err := strconv.ParseInt(size, 10, 64); err == nil {
		info.Size = n
	} else if resp.ContentLength >= 0 {
		info.Size = resp.ContentLength
	}
	info.AcceptRange = resp.Header.Get("Accept-Ranges") == "bytes"
	return info, nil
}

// Size is the remote file's size.
func (r *Reader) Size() int64 { return r.size }

// ETag is the validator the server gave.
func (r *Reader) ETag() string { return r.etag }

// Validator is the strong ETag of the serving response, for If-Range.
func (r *Reader) Validator() string { return r.validator }

// Fetched is the number of body bytes received so far.
func (r *Reader) Fetched() int64 { return r.fetched.Load() }

// ReadAt implements io.ReaderAt.
func (r *Reader) ReadAt(p []byte, off int64) (int, error) {
	if off >= r.size {
		return 0, io.EOF
	}
	n := 0
	for n < len(p) && off < r.size {
		bi := off / r.block
		b, err := r.getBlock(bi)
		if err != nil {
			return n, err
		}
		k := copy(p[n:], b[off-bi*r.block:])
		n += k
		off += int64(k)
	}
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

func (r *Reader) getBlock(bi int64) ([]byte, error) {
	r.mu.Lock()
	if b, ok := r.cache[bi]; ok {
		r.mu.Unlock()
		return b, nil
	}
	r.mu.Unlock()
	start := bi * r.block
	end := min(start+r.block, r.size) - 1
	b, err := r.fetch(start, end)
	if err != nil {
		return nil, err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.cache[bi] = b
	r.order = append(r.order, bi)
	if len(r.order) > r.max {
		delete(r.cache, r.order[0])
		r.order = r.order[1:]
	}
	return b, nil
}

// fetch gets bytes [start, end] with one Range request (retrying
// transient failures a few times).
func (r *Reader) fetch(start, end int64) ([]byte, error) {
	var lastErr error
	for attempt := 0; attempt < 4; attempt++ {
		req, err := http.NewRequestWithContext(r.ctx, http.MethodGet, r.url, nil)
		if err != nil {
			return nil, err
		}
		for k, vs := range r.header {
			req.Header[k] = vs
		}
		req.Header.Set("Accept-Encoding", "identity")
		req.Header.Set("Range", fmt.Sprintf("bytes=%d-%d", start, end))
		if r.validator != "" {
			req.Header.Set("If-Range", `"`+r.validator+`"`)
		}
		resp, err := r.client.Do(req)
		if err != nil {
			lastErr = err
			if r.ctx.Err() != nil {
				return nil, r.ctx.Err()
			}
			continue
		}
		if resp.StatusCode == http.StatusOK {
			resp.Body.Close()
			return nil, fmt.Errorf("GET %s: %w (got 200 to a Range request)", httpget.Redact(r.url), ErrNoRange)
		}
		if resp.StatusCode != http.StatusPartialContent {
			resp.Body.Close()
			lastErr = &httpget.StatusError{URL: httpget.Redact(r.url), Status: resp.Status, Code: resp.StatusCode}
			if resp.StatusCode < 500 && resp.StatusCode != 429 {
				return nil, lastErr
			}
			continue
		}
		b := make([]byte, end-start+1)
		n, err := io.ReadFull(resp.Body, b)
		resp.Body.Close()
		r.fetched.Add(int64(n))
		if err != nil {
			lastErr = fmt.Errorf("GET %s bytes %d-%d: %w", httpget.Redact(r.url), start, end, err)
			continue
		}
		return b, nil
	}
	return nil, lastErr
}
