package fetch

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/snappipe/snappipe/internal/s3up"
	"github.com/snappipe/snappipe/pipeline"
)

// s3Client builds the client for the configured store.
func (f *Fetch) s3Client(ctx context.Context) (*s3.Client, error) {
	o := f.rt.Config.Snapshot.S3
	return s3up.Client(ctx, s3up.Options{Endpoint: o.Endpoint, Region: o.Region, ForcePathStyle: o.ForcePathStyle})
}

// runS3 streams the snapshot from Qdrant into a multipart upload, checks
// its SHA-256 against the server's checksum before completing it (so the
// object never appears with wrong bytes), then writes the manifest object
// beside it. Progress is checkpointed after every part: a rerun resumes
// the same upload; stale uploads of the key are aborted.
func (f *Fetch) runS3(ctx context.Context, snap *pipeline.SnapshotReady) error {
	c := f.rt.Config
	bucket, prefix := c.Snapshot.S3Location()
	key := prefix + snap.Name
	target := f.target(snap.Name)
	client, err := f.s3Client(ctx)
	if err != nil {
		return err
	}
	st := f.state.Get()
	if err := f.abortAbandoned(ctx, client, st, target); err != nil {
		return err
	}
	st = f.state.Get()
	if st.Done && st.Path == target {
		if ok, size, err := s3up.Head(ctx, client, bucket, key); err == nil && ok {
			if mok, _, _ := s3up.Head(ctx, client, bucket, key+".json"); !mok {
				if err := f.putManifest(ctx, client, bucket, key, snap.Name, size, st.SHA256); err != nil {
					return err
				}
			}
			f.doneAt(target, snap, size, st.SHA256)
			return nil
		}
	}
	var progress s3up.Progress
	if st.Path == target && st.Upload != nil {
		progress = *st.Upload
	}
	u := strings.TrimRight(f.rt.RESTBase, "/") + "/collections/" + url.PathEscape(c.Collection.Name) + "/snapshots/" + url.PathEscape(snap.Name)
	hdr := http.Header{}
	if k := c.Qdrant.APIKey.Reveal(); k != "" {
		hdr.Set("api-key", k)
	}
	size := snap.Size
	if size <= 0 {
		size = -1
	}
	sum, err := s3up.Upload(ctx, s3up.Request{
		S3: client, Bucket: bucket, Key: key, URL: u, Header: hdr, HTTP: f.rt.HTTP,
		Size: size, SHA256: strings.ToLower(snap.Checksum), PartSize: int64(c.Snapshot.S3.PartSize) << 20,
		MaxAttempts: c.Upload.MaxAttempts, Progress: progress,
		Save: func(p s3up.Progress) error {
			return f.state.Update(func(s *pipeline.FetchState) {
				*s = pipeline.FetchState{Path: target, Upload: &p}
			})
		},
		OnBytes: func(done, total int64) { f.rt.Events.Progress(f.node, done, total, "bytes") },
	})
	if err != nil {
		return fmt.Errorf("upload snapshot %s: %w", snap.Name, err)
	}
	if snap.Checksum == "" {
		f.rt.Log.Warn("server gave no checksum; verified size only", "snapshot", snap.Name)
	}
	ok, stored, err := s3up.Head(ctx, client, bucket, key)
	if err != nil || !ok {
		return fmt.Errorf("the uploaded snapshot %s is not there: %v", target, err)
	}
	if err := f.putManifest(ctx, client, bucket, key, snap.Name, stored, sum); err != nil {
		return err
	}
	if err := f.state.Update(func(s *pipeline.FetchState) { *s = pipeline.FetchState{Path: target, SHA256: sum, Done: true} }); err != nil {
		return err
	}
	f.rt.Log.Info("snapshot uploaded", "object", target, "bytes", stored, "sha256", sum)
	f.doneAt(target, snap, stored, sum)
	return nil
}

// abortAbandoned aborts the multipart uploads the checkpoint gave up
// (FetchState.Abandoned), and one in progress for another object than
// target (the snapshot changed), then forgets them. One that cannot be
// aborted (gone already, another bucket these credentials cannot reach)
// is logged with its id, for a lifecycle rule or a manual abort.
func (f *Fetch) abortAbandoned(ctx context.Context, client *s3.Client, st pipeline.FetchState, target string) error {
	gone := st.Abandoned
	if st.Path != target {
		gone = st.Abandon()
	}
	if len(gone) == 0 {
		return nil
	}
	for _, a := range gone {
		bucket, key, ok := strings.Cut(strings.TrimPrefix(a.Path, "s3://"), "/")
		if !ok {
			continue
		}
		if err := s3up.Abort(ctx, client, bucket, key, a.UploadID); err != nil {
			f.rt.Log.Warn("could not abort an abandoned multipart upload; a bucket lifecycle rule or `aws s3api abort-multipart-upload` removes it",
				"object", a.Path, "upload_id", a.UploadID, "error", err)
			continue
		}
		f.rt.Log.Info("aborted the multipart upload of a snapshot this checkpoint gave up", "object", a.Path)
	}
	return f.state.Update(func(s *pipeline.FetchState) {
		s.Abandoned = nil
		if s.Path != target {
			s.Upload = nil
		}
	})
}

func (f *Fetch) putManifest(ctx context.Context, client *s3.Client, bucket, key, name string, size int64, sum string) error {
	b, err := json.MarshalIndent(f.rt.BuildManifest(name, size, sum), "", "  ")
	if err != nil {
		return err
	}
	if err := s3up.PutSmall(ctx, client, bucket, key+".json", append(b, '\n'), "application/json"); err != nil {
		return fmt.Errorf("write the manifest s3://%s/%s.json: %w", bucket, key, err)
	}
	return nil
}

func (f *Fetch) doneAt(target string, snap *pipeline.SnapshotReady, size int64, sum string) {
	bucket, prefix := f.rt.Config.Snapshot.S3Location()
	f.result = &pipeline.SnapshotFile{Name: snap.Name, Bucket: bucket, Key: prefix + snap.Name, Size: size, SHA256: sum, Points: f.points()}
	f.rt.UpdateSummary(func(s *pipeline.Summary) {
		s.SnapshotName, s.SnapshotPath, s.SnapshotSize, s.SnapshotSHA256 = snap.Name, target, size, sum
	})
}

// checkBucket is the S3 preflight: the bucket answers with these
// credentials.
func (f *Fetch) checkBucket(ctx context.Context) error {
	client, err := f.s3Client(ctx)
	if err != nil {
		return err
	}
	bucket, _ := f.rt.Config.Snapshot.S3Location()
	return s3up.CheckBucket(ctx, client, bucket)
}
