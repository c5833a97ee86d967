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
	"time"

	"github.com/snappipe/snappipe/internal/httpget"
	"github.com/snappipe/snappipe/internal/retry"
)

// ErrNoRange means the server ignores Range requests.
var ErrNoRange = errors.New("server does not support HTTP Range requests")

// MaxBlock bounds the bytes one Range request asks for (and so the memory
// a block holds).
const MaxBlock = 4 << 20

// Reader reads a remote file at offsets. Safe for concurrent use.
type Reader struct {
	ctx       context.Context
	client    *http.Client
	url       string
	header    http.Header
	size      int64
	etag      string
	validator string
	ranges    bool // the server said Accept-Ranges: bytes
	block     int64
	idle      time.Duration

	mu    sync.Mutex
	cache map[int64][]byte // block index -> bytes
	order []int64
	max   int

	fetched atomic.Int64
}

// Open asks the server for the size (HEAD, following redirects; Hugging
// Face's X-Linked-Size/X-Linked-Etag are honoured) and returns a reader
// fetching block bytes per request.
func Open(ctx context.Context, c *http.Client, url string, header http.Header, block int64, opts ...Option) (*Reader, error) {
	if block <= 0 {
		block = 1 << 20
	}
	// Blocks are bounded whatever the caller asks: a read spanning many
	// blocks is many requests, never one allocation the size of the span.
	block = min(block, MaxBlock)
	// The cache holds at most 16 MiB (and at most 64 blocks).
	r := &Reader{ctx: ctx, client: httpget.OriginOnly(c), url: url, header: header, block: block, cache: map[int64][]byte{}, max: int(min(64, max(2, (16<<20)/block)))}
	for _, o := range opts {
		o(r)
	}
	info, err := head(ctx, c, url, header, r.idle)
	if err != nil {
		return nil, err
	}
	if info.Size < 0 {
		return nil, fmt.Errorf("HEAD %s: server gave no size", httpget.Redact(url))
	}
	r.size, r.etag, r.validator, r.ranges = info.Size, info.ETag, info.Validator, info.AcceptRange
	return r, nil
}

// RangesWork reports whether the server answers Range requests: it said
// so (Accept-Ranges: bytes), or a one-byte ranged read gets its byte. A
// server that answers 200 with the whole body (python -m http.server)
// gives false; any other failure is returned.
func (r *Reader) RangesWork() (bool, error) {
	if r.ranges || r.size == 0 {
		return true, nil
	}
	_, err := r.ReadAt(make([]byte, 1), 0)
	if errors.Is(err, ErrNoRange) {
		return false, nil
	}
	return err == nil, err
}

// Info is what a HEAD request says about a file.
type Info struct {
	FinalURL    string
	Size        int64
	ETag        string // X-Linked-Etag when present, else ETag
	Validator   string // the serving response's strong ETag (for If-Range)
	AcceptRange bool
}

// Option tunes a Reader.
type Option func(*Reader)

// IdleTimeout abandons (and retries) a request that receives no byte for
// d (default httpget.DefaultIdleTimeout).
func IdleTimeout(d time.Duration) Option { return func(r *Reader) { r.idle = d } }

func head(ctx context.Context, c *http.Client, url string, header http.Header, idle time.Duration) (Info, error) {
	info := Info{Size: -1}
	iw := httpget.NewIdle(ctx, idle)
	defer iw.Stop()
	req, err := http.NewRequestWithContext(iw.Context(), http.MethodHead, url, nil)
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
		return info, iw.Err(fmt.Errorf("HEAD %s: %w", httpget.Redact(url), err), httpget.Redact(url), 0)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return info, &httpget.StatusError{URL: httpget.Redact(url), Status: resp.Status, Code: resp.StatusCode}
	}
	if err := httpget.WebPage(resp, url); err != nil {
		return info, err
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
	if off < 0 {
		return 0, fmt.Errorf("httpra: negative offset %d", off)
	}
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

// fetch gets bytes [start, end] with one Range request, retrying
// transient failures under the shared policy (internal/retry).
func (r *Reader) fetch(start, end int64) ([]byte, error) {
	var out []byte
	err := retry.Do(r.ctx, retry.Policy{MaxAttempts: 4}, func(int) error {
		b, err := r.fetchOnce(start, end)
		out = b
		return httpget.Classify(err)
	})
	var g *retry.GaveUp
	if errors.As(err, &g) {
		err = g.Err
	}
	return out, err
}

func (r *Reader) fetchOnce(start, end int64) ([]byte, error) {
	iw := httpget.NewIdle(r.ctx, r.idle)
	defer iw.Stop()
	req, err := http.NewRequestWithContext(iw.Context(), http.MethodGet, r.url, nil)
	if err != nil {
		return nil, retry.Permanent(err)
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
		return nil, iw.Err(fmt.Errorf("GET %s: %w", httpget.Redact(r.url), unwrapURL(err)), httpget.Redact(r.url), 0)
	}
	defer resp.Body.Close()
	if err := httpget.WebPage(resp, r.url); err != nil {
		return nil, err
	}
	if resp.StatusCode == http.StatusOK {
		return nil, retry.Permanent(fmt.Errorf("GET %s: %w (got 200 to a Range request)", httpget.Redact(r.url), ErrNoRange))
	}
	if resp.StatusCode != http.StatusPartialContent {
		var err error = &httpget.StatusError{URL: httpget.Redact(r.url), Status: resp.Status, Code: resp.StatusCode}
		if d, ok := httpget.RetryAfter(resp.Header); ok {
			err = retry.After(err, d)
		}
		return nil, err
	}
	if s, _, ok := contentRange(resp.Header.Get("Content-Range")); ok && s != start {
		return nil, fmt.Errorf("GET %s: asked for bytes from %d, got Content-Range %q", httpget.Redact(r.url), start, resp.Header.Get("Content-Range"))
	}
	// end-start+1 is at most one block (Open bounds the block size).
	b := make([]byte, end-start+1)
	n, err := io.ReadFull(iw.Body(resp.Body), b)
	r.fetched.Add(int64(n))
	if err != nil {
		return nil, iw.Err(fmt.Errorf("GET %s bytes %d-%d: %w", httpget.Redact(r.url), start, end, err), httpget.Redact(r.url), int64(n))
	}
	return b, nil
}

func unwrapURL(err error) error {
	var ue interface{ Unwrap() error }
	if errors.As(err, &ue) {
		return ue.Unwrap()
	}
	return err
}

// contentRange parses "bytes START-END/TOTAL".
func contentRange(s string) (start, end int64, ok bool) {
	s, found := strings.CutPrefix(s, "bytes ")
	if !found {
		return 0, 0, false
	}
	rng, _, _ := strings.Cut(s, "/")
	a, b, found := strings.Cut(rng, "-")
	if !found {
		return 0, 0, false
	}
	start, err1 := strconv.ParseInt(a, 10, 64)
	end, err2 := strconv.ParseInt(b, 10, 64)
	return start, end, err1 == nil && err2 == nil
}
