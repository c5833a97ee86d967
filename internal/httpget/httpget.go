// Package httpget downloads a URL into a file resumably: bytes go to a
// .part file, an interrupted transfer continues with Range + If-Range, a 200
// answer to a Range request starts over, and the finished file is verified
// (SHA-256, else size) before it is renamed atomically into place.
package httpget

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/snappipe/snappipe/internal/atomicfile"
)

// Request describes one download.
type Request struct {
	URL string
	// Header is added to every request (e.g. Authorization, api-key). It is
	// never logged.
	Header http.Header
	// Dest is the final path; Dest+".part" holds the bytes in flight.
	Dest string
	// SHA256 is the expected digest (lowercase hex); empty: use
	// X-Linked-Etag when it is a SHA-256, else only the size.
	SHA256 string
	// MaxAttempts bounds retries (connection errors, 5xx, 429).
	MaxAttempts int
	// Progress, if set, is called with bytes on disk and the total (-1
	// when unknown).
	Progress func(done, total int64)
	// OnMeta, if set, is called when the server's metadata is known.
	OnMeta func(Meta)
}

// Meta is what the server said about the file.
type Meta struct {
	FinalURL string // after redirects, query removed
	Size     int64  // -1 when unknown
	ETag     string // X-Linked-Etag (Hugging Face LFS) or ETag
	SHA256   string // the digest checked against, if any
}

// Result is a finished download.
type Result struct {
	Meta
	SHA256  string // of the file on disk
	Fetched int64  // bytes transferred by this call
}

// ErrChecksum means the downloaded bytes do not match the expected digest.
var ErrChecksum = errors.New("checksum mismatch")

// StatusError is a non-retryable HTTP answer.
type StatusError struct {
	URL    string
	Status string
	Code   int
}

func (e *StatusError) Error() string { return fmt.Sprintf("GET %s: %s", e.URL, e.Status) }

// Redact drops userinfo and query from a URL for messages.
func Redact(s string) string {
	u, err := url.Parse(s)
	if err != nil {
		return "(unparseable URL)"
	}
	u.User = nil
	if u.RawQuery != "" {
		u.RawQuery = "…"
	}
	return u.String()
}

func sha256Hex(s string) string {
	s = strings.Trim(strings.TrimPrefix(s, "W/"), `"`)
	if len(s) == 64 {
		if _, err := hex.DecodeString(s); err == nil {
			return strings.ToLower(s)
		}
	}
	return ""
}

// Get downloads req.URL to req.Dest. A complete, verified file is renamed
// into place; on error the .part file stays for the next attempt unless its
// content is known to be wrong.
func Get(ctx context.Context, c *http.Client, req Request) (Result, error) {
	if req.MaxAttempts < 1 {
		req.MaxAttempts = 5
	}
	part := req.Dest + ".part"
	var res Result
	var lastErr error
	validator := "" // ETag of the bytes in the .part file
	if b, err := os.ReadFile(part + ".etag"); err == nil {
		validator = string(b)
	}
	for attempt := 0; attempt < req.MaxAttempts; attempt++ {
		if attempt > 0 {
			d := backoff(attempt, lastErr)
			select {
			case <-time.After(d):
			case <-ctx.Done():
				return res, ctx.Err()
			}
		}
		o, err := getOnce(ctx, c, req, part, &validator)
		res.Fetched += o.n
		meta := o.meta
		if meta.FinalURL != "" {
			res.Meta = meta
		}
		if err == nil && o.done {
			sum, size := o.sum, o.size
			want := req.SHA256
			if want == "" {
				want = sha256Hex(meta.ETag)
			}
			res.Meta.SHA256 = want
			if (want != "" && sum != want) || (meta.Size >= 0 && size != meta.Size) {
				os.Remove(part)
				os.Remove(part + ".etag")
				validator = ""
				lastErr = fmt.Errorf("%s: %w: got sha256 %s (%d bytes), want %s (%d bytes)", Redact(req.URL), ErrChecksum, sum, size, orUnknown(want), meta.Size)
				continue
			}
			if err := atomicfile.Commit(part, req.Dest); err != nil {
				return res, err
			}
			os.Remove(part + ".etag")
			res.SHA256 = sum
			return res, nil
		}
		if err == nil {
			continue
		}
		if ctx.Err() != nil {
			return res, ctx.Err()
		}
		var se *StatusError
		if errors.As(err, &se) && !retryableStatus(se.Code) {
			return res, err
		}
		lastErr = err
	}
	return res, fmt.Errorf("download %s failed after %d attempts: %w", Redact(req.URL), req.MaxAttempts, lastErr)
}

func orUnknown(s string) string {
	if s == "" {
		return "(no digest)"
	}
	return s
}

func retryableStatus(code int) bool {
	return code == http.StatusTooManyRequests || code == http.StatusRequestTimeout || code >= 500
}

type retryAfterError struct {
	error
	after time.Duration
}

func backoff(attempt int, err error) time.Duration {
	var ra *retryAfterError
	if errors.As(err, &ra) && ra.after > 0 {
		return ra.after
	}
	base := 200 * time.Millisecond << min(attempt-1, 6)
	base = min(base, 10*time.Second)
	return base/2 + time.Duration(rand.Int64N(int64(base/2)+1))
}

// once is the outcome of one request.
type once struct {
	n    int64 // body bytes received
	meta Meta
	// done: the server sent the whole remaining body; sum and size then
	// describe the complete part file.
	done bool
	sum  string
	size int64
}

// getOnce makes one request, appending to part. The part file is hashed
// as it is written (its earlier bytes first, on a resumed request), so a
// finished download is never read back just to be verified.
func getOnce(ctx context.Context, c *http.Client, req Request, part string, validator *string) (once, error) {
	meta := Meta{Size: -1}
	var have int64
	if st, err := os.Stat(part); err == nil {
		have = st.Size()
	}
	hr, err := http.NewRequestWithContext(ctx, http.MethodGet, req.URL, nil)
	if err != nil {
		return once{meta: meta}, err
	}
	for k, vs := range req.Header {
		for _, v := range vs {
			hr.Header.Add(k, v)
		}
	}
	hr.Header.Set("Accept-Encoding", "identity")
	if have > 0 {
		hr.Header.Set("Range", fmt.Sprintf("bytes=%d-", have))
		if *validator != "" {
			// If-Range needs a strong, quoted entity tag.
			hr.Header.Set("If-Range", `"`+*validator+`"`)
		}
	}
	cc, linked := WithLinkedHeaders(c)
	resp, err := cc.Do(hr)
	linkedETag, linkedSize := linked.ETag, linked.Size
	if err != nil {
		return once{meta: meta}, fmt.Errorf("GET %s: %w", Redact(req.URL), stripURL(err))
	}
	defer resp.Body.Close()
	final := *resp.Request.URL
	final.RawQuery = ""
	meta.FinalURL = final.String()
	etag := resp.Header.Get("X-Linked-Etag")
	if etag == "" {
		etag = linkedETag
	}
	if etag == "" {
		etag = resp.Header.Get("ETag")
	}
	meta.ETag = strings.Trim(strings.TrimPrefix(etag, "W/"), `"`)
	// The If-Range validator is the entity tag of the server that sends
	// the bytes (a CDN's, not Hugging Face's X-Linked-Etag); weak tags
	// cannot validate a range.
	served := resp.Header.Get("ETag")
	if strings.HasPrefix(served, "W/") {
		served = ""
	}
	served = strings.Trim(served, `"`)
	xs := resp.Header.Get("X-Linked-Size")
	if xs == "" {
		xs = linkedSize
	}
	if xs != "" {
		if n, err := strconv.ParseInt(xs, 10, 64); err == nil {
			meta.Size = n
		}
	}
	flags := os.O_WRONLY | os.O_CREATE
	switch resp.StatusCode {
	case http.StatusOK:
		// A full body: a Range request was ignored (or there was none).
		have = 0
		flags |= os.O_TRUNC
		if meta.Size < 0 && resp.ContentLength >= 0 {
			meta.Size = resp.ContentLength
		}
	case http.StatusPartialContent:
		start, total, ok := parseContentRange(resp.Header.Get("Content-Range"))
		if !ok || start != have {
			// Unusable range: start over.
			os.Remove(part)
			*validator = ""
			return once{meta: meta}, fmt.Errorf("GET %s: bad Content-Range %q for offset %d", Redact(req.URL), resp.Header.Get("Content-Range"), have)
		}
		if meta.Size < 0 {
			meta.Size = total
		}
		flags |= os.O_APPEND
	case http.StatusRequestedRangeNotSatisfiable:
		// The part file is longer than the resource: start over.
		os.Remove(part)
		*validator = ""
		return once{meta: meta}, fmt.Errorf("GET %s: range not satisfiable at offset %d; restarting", Redact(req.URL), have)
	default:
		err := &StatusError{URL: Redact(req.URL), Status: resp.Status, Code: resp.StatusCode}
		if s := resp.Header.Get("Retry-After"); s != "" {
			if secs, perr := strconv.Atoi(s); perr == nil {
				return once{meta: meta}, &retryAfterError{err, time.Duration(secs) * time.Second}
			}
		}
		return once{meta: meta}, err
	}
	if req.OnMeta != nil {
		req.OnMeta(meta)
	}
	if *validator != "" && served != "" && *validator != served && have > 0 && resp.StatusCode == http.StatusPartialContent {
		// The resource changed under a server that ignored If-Range.
		old := *validator
		os.Remove(part)
		*validator = ""
		return once{meta: meta}, fmt.Errorf("GET %s: ETag changed from %s to %s; restarting", Redact(req.URL), old, served)
	}
	f, err := os.OpenFile(part, flags, 0o644)
	if err != nil {
		return once{meta: meta}, err
	}
	*validator = served
	if served != "" {
		atomicfile.WriteFile(part+".etag", []byte(served), 0o644)
	} else {
		os.Remove(part + ".etag")
	}
	h := sha256.New()
	if have > 0 {
		pf, err := os.Open(part)
		if err == nil {
			_, err = io.CopyN(h, pf, have)
			pf.Close()
		}
		if err != nil {
			f.Close()
			return once{meta: meta}, err
		}
	}
	n, err := copyProgress(io.MultiWriter(f, h), resp.Body, have, meta.Size, req.Progress)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return once{n: n, meta: meta}, fmt.Errorf("GET %s: after %d bytes: %w", Redact(req.URL), have+n, stripURL(err))
	}
	if resp.ContentLength >= 0 && n != resp.ContentLength {
		return once{n: n, meta: meta}, fmt.Errorf("GET %s: body ended after %d of %d bytes", Redact(req.URL), n, resp.ContentLength)
	}
	return once{n: n, meta: meta, done: true, sum: hex.EncodeToString(h.Sum(nil)), size: have + n}, nil
}

func stripURL(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

func parseContentRange(s string) (start, total int64, ok bool) {
	// bytes START-END/TOTAL
	s, found := strings.CutPrefix(s, "bytes ")
	if !found {
		return 0, 0, false
	}
	rng, tot, found := strings.Cut(s, "/")
	if !found {
		return 0, 0, false
	}
	a, _, found := strings.Cut(rng, "-")
	if !found {
		return 0, 0, false
	}
	start, err := strconv.ParseInt(a, 10, 64)
	if err != nil {
		return 0, 0, false
	}
	total = -1
	if tot != "*" {
		if total, err = strconv.ParseInt(tot, 10, 64); err != nil {
			return 0, 0, false
		}
	}
	return start, total, true
}

func copyProgress(w io.Writer, r io.Reader, base, total int64, progress func(int64, int64)) (int64, error) {
	buf := make([]byte, 256<<10)
	var n int64
	last := time.Now()
	for {
		k, err := r.Read(buf)
		if k > 0 {
			if _, werr := w.Write(buf[:k]); werr != nil {
				return n, werr
			}
			n += int64(k)
			if progress != nil && time.Since(last) > 100*time.Millisecond {
				progress(base+n, total)
				last = time.Now()
			}
		}
		if err == io.EOF {
			if progress != nil {
				progress(base+n, total)
			}
			return n, nil
		}
		if err != nil {
			return n, err
		}
	}
}

// HashFile returns the SHA-256 (hex) and size of a file.
func HashFile(path string) (string, int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", 0, err
	}
	defer f.Close()
	h := sha256.New()
	n, err := io.Copy(h, f)
	if err != nil {
		return "", 0, err
	}
	return hex.EncodeToString(h.Sum(nil)), n, nil
}

// Linked holds Hugging Face's X-Linked-Etag / X-Linked-Size as seen on a
// redirect response.
type Linked struct{ ETag, Size string }

// CredentialHeaders go only to the origin (scheme, host and port) of the
// request they were set on: a redirect to any other origin drops them.
// Go drops Authorization and Cookie only for other domains (a subdomain
// still gets them) and forwards custom ones such as Qdrant's api-key.
var CredentialHeaders = []string{"Authorization", "Api-Key", "Proxy-Authorization", "Cookie"}

// DropCrossOrigin removes the credential headers from a redirected request
// whose origin differs from the first request's.
func DropCrossOrigin(r *http.Request, via []*http.Request) {
	if len(via) == 0 {
		return
	}
	first := via[0].URL
	if r.URL.Scheme != first.Scheme || r.URL.Host != first.Host {
		for _, h := range CredentialHeaders {
			r.Header.Del(h)
		}
	}
}

// OriginOnly returns a copy of c whose redirects never carry credentials
// to another origin (DropCrossOrigin). At most 10 redirects are followed.
func OriginOnly(c *http.Client) *http.Client {
	cc, _ := WithLinkedHeaders(c)
	return cc
}

// WithLinkedHeaders returns a copy of c that records X-Linked-* headers of
// redirect responses (Hugging Face sends them on the 302 to its CDN, not
// on the CDN's answer) and drops credentials on a redirect to another
// origin. At most 10 redirects are followed.
func WithLinkedHeaders(c *http.Client) (*http.Client, *Linked) {
	l := &Linked{}
	cc := *c
	cc.CheckRedirect = func(r *http.Request, via []*http.Request) error {
		if len(via) >= 10 {
			return errors.New("stopped after 10 redirects")
		}
		DropCrossOrigin(r, via)
		if r.Response != nil {
			if v := r.Response.Header.Get("X-Linked-Etag"); v != "" && l.ETag == "" {
				l.ETag = v
			}
			if v := r.Response.Header.Get("X-Linked-Size"); v != "" && l.Size == "" {
				l.Size = v
			}
		}
		if c.CheckRedirect != nil {
			return c.CheckRedirect(r, via)
		}
		return nil
	}
	return &cc, l
}
