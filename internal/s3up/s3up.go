// Package s3up streams a file from an HTTP URL (Qdrant's snapshot
// download) into an S3 multipart upload, hashing it on the way: the object
// becomes visible under its key only when the whole body has arrived and
// its SHA-256 equals the expected one (the multipart upload is completed
// after the check, aborted otherwise). Progress — the upload id, the parts
// sent and the SHA-256 state after them — is handed to a save function
// after every part, so an interrupted upload resumes at the next part
// (an HTTP Range request from that offset) instead of starting over.
package s3up

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go"

	"github.com/snappipe/snappipe/internal/httpget"
	"github.com/snappipe/snappipe/internal/retry"
	"github.com/snappipe/snappipe/pipeline/config"
)

// Options reach the store.
type Options struct {
	Endpoint       string `json:"endpoint,omitempty"`
	Region         string `json:"region,omitempty"`
	ForcePathStyle bool   `json:"force_path_style,omitempty"`
}

// OptionsOf is the store a config's snapshot.s3 names.
func OptionsOf(o config.S3Config) Options {
	return Options{Endpoint: o.Endpoint, Region: o.Region, ForcePathStyle: o.ForcePathStyle}
}

// Client builds an S3 client from the SDK's default chain (environment,
// profiles) and the options.
func Client(ctx context.Context, o Options) (*s3.Client, error) {
	var lo []func(*awsconfig.LoadOptions) error
	if o.Region != "" {
		lo = append(lo, awsconfig.WithRegion(o.Region))
	}
	cfg, err := awsconfig.LoadDefaultConfig(ctx, lo...)
	if err != nil {
		return nil, fmt.Errorf("AWS configuration: %w", err)
	}
	if cfg.Region == "" {
		cfg.Region = "us-east-1"
	}
	return s3.NewFromConfig(cfg, func(so *s3.Options) {
		if o.Endpoint != "" {
			so.BaseEndpoint = aws.String(o.Endpoint)
		}
		so.UsePathStyle = o.ForcePathStyle
		// The snapshot's own SHA-256 is what is verified; request checksums
		// only when the store asks (S3-compatible stores differ here).
		so.RequestChecksumCalculation = aws.RequestChecksumCalculationWhenRequired
		so.ResponseChecksumValidation = aws.ResponseChecksumValidationWhenRequired
	}), nil
}

// Part is one uploaded part.
type Part struct {
	N    int32  `json:"n"`
	ETag string `json:"etag"`
	Size int64  `json:"size"`
}

// Progress is what an upload has done so far (kept in the checkpoint).
type Progress struct {
	UploadID string `json:"upload_id,omitempty"`
	Parts    []Part `json:"parts,omitempty"`
	Offset   int64  `json:"offset"`
	// Hash is the SHA-256 state after Offset bytes (its binary form).
	Hash []byte `json:"sha256_state,omitempty"`
}

// Request is one upload.
type Request struct {
	S3       *s3.Client
	Bucket   string
	Key      string
	URL      string      // where the bytes come from
	Header   http.Header // for the source (api-key); never sent elsewhere
	HTTP     *http.Client
	Size     int64  // expected size; -1 unknown
	SHA256   string // expected digest (lowercase hex); "" checks size only
	PartSize int64
	// MaxAttempts bounds retries of the whole transfer (each resumes).
	MaxAttempts int
	Progress    Progress
	// Save is called with the progress after every part (and when it is
	// reset); an error stops the upload.
	Save func(Progress) error
	// OnBytes reports bytes uploaded so far.
	OnBytes func(done, total int64)
}

// ErrChecksum means the bytes that arrived do not match the digest.
var ErrChecksum = errors.New("checksum mismatch")

// Upload streams req.URL into s3://Bucket/Key and returns the SHA-256 of
// what was stored. Stale multipart uploads of the same key (from runs
// whose progress was lost) are aborted once the object is complete.
func Upload(ctx context.Context, req Request) (string, error) {
	if req.PartSize < 5<<20 {
		req.PartSize = 5 << 20
	}
	var sum string
	err := retry.Do(ctx, retry.Policy{MaxAttempts: req.MaxAttempts}, func(int) error {
		s, err := once(ctx, &req)
		sum = s
		if errors.Is(err, ErrChecksum) {
			return err // transient: start over (the state was reset)
		}
		return httpget.Classify(err)
	})
	var g *retry.GaveUp
	if errors.As(err, &g) {
		return "", fmt.Errorf("upload to s3://%s/%s failed after %d attempts: %w", req.Bucket, req.Key, g.Attempts, g.Err)
	}
	if err != nil {
		return "", err
	}
	abortStale(ctx, req, "")
	return sum, nil
}

// createTimeout bounds the creation of a multipart upload, which a
// cancelled run lets finish (see once).
const createTimeout = 30 * time.Second

func once(ctx context.Context, req *Request) (string, error) {
	p := &req.Progress
	h := sha256.New()
	if p.UploadID != "" && len(p.Hash) > 0 {
		if err := h.(encoding.BinaryUnmarshaler).UnmarshalBinary(p.Hash); err != nil {
			*p = Progress{} // unusable: start over
		}
	}
	if p.UploadID == "" {
		abortStale(ctx, *req, "")
		// Not cancelled half-way: an upload the store created must reach
		// Save, or no checkpoint would know to abort it (a run stopped,
		// or a sibling upload failing, while the request is in flight).
		if err := ctx.Err(); err != nil {
			return "", err
		}
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), createTimeout)
		out, err := req.S3.CreateMultipartUpload(cctx, &s3.CreateMultipartUploadInput{Bucket: &req.Bucket, Key: &req.Key, ContentType: aws.String("application/octet-stream")})
		cancel()
		if err != nil {
			return "", retry.Permanent(fmt.Errorf("start the upload to s3://%s/%s: %w", req.Bucket, req.Key, err))
		}
		*p = Progress{UploadID: aws.ToString(out.UploadId)}
		h = sha256.New()
		if err := req.Save(*p); err != nil {
			return "", retry.Permanent(err)
		}
	}
	var body io.ReadCloser = io.NopCloser(strings.NewReader(""))
	if req.Size < 0 || p.Offset < req.Size {
		var err error
		if body, err = open(ctx, req, p.Offset); err != nil {
			return "", err
		}
	}
	defer body.Close()
	buf := make([]byte, req.PartSize)
	for {
		n, rerr := io.ReadFull(body, buf)
		if rerr == io.ErrUnexpectedEOF && req.Size >= 0 && p.Offset+int64(n) < req.Size {
			// The body was cut short of a whole part: drop the piece and
			// resume at the part boundary on the next attempt (only the
			// last part may be smaller than the part size).
			return "", fmt.Errorf("GET %s: body ended after %d of %d bytes", httpget.Redact(req.URL), p.Offset+int64(n), req.Size)
		}
		if n > 0 {
			if req.Size >= 0 && p.Offset+int64(n) > req.Size {
				return "", retry.Permanent(fmt.Errorf("GET %s: %w (%d bytes)", httpget.Redact(req.URL), httpget.ErrTooLarge, req.Size))
			}
			num := int32(len(p.Parts) + 1)
			out, err := req.S3.UploadPart(ctx, &s3.UploadPartInput{Bucket: &req.Bucket, Key: &req.Key, UploadId: &p.UploadID,
				PartNumber: &num, Body: bytes.NewReader(buf[:n]), ContentLength: aws.Int64(int64(n))})
			if err != nil {
				if isNoSuchUpload(err) {
					*p = Progress{}
					req.Save(*p)
				}
				return "", fmt.Errorf("upload part %d of s3://%s/%s: %w", num, req.Bucket, req.Key, err)
			}
			h.Write(buf[:n])
			state, _ := h.(encoding.BinaryMarshaler).MarshalBinary()
			p.Parts = append(p.Parts, Part{N: num, ETag: aws.ToString(out.ETag), Size: int64(n)})
			p.Offset += int64(n)
			p.Hash = state
			if err := req.Save(*p); err != nil {
				return "", retry.Permanent(err)
			}
			if req.OnBytes != nil {
				req.OnBytes(p.Offset, req.Size)
			}
		}
		if rerr == io.EOF || rerr == io.ErrUnexpectedEOF {
			break
		}
		if rerr != nil {
			return "", fmt.Errorf("GET %s after %d bytes: %w", httpget.Redact(req.URL), p.Offset, rerr)
		}
	}
	sum := hex.EncodeToString(h.Sum(nil))
	if (req.SHA256 != "" && sum != req.SHA256) || (req.Size >= 0 && p.Offset != req.Size) || len(p.Parts) == 0 {
		// Never complete: the object must not appear with wrong bytes.
		req.S3.AbortMultipartUpload(ctx, &s3.AbortMultipartUploadInput{Bucket: &req.Bucket, Key: &req.Key, UploadId: &p.UploadID})
		got := *p
		*p = Progress{}
		req.Save(*p)
		return "", fmt.Errorf("s3://%s/%s: %w: got sha256 %s (%d bytes), want %s (%d bytes); upload aborted", req.Bucket, req.Key, ErrChecksum, sum, got.Offset, orNone(req.SHA256), req.Size)
	}
	parts := make([]types.CompletedPart, len(p.Parts))
	for i, pt := range p.Parts {
		parts[i] = types.CompletedPart{PartNumber: aws.Int32(pt.N), ETag: aws.String(pt.ETag)}
	}
	if _, err := req.S3.CompleteMultipartUpload(ctx, &s3.CompleteMultipartUploadInput{Bucket: &req.Bucket, Key: &req.Key, UploadId: &p.UploadID,
		MultipartUpload: &types.CompletedMultipartUpload{Parts: parts}}); err != nil {
		if isNoSuchUpload(err) {
			*p = Progress{}
			req.Save(*p)
		}
		return "", fmt.Errorf("complete s3://%s/%s: %w", req.Bucket, req.Key, err)
	}
	return sum, nil
}

func orNone(s string) string {
	if s == "" {
		return "(no digest)"
	}
	return s
}

// open GETs the source from offset (Range), checking the server honours it.
func open(ctx context.Context, req *Request, offset int64) (io.ReadCloser, error) {
	hr, err := http.NewRequestWithContext(ctx, http.MethodGet, req.URL, nil)
	if err != nil {
		return nil, retry.Permanent(err)
	}
	for k, vs := range req.Header {
		hr.Header[k] = vs
	}
	hr.Header.Set("Accept-Encoding", "identity")
	if offset > 0 {
		hr.Header.Set("Range", "bytes="+strconv.FormatInt(offset, 10)+"-")
	}
	resp, err := httpget.OriginOnly(req.HTTP).Do(hr)
	if err != nil {
		return nil, fmt.Errorf("GET %s: %w", httpget.Redact(req.URL), err)
	}
	switch {
	case resp.StatusCode == http.StatusPartialContent && offset > 0:
		if !strings.HasPrefix(resp.Header.Get("Content-Range"), "bytes "+strconv.FormatInt(offset, 10)+"-") {
			resp.Body.Close()
			return nil, fmt.Errorf("GET %s: Content-Range %q for offset %d", httpget.Redact(req.URL), resp.Header.Get("Content-Range"), offset)
		}
		return resp.Body, nil
	case resp.StatusCode == http.StatusOK:
		if offset > 0 {
			// Range ignored: skip what is uploaded already (the hash
			// state covers it).
			if _, err := io.CopyN(io.Discard, resp.Body, offset); err != nil {
				resp.Body.Close()
				return nil, fmt.Errorf("GET %s: %w", httpget.Redact(req.URL), err)
			}
		}
		return resp.Body, nil
	default:
		resp.Body.Close()
		var err error = &httpget.StatusError{URL: httpget.Redact(req.URL), Status: resp.Status, Code: resp.StatusCode}
		if d, ok := httpget.RetryAfter(resp.Header); ok {
			err = retry.After(err, d)
		}
		return nil, err
	}
}

func isNoSuchUpload(err error) bool {
	var nsu *types.NoSuchUpload
	return errors.As(err, &nsu) || strings.Contains(err.Error(), "NoSuchUpload")
}

// Abort aborts one multipart upload; one that no longer exists is not an
// error.
func Abort(ctx context.Context, c *s3.Client, bucket, key, uploadID string) error {
	_, err := c.AbortMultipartUpload(ctx, &s3.AbortMultipartUploadInput{Bucket: &bucket, Key: &key, UploadId: &uploadID})
	if err != nil && isNoSuchUpload(err) {
		return nil
	}
	return err
}

// abortStale aborts the key's multipart uploads other than keep.
func abortStale(ctx context.Context, req Request, keep string) {
	out, err := req.S3.ListMultipartUploads(ctx, &s3.ListMultipartUploadsInput{Bucket: &req.Bucket, Prefix: &req.Key})
	if err != nil {
		return
	}
	for _, u := range out.Uploads {
		if aws.ToString(u.Key) == req.Key && aws.ToString(u.UploadId) != keep {
			req.S3.AbortMultipartUpload(ctx, &s3.AbortMultipartUploadInput{Bucket: &req.Bucket, Key: &req.Key, UploadId: u.UploadId})
		}
	}
}

// PutSmall writes a small object (the manifest) in one request.
func PutSmall(ctx context.Context, c *s3.Client, bucket, key string, body []byte, contentType string) error {
	_, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: &bucket, Key: &key, Body: bytes.NewReader(body), ContentLength: aws.Int64(int64(len(body))), ContentType: &contentType})
	return err
}

// Head says whether an object exists, with its size.
func Head(ctx context.Context, c *s3.Client, bucket, key string) (bool, int64, error) {
	out, err := c.HeadObject(ctx, &s3.HeadObjectInput{Bucket: &bucket, Key: &key})
	if err != nil {
		var nf *types.NotFound
		if errors.As(err, &nf) || strings.Contains(err.Error(), "NotFound") || strings.Contains(err.Error(), "404") {
			return false, 0, nil
		}
		return false, 0, err
	}
	return true, aws.ToInt64(out.ContentLength), nil
}

// CheckBucket says whether the bucket can be reached with the credentials,
// and if not, why in words a user can act on.
func CheckBucket(ctx context.Context, c *s3.Client, bucket string) error {
	if _, err := c.HeadBucket(ctx, &s3.HeadBucketInput{Bucket: &bucket}); err != nil {
		return fmt.Errorf("bucket %q: %w", bucket, explainBucketError(err))
	}
	return nil
}

// Explain says what an S3 call's failure means (see explainBucketError),
// also for objects: a missing bucket or key by its error code.
func Explain(err error) error {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		switch ae.ErrorCode() {
		case "NoSuchBucket":
			return errors.New("the bucket does not exist at this endpoint: check the name and --s3-endpoint / AWS_ENDPOINT_URL")
		case "NoSuchKey":
			return errors.New("no such object in the bucket")
		}
	}
	return explainBucketError(err)
}

// explainBucketError turns HeadBucket's failures into what they mean (the
// SDK's text — "https response error StatusCode: 404, RequestID: , ..." —
// says little): a missing bucket, denied access, another region, no
// credentials. Other errors pass through.
func explainBucketError(err error) error {
	var re *awshttp.ResponseError
	if errors.As(err, &re) {
		switch re.HTTPStatusCode() {
		case http.StatusNotFound:
			return errors.New("does not exist at this endpoint (HTTP 404): create it, or check the name and snapshot.s3.endpoint / AWS_ENDPOINT_URL")
		case http.StatusForbidden:
			return errors.New("access denied (HTTP 403): the credentials found (AWS_ACCESS_KEY_ID, AWS_PROFILE, a role) may not use this bucket")
		case http.StatusMovedPermanently:
			return errors.New("is in another region (HTTP 301): set snapshot.s3.region or AWS_REGION to the bucket's region")
		}
	}
	if strings.Contains(err.Error(), "get credentials") {
		return fmt.Errorf("no AWS credentials found: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or AWS_PROFILE, or run with an instance or pod role (%w)", err)
	}
	return err
}
