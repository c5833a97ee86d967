// Package httpget downloads a URL into a file resumably: bytes go to a
// .part file, an interrupted transfer continues with Range + If-Range, a 200
// answer to a Range request starts over, and the finished file is verified
// (SHA-256, else size) before it is renamed atomically into place.
package httpget

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/snappipe/snappipe/internal/atomicfile"
	"github.com/snappipe/snappipe/internal/retry"
)

// Request describes one download.
type Request struct {
	URL string
	// Header is added to every request (e.g. Authorization, api-key). It is
	// never logged, and never sent to another origin on a redirect.
	Header http.Header
	// Dest is the final path; Dest+".part" holds the bytes in flight.
	Dest string
	// SHA256 is the expected digest (lowercase hex); empty: use
	// X-Linked-Etag when it is a SHA-256, else only the size.
	SHA256 string
	// Size is the expected size when the caller knows it (a snapshot's
	// listed size); -1 or 0 when unknown. A body longer than it is refused.
	Size int64
	// Limit, when > 0, fetches only the file's first Limit bytes (a row
	// limit's prefix): Dest then holds exactly those bytes, and SHA256 is
	// not checked (it is the whole file's).
	Limit int64
	// DeclaredSize, if set, is asked for the file's size from its first
	// bytes (a format header) when the server declares none: the body is
	// then refused past that size instead of growing without bound. It
	// returns -1 when the head does not tell.
	DeclaredSize func(head []byte) int64
	// MaxUndeclared bounds a body for which neither the server nor the
	// file's header declares a size (0: no bound).
	MaxUndeclared int64
	// MaxAttempts and MaxElapsed bound retries of transient failures
	// (connection errors, stalls, 5xx, 408, 429); permanent ones (other
	// 4xx, unsupported schemes, certificate errors, lying sizes) fail at
	// once. Defaults: 5 attempts, no time cap.
	MaxAttempts int
	MaxElapsed  time.Duration
	// IdleTimeout abandons (and retries) a request that receives less than
	// MinProgress bytes within this long: headers or body (a trickle is a
	// stall). Default DefaultIdleTimeout.
	IdleTimeout time.Duration
	// Progress, if set, is called with bytes on disk and the total (-1
	// when unknown).
	Progress func(done, total int64)
	// OnMeta, if set, is called when the server's metadata is known.
	OnMeta func(Meta)
	// OnStart, if set, is called when a response's body is about to be
	// written to the .part file (created by then), with the offset its
	// bytes start at: below what an earlier response wrote, the earlier
	// bytes were dropped (the file changed, or failed its checksum).
	OnStart func(offset int64)
	// OnWrite, if set, is called after every write with the bytes now in
	// the .part file (a reader may read them: there is no write buffer).
	OnWrite func(have int64)
	// OnRetry, if set, is told of each transient failure before the wait.
	OnRetry func(attempt int, err error, wait time.Duration)
}

// DefaultIdleTimeout is how long a download may receive nothing before it
// is abandoned and retried.
const DefaultIdleTimeout = 60 * time.Second

// HeadBytes is how much of a file's start DeclaredSize is shown.
const HeadBytes = 64 << 10

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
	SHA256    string // of the file on disk
	Fetched   int64  // bytes transferred by this call
	Validator string // the serving response's strong ETag, for a later If-Range
}

// ErrChecksum means the downloaded bytes do not match the expected digest.
var ErrChecksum = errors.New("checksum mismatch")

// ErrTooLarge means a server sent more bytes than the file's declared size.
var ErrTooLarge = errors.New("server sent more bytes than the file's declared size")

// ErrStalled means a request received no byte for the idle timeout.
var ErrStalled = errors.New("transfer stalled")

// StatusError is an HTTP answer other than the one expected.
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
	// A shard set's {A..B} range reads as written, not as %7BA..B%7D.
	return braces.Replace(u.String())
}

var braces = strings.NewReplacer("%7B", "{", "%7D", "}")

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
// content is known to be wrong. Retries follow the shared policy
// (internal/retry) with Classify deciding what is worth retrying.
func Get(ctx context.Context, c *http.Client, req Request) (Result, error) {
	part := req.Dest + ".part"
	var res Result
	validator := "" // ETag of the bytes in the .part file
	if b, err := os.ReadFile(part + ".etag"); err == nil {
		validator = string(b)
	}
	pol := retry.Policy{MaxAttempts: req.MaxAttempts, MaxElapsed: req.MaxElapsed, Notify: req.OnRetry}
	err := retry.Do(ctx, pol, func(int) error {
		o, err := getOnce(ctx, c, req, part, &validator)
		res.Fetched += o.n
		meta := o.meta
		if meta.FinalURL != "" {
			res.Meta = meta
		}
		if err != nil {
			return Classify(err)
		}
		sum, size := o.sum, o.size
		want := req.SHA256
		if want == "" {
			want = sha256Hex(meta.ETag)
		}
		wantSize := meta.Size
		if req.Limit > 0 {
			want, wantSize = "", req.Limit
		}
		res.Meta.SHA256 = want
		if (want != "" && sum != want) || (wantSize >= 0 && size != wantSize) {
			os.Remove(part)
			os.Remove(part + ".etag")
			validator = ""
			return fmt.Errorf("%s: %w: got sha256 %s (%d bytes), want %s (%d bytes)", Redact(req.URL), ErrChecksum, sum, size, orUnknown(want), wantSize)
		}
		if err := atomicfile.Commit(part, req.Dest); err != nil {
			return retry.Permanent(err)
		}
		os.Remove(part + ".etag")
		res.SHA256, res.Validator = sum, validator
		return nil
	})
	if err == nil {
		return res, nil
	}
	if ctx.Err() != nil {
		return res, ctx.Err()
	}
	var g *retry.GaveUp
	if errors.As(err, &g) {
		return res, fmt.Errorf("download %s failed after %d attempts: %w", Redact(req.URL), g.Attempts, g.Err)
	}
	return res, err
}

// Classify marks err as permanent when retrying cannot help: an HTTP
// status other than 408, 429 and 5xx; a scheme Go cannot fetch (a
// redirect to file://); a certificate that does not verify; too many
// redirects; a body longer than the declared size. A Retry-After the
// server sent becomes the wait. Everything else is transient.
func Classify(err error) error {
	if err == nil || retry.IsPermanent(err) {
		return err
	}
	if _, ok := retry.WaitOf(err); ok {
		return err
	}
	var se *StatusError
	if errors.As(err, &se) && !retryableStatus(se.Code) {
		return retry.Permanent(err)
	}
	if errors.Is(err, ErrTooLarge) || errors.Is(err, errRedirects) {
		return retry.Permanent(err)
	}
	var (
		unknownCA *x509.UnknownAuthorityError
		hostname  x509.HostnameError
		invalid   x509.CertificateInvalidError
		verify    *tls.CertificateVerificationError
	)
	if errors.As(err, &unknownCA) || errors.As(err, &hostname) || errors.As(err, &invalid) || errors.As(err, &verify) {
		return retry.Permanent(err)
	}
	if strings.Contains(err.Error(), "unsupported protocol scheme") {
		return retry.Permanent(err)
	}
	return err
}

var errRedirects = errors.New("stopped after 10 redirects")

func orUnknown(s string) string {
	if s == "" {
		return "(no digest)"
	}
	return s
}

func retryableStatus(code int) bool {
	return code == http.StatusTooManyRequests || code == http.StatusRequestTimeout || code >= 500
}

// RetryAfter reads a Retry-After header in seconds (0, false when absent
// or an HTTP date, which servers we talk to do not send).
func RetryAfter(h http.Header) (time.Duration, bool) {
	s := h.Get("Retry-After")
	if s == "" {
		return 0, false
	}
	secs, err := strconv.Atoi(s)
	if err != nil || secs < 0 {
		return 0, false
	}
	return min(time.Duration(secs)*time.Second, 10*time.Minute), true
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
	if req.Limit > 0 && have > req.Limit {
		os.Remove(part)
		have = 0
	}
	// One idle timer covers the whole exchange: no byte for IdleTimeout
	// (waiting for headers or inside the body) cancels this request.
	iw := NewIdle(ctx, req.IdleTimeout)
	defer iw.Stop()
	actx := iw.Context()
	stalled := func(err error, at int64) error { return iw.Err(err, Redact(req.URL), at) }
	hr, err := http.NewRequestWithContext(actx, http.MethodGet, req.URL, nil)
	if err != nil {
		return once{meta: meta}, retry.Permanent(err)
	}
	for k, vs := range req.Header {
		for _, v := range vs {
			hr.Header.Add(k, v)
		}
	}
	hr.Header.Set("Accept-Encoding", "identity")
	if have > 0 || req.Limit > 0 {
		if req.Limit > 0 {
			hr.Header.Set("Range", fmt.Sprintf("bytes=%d-%d", have, req.Limit-1))
		} else {
			hr.Header.Set("Range", fmt.Sprintf("bytes=%d-", have))
		}
		if *validator != "" && have > 0 {
			// If-Range needs a strong, quoted entity tag.
			hr.Header.Set("If-Range", `"`+*validator+`"`)
		}
	}
	if req.Limit > 0 && have == req.Limit {
		return finishPart(part, have, meta)
	}
	cc, linked := WithLinkedHeaders(c)
	resp, err := cc.Do(hr)
	linkedETag, linkedSize := linked.ETag, linked.Size
	if err != nil {
		return once{meta: meta}, stalled(fmt.Errorf("GET %s: %w", Redact(req.URL), stripURL(err)), have)
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
		if n, err := strconv.ParseInt(xs, 10, 64); err == nil && n >= 0 {
			meta.Size = n
		}
	}
	flags := os.O_WRONLY | os.O_CREATE
	if err := WebPage(resp, req.URL); err != nil {
		return once{meta: meta}, err
	}
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
		if n, ok := unsatisfiedTotal(resp.Header.Get("Content-Range")); ok && n == have && have > 0 && req.Limit == 0 &&
			(*validator == "" || served == "" || served == *validator) {
			// The part file already holds the whole resource (a run ended
			// after the last byte, before the file was moved into place).
			if meta.Size < 0 {
				meta.Size = n
			}
			if req.OnMeta != nil {
				req.OnMeta(meta)
			}
			return finishPart(part, have, meta)
		}
		// The part file is longer than the resource: start over.
		os.Remove(part)
		*validator = ""
		return once{meta: meta}, fmt.Errorf("GET %s: range not satisfiable at offset %d; restarting", Redact(req.URL), have)
	default:
		var err error = &StatusError{URL: Redact(req.URL), Status: resp.Status, Code: resp.StatusCode}
		if d, ok := RetryAfter(resp.Header); ok && retryableStatus(resp.StatusCode) {
			err = retry.After(err, d)
		}
		return once{meta: meta}, err
	}
	if req.Size > 0 {
		if meta.Size > req.Size {
			return once{meta: meta}, fmt.Errorf("GET %s: %w: the server announces %d bytes, expected %d", Redact(req.URL), ErrTooLarge, meta.Size, req.Size)
		}
		if meta.Size >= 0 && meta.Size < req.Size {
			return once{meta: meta}, fmt.Errorf("GET %s: the server announces %d bytes, expected %d", Redact(req.URL), meta.Size, req.Size)
		}
		meta.Size = req.Size
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
	if meta.Size >= 0 {
		to := meta.Size
		if req.Limit > 0 {
			to = min(to, req.Limit)
		}
		if err := checkSpace(part, to-have, req.URL); err != nil {
			return once{meta: meta}, err
		}
	}
	f, err := os.OpenFile(part, flags, 0o644)
	if err != nil {
		return once{meta: meta}, retry.Permanent(err)
	}
	*validator = served
	if served != "" {
		atomicfile.WriteFile(part+".etag", []byte(served), 0o644)
	} else {
		os.Remove(part + ".etag")
	}
	if req.OnStart != nil {
		req.OnStart(have)
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
	body := iw.Body(resp.Body)
	w := io.MultiWriter(f, h)
	// The most bytes this body may bring: the declared size (X-Linked-Size,
	// Content-Range, Content-Length, the caller's Size) or the limit.
	limit := int64(-1)
	if meta.Size >= 0 {
		limit = meta.Size
	}
	if req.Limit > 0 && (limit < 0 || req.Limit < limit) {
		limit = req.Limit
	}
	var n int64
	if limit < 0 && req.DeclaredSize != nil {
		// No size declared by the server: let the file's own header say.
		if have < HeadBytes {
			k, err := copyProgress(w, io.LimitReader(body, HeadBytes-have), have, -1, req.Progress, req.OnWrite)
			n += k
			if err != nil {
				f.Close()
				return once{n: n, meta: meta}, noSpace(stalled(fmt.Errorf("GET %s: after %d bytes: %w", Redact(req.URL), have+n, stripURL(err)), have+n), part, req.URL)
			}
		}
		if head, err := readHead(part); err == nil {
			if d := req.DeclaredSize(head); d >= 0 {
				limit = d
				meta.Size = d
			}
		}
	}
	undeclared := false
	if limit < 0 && req.MaxUndeclared > 0 {
		limit, undeclared = req.MaxUndeclared, true
	}
	var rest io.Reader = body
	if limit >= 0 {
		rest = io.LimitReader(body, max(limit-have-n, 0)+1)
	}
	k, err := copyProgress(w, rest, have+n, meta.Size, req.Progress, req.OnWrite)
	n += k
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return once{n: n, meta: meta}, noSpace(stalled(fmt.Errorf("GET %s: after %d bytes: %w", Redact(req.URL), have+n, stripURL(err)), have+n), part, req.URL)
	}
	if limit >= 0 && have+n > limit {
		if req.Limit > 0 && limit == req.Limit {
			// A server that ignored the range end: the prefix is complete.
			if err := os.Truncate(part, limit); err != nil {
				return once{n: n, meta: meta}, err
			}
			return finishPart(part, limit, meta)
		}
		os.Remove(part)
		os.Remove(part + ".etag")
		*validator = ""
		if undeclared {
			return once{n: n, meta: meta}, fmt.Errorf("GET %s: %w: no size declared (no Content-Length, X-Linked-Size or format header) and more than %d bytes sent (download.max_undeclared_size)", Redact(req.URL), ErrTooLarge, limit)
		}
		return once{n: n, meta: meta}, fmt.Errorf("GET %s: %w (%d bytes); refusing the rest", Redact(req.URL), ErrTooLarge, limit)
	}
	if resp.ContentLength >= 0 && n != resp.ContentLength {
		return once{n: n, meta: meta}, fmt.Errorf("GET %s: body ended after %d of %d bytes", Redact(req.URL), n, resp.ContentLength)
	}
	return once{n: n, meta: meta, done: true, sum: hex.EncodeToString(h.Sum(nil)), size: have + n}, nil
}

// unsatisfiedTotal reads a 416 answer's "bytes */N".
func unsatisfiedTotal(cr string) (int64, bool) {
	rest, ok := strings.CutPrefix(cr, "bytes */")
	if !ok {
		return 0, false
	}
	n, err := strconv.ParseInt(rest, 10, 64)
	return n, err == nil && n >= 0
}

// finishPart hashes a part file that already holds the wanted bytes.
func finishPart(part string, size int64, meta Meta) (once, error) {
	sum, n, err := HashFile(part)
	if err != nil {
		return once{meta: meta}, err
	}
	if n != size {
		return once{meta: meta}, fmt.Errorf("%s: has %d bytes, want %d", part, n, size)
	}
	return once{meta: meta, done: true, sum: sum, size: n}, nil
}

// readHead returns the first HeadBytes bytes of the part file being
// written through f.
func readHead(part string) ([]byte, error) {
	pf, err := os.Open(part)
	if err != nil {
		return nil, err
	}
	defer pf.Close()
	b := make([]byte, HeadBytes)
	k, err := io.ReadFull(pf, b)
	if err != nil && err != io.ErrUnexpectedEOF && err != io.EOF {
		return nil, err
	}
	return b[:k], nil
}

// Idle watches one HTTP exchange: its Context is cancelled when less than
// MinProgress bytes arrive within the timeout, waiting for the headers or
// inside the body (a short body that ends in time is fine).
type Idle struct {
	parent context.Context
	ctx    context.Context
	cancel context.CancelCauseFunc
	timer  *time.Timer
	d      time.Duration
}

// NewIdle starts the watch (d <= 0: DefaultIdleTimeout).
func NewIdle(ctx context.Context, d time.Duration) *Idle {
	if d <= 0 {
		d = DefaultIdleTimeout
	}
	i := &Idle{parent: ctx, d: d}
	i.ctx, i.cancel = context.WithCancelCause(ctx)
	i.timer = time.AfterFunc(d, func() { i.cancel(ErrStalled) })
	return i
}

// Context is the request's context.
func (i *Idle) Context() context.Context { return i.ctx }

// Body wraps a response body so every byte received re-arms the timer.
func (i *Idle) Body(r io.Reader) io.Reader { return &idleReader{r: r, i: i} }

// Err turns the error of a stalled exchange into an ErrStalled error
// (transient) and returns others unchanged.
func (i *Idle) Err(err error, url string, at int64) error {
	if err != nil && context.Cause(i.ctx) == ErrStalled && i.parent.Err() == nil {
		return fmt.Errorf("GET %s: %w (less than %d bytes in %s, download.idle_timeout) after %d bytes", url, ErrStalled, MinProgress, i.d, at)
	}
	return err
}

// Stop ends the watch.
func (i *Idle) Stop() {
	i.timer.Stop()
	i.cancel(nil)
}

// MinProgress is the least a transfer must receive within the idle
// timeout to count as alive: a body trickling a byte every few seconds
// is a stall too.
const MinProgress = 64 << 10

type idleReader struct {
	r   io.Reader
	i   *Idle
	got int
}

func (r *idleReader) Read(p []byte) (int, error) {
	n, err := r.r.Read(p)
	if r.got += n; r.got >= MinProgress || err != nil && n > 0 {
		r.i.timer.Reset(r.i.d)
		r.got = 0
	}
	return n, err
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

func copyProgress(w io.Writer, r io.Reader, base, total int64, progress func(int64, int64), onWrite func(int64)) (int64, error) {
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
			if onWrite != nil {
				onWrite(base + n)
			}
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
			return errRedirects
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

// HFAuth carries HF_TOKEN as a bearer token when it is set (for url:
// sources; never sent to another origin).
func HFAuth() http.Header {
	hdr := http.Header{}
	if tok := os.Getenv("HF_TOKEN"); tok != "" {
		hdr.Set("Authorization", "Bearer "+tok)
	}
	return hdr
}
