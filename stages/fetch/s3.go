package fetch

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strings"

	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/snappipe/snappipe/internal/s3up"
	"github.com/snappipe/snappipe/pipeline"
)

// s3Client builds the client for the configured store.
func (f *Fetch) s3Client(ctx context.Context) (*s3.Client, error) {
	return s3up.Client(ctx, f.store())
}

// store is the configured S3 store.
func (f *Fetch) store() s3up.Options {
	o := f.rt.Config.Snapshot.S3
	return s3up.OptionsOf(o)
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
	if err := f.abortLeft(ctx, client, st.LeftFor(target)); err != nil {
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
				*s = pipeline.FetchState{Path: target, Upload: &p, Store: RecordedStore(f.store())}
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

// abortLeft aborts multipart uploads the checkpoint no longer needs:
// those it gave up (FetchState.Abandoned) and one in progress for
// another object than the one this run uploads (the snapshot or the
// destination changed), then forgets them (see AbortUploads). current is
// the configured store's client, nil when the destination is not S3.
func (f *Fetch) abortLeft(ctx context.Context, current *s3.Client, gone []pipeline.AbandonedUpload) error {
	if len(gone) == 0 {
		return nil
	}
	AbortUploads(ctx, f.rt.Log, current, f.store(), gone)
	return f.state.Update(func(s *pipeline.FetchState) {
		s.Abandoned = nil
		if s.Upload != nil && slices.ContainsFunc(gone, func(a pipeline.AbandonedUpload) bool { return a.UploadID == s.Upload.UploadID }) {
			s.Upload, s.Store = nil, nil
		}
	})
}

// AbortUploads aborts multipart uploads a checkpoint no longer needs,
// each in the store it was started in: current (the client of the
// configured store, whose options are store; nil when the destination is
// not S3), or one built from the store the checkpoint recorded beside
// the upload. One that cannot be aborted (gone already, no credentials
// for that store, its store unknown) is logged with the command that
// aborts it, for a lifecycle rule or a manual abort.
func AbortUploads(ctx context.Context, log *slog.Logger, current *s3.Client, store s3up.Options, gone []pipeline.AbandonedUpload) {
	clients := map[s3up.Options]*s3.Client{}
	if current != nil {
		clients[store] = current
	}
	for _, a := range gone {
		bucket, key, ok := strings.Cut(strings.TrimPrefix(a.Path, "s3://"), "/")
		if !ok {
			continue
		}
		var err error
		where := a.Store
		if where == nil && current != nil {
			where = &store // recorded before stores were: the configured one
		}
		var client *s3.Client
		if where == nil {
			err = fmt.Errorf("the checkpoint does not record which S3 store it is in, and the destination is no longer S3")
		} else if client = clients[*where]; client == nil {
			if client, err = s3up.Client(ctx, *where); err == nil {
				clients[*where] = client
			}
		}
		if err == nil {
			err = s3up.Abort(ctx, client, bucket, key, a.UploadID)
		}
		if err != nil {
			cmd := fmt.Sprintf("aws s3api abort-multipart-upload --bucket %s --key %s --upload-id %s", bucket, key, a.UploadID)
			if where != nil && where.Endpoint != "" {
				cmd += " --endpoint-url " + where.Endpoint
			}
			log.Warn("could not abort a multipart upload this checkpoint no longer needs; a bucket lifecycle rule or this command removes it",
				"object", a.Path, "upload_id", a.UploadID, "command", cmd, "error", err)
			continue
		}
		log.Info("aborted a multipart upload this checkpoint no longer needs", "object", a.Path)
	}
}

// RecordedStore is store as a checkpoint records it beside an upload, or
// nil when its endpoint carries credentials (never written to a state).
func RecordedStore(store s3up.Options) *s3up.Options {
	if u, err := url.Parse(store.Endpoint); err != nil || u.User != nil {
		return nil
	}
	return &store
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
