// Package restore is the stage that restores the verified snapshot into
// one restore: target (another Qdrant): a local file is uploaded over REST
// (multipart, streamed, with the checksum so the target verifies it); an
// S3 object is recovered by the target from a presigned URL. Then the
// target collection's exact point count must equal the source's. The
// checkpoint records a finished target: a re-apply restores nothing twice.
package restore

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/snappipe/snappipe/internal/httpget"
	"github.com/snappipe/snappipe/internal/retry"
	"github.com/snappipe/snappipe/internal/s3up"
	"github.com/snappipe/snappipe/pipeline"
	"github.com/snappipe/snappipe/pipeline/config"
)

// Kind is the stage kind.
const Kind = pipeline.KindRestore

// Ports: restore reads the fetched snapshot.
var Ports = pipeline.Ports{Consumes: []string{pipeline.MsgSnapshotFile}}

// Restore restores into one target.
type Restore struct {
	rt     *pipeline.Runtime
	node   string
	target *config.RestoreTarget
	state  pipeline.Section[pipeline.RestoreState]
}

// New is the stage factory.
func New(n *pipeline.Node, rt *pipeline.Runtime) (pipeline.Stage, error) {
	if n.Target < 0 || n.Target >= len(rt.Config.Restore) {
		return nil, fmt.Errorf("no restore target %d", n.Target)
	}
	sec, err := pipeline.RestoreSection(rt, n)
	if err != nil {
		return nil, err
	}
	return &Restore{rt: rt, node: n.ID, target: rt.Config.Restore[n.Target], state: sec}, nil
}

// Describe names the target for plan, status and the checkpoint: the URL
// redacted, and the collection.
func (r *Restore) Describe() []string {
	st := r.state.Get()
	if st.Done {
		return []string{fmt.Sprintf("  %-10s done: %s (%d points)", r.node, r.targetName(), st.Points)}
	}
	return []string{fmt.Sprintf("  %-10s pending: %s", r.node, r.targetName())}
}

// Plan says what apply would do.
func (r *Restore) Plan(ctx context.Context, pc *pipeline.PlanContext) error {
	if r.state.Get().Done {
		return nil
	}
	pc.Action("restore the snapshot into %s (priority %s) and check its exact point count", r.targetName(), r.target.Priority)
	return nil
}

func (r *Restore) targetName() string {
	return fmt.Sprintf("%s collection %q", httpget.Redact(r.target.URL), r.target.Collection)
}

// Run restores and verifies.
func (r *Restore) Run(ctx context.Context, sio pipeline.StageIO) error {
	in, err := sio.Input()
	if err != nil {
		return err
	}
	snap, ok, err := pipeline.Receive[*pipeline.SnapshotFile](ctx, sio, in)
	if err != nil {
		return err
	}
	if !ok {
		return fmt.Errorf("internal: %s ended without a snapshot file", in)
	}
	name := r.targetName()
	if st := r.state.Get(); st.Done && st.SHA256 == snap.SHA256 && st.Target == name {
		return nil
	}
	c := r.rt.Config
	pol := retry.Policy{MaxAttempts: c.Upload.MaxAttempts, MaxElapsed: c.Upload.MaxElapsed.D(),
		Notify: func(attempt int, err error, wait time.Duration) {
			r.rt.Log.Warn("restore failed; retrying", "target", name, "attempt", attempt, "in", wait.Round(time.Millisecond), "err", err)
		}}
	err = retry.Do(ctx, pol, func(int) error {
		if snap.Path != "" {
			return httpget.Classify(r.upload(ctx, snap))
		}
		return httpget.Classify(r.recoverFromS3(ctx, snap))
	})
	if err != nil {
		return fmt.Errorf("restore into %s: %w", name, err)
	}
	n, err := r.count(ctx)
	if err != nil {
		return fmt.Errorf("restore into %s: count: %w", name, err)
	}
	if n != snap.Points {
		return fmt.Errorf("restore into %s: the collection holds %d points, the snapshot %d", name, n, snap.Points)
	}
	r.rt.Log.Info("restored", "target", name, "points", n)
	return r.state.Update(func(s *pipeline.RestoreState) {
		*s = pipeline.RestoreState{Target: name, SHA256: snap.SHA256, Points: n, Done: true}
	})
}

func (r *Restore) base() string { return strings.TrimRight(r.target.URL, "/") }

func (r *Restore) header(h http.Header) {
	if k := r.target.APIKey.Reveal(); k != "" {
		h.Set("api-key", k)
	}
}

// upload streams the file as multipart/form-data to
// POST /collections/{c}/snapshots/upload?priority=&checksum= (never held
// in memory).
func (r *Restore) upload(ctx context.Context, snap *pipeline.SnapshotFile) error {
	f, err := os.Open(snap.Path)
	if err != nil {
		return retry.Permanent(err)
	}
	defer f.Close()
	pr, pw := io.Pipe()
	mw := multipart.NewWriter(pw)
	go func() {
		part, err := mw.CreateFormFile("snapshot", snap.Name)
		if err == nil {
			_, err = io.Copy(part, f)
		}
		if err == nil {
			err = mw.Close()
		}
		pw.CloseWithError(err)
	}()
	q := url.Values{"priority": {r.target.Priority}, "wait": {"true"}}
	if snap.SHA256 != "" {
		q.Set("checksum", snap.SHA256)
	}
	u := r.base() + "/collections/" + url.PathEscape(r.target.Collection) + "/snapshots/upload?" + q.Encode()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, pr)
	if err != nil {
		return retry.Permanent(err)
	}
	req.Header.Set("Content-Type", mw.FormDataContentType())
	r.header(req.Header)
	return r.do(req)
}

// recoverFromS3 has the target fetch the object through a presigned URL
// (valid one hour) with PUT /collections/{c}/snapshots/recover.
func (r *Restore) recoverFromS3(ctx context.Context, snap *pipeline.SnapshotFile) error {
	o := r.rt.Config.Snapshot.S3
	client, err := s3up.Client(ctx, s3up.Options{Endpoint: o.Endpoint, Region: o.Region, ForcePathStyle: o.ForcePathStyle})
	if err != nil {
		return retry.Permanent(err)
	}
	ps, err := s3.NewPresignClient(client).PresignGetObject(ctx, &s3.GetObjectInput{Bucket: &snap.Bucket, Key: &snap.Key}, s3.WithPresignExpires(time.Hour))
	if err != nil {
		return retry.Permanent(fmt.Errorf("presign s3://%s/%s: %w", snap.Bucket, snap.Key, err))
	}
	body := map[string]any{"location": ps.URL, "priority": r.target.Priority}
	if snap.SHA256 != "" {
		body["checksum"] = snap.SHA256
	}
	b, _ := json.Marshal(body)
	u := r.base() + "/collections/" + url.PathEscape(r.target.Collection) + "/snapshots/recover?wait=true"
	req, err := http.NewRequestWithContext(ctx, http.MethodPut, u, strings.NewReader(string(b)))
	if err != nil {
		return retry.Permanent(err)
	}
	req.Header.Set("Content-Type", "application/json")
	r.header(req.Header)
	return r.do(req)
}

// do sends a request to the target and reads Qdrant's answer.
func (r *Restore) do(req *http.Request) error {
	resp, err := httpget.OriginOnly(r.rt.HTTP).Do(req)
	if err != nil {
		return fmt.Errorf("%s %s: %w", req.Method, httpget.Redact(req.URL.String()), err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode/100 == 2 {
		return nil
	}
	var qe struct {
		Status struct {
			Error string `json:"error"`
		} `json:"status"`
	}
	msg := strings.TrimSpace(string(b))
	if json.Unmarshal(b, &qe) == nil && qe.Status.Error != "" {
		msg = qe.Status.Error
	}
	var e error = &httpget.StatusError{URL: httpget.Redact(req.URL.String()), Status: resp.Status + ": " + msg, Code: resp.StatusCode}
	if d, ok := httpget.RetryAfter(resp.Header); ok {
		e = retry.After(e, d)
	}
	return e
}

// count asks the target for the collection's exact point count.
func (r *Restore) count(ctx context.Context) (int64, error) {
	u := r.base() + "/collections/" + url.PathEscape(r.target.Collection) + "/points/count"
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, strings.NewReader(`{"exact":true}`))
	if err != nil {
		return 0, err
	}
	req.Header.Set("Content-Type", "application/json")
	r.header(req.Header)
	resp, err := httpget.OriginOnly(r.rt.HTTP).Do(req)
	if err != nil {
		return 0, fmt.Errorf("POST %s: %w", httpget.Redact(u), err)
	}
	defer resp.Body.Close()
	var out struct {
		Result struct {
			Count int64 `json:"count"`
		} `json:"result"`
	}
	if resp.StatusCode != http.StatusOK {
		return 0, &httpget.StatusError{URL: httpget.Redact(u), Status: resp.Status, Code: resp.StatusCode}
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&out); err != nil {
		return 0, err
	}
	return out.Result.Count, nil
}

var _ pipeline.Stage = (*Restore)(nil)
