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
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/snappipe/snappipe/internal/httpget"
	"github.com/snappipe/snappipe/internal/qrestore"
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
	if st := r.state.Get(); r.restored(st) {
		return []string{fmt.Sprintf("  %-10s done: %s (%d points)", r.node, r.targetName(), st.Points)}
	}
	return []string{fmt.Sprintf("  %-10s pending: %s", r.node, r.targetName())}
}

// Plan says what apply would do.
func (r *Restore) Plan(ctx context.Context, pc *pipeline.PlanContext) error {
	if r.restored(r.state.Get()) {
		return nil
	}
	// Recovering replaces the target collection: say so when it holds
	// points (a target that cannot be asked now is left to apply).
	note := ""
	if n, err := r.tgt().Count(ctx); err == nil && n > 0 {
		note = fmt.Sprintf("; it holds %d points now, which the restore replaces", n)
	}
	pc.Action("restore the snapshot into %s (priority %s) and check its exact point count%s", r.targetName(), r.target.Priority, note)
	return nil
}

// restored: the checkpoint's restore went to the target the config names
// now (a target edited since, another collection or server, is pending).
func (r *Restore) restored(st pipeline.RestoreState) bool {
	return st.Done && st.Target == r.targetName()
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
	id := snap.SHA256 // what the snapshot is: its digest, or a cluster manifest's name
	if snap.Cluster {
		id = snap.Name
	}
	if st := r.state.Get(); st.Done && st.SHA256 == id && st.Target == name {
		return nil
	}
	c := r.rt.Config
	pol := retry.Policy{MaxAttempts: c.Upload.MaxAttempts, MaxElapsed: c.Upload.MaxElapsed.D(),
		Notify: func(attempt int, err error, wait time.Duration) {
			r.rt.Log.Warn("restore failed; retrying", "target", name, "attempt", attempt, "in", wait.Round(time.Millisecond), "err", err)
		}}
	tgt := r.tgt()
	if snap.Cluster {
		return r.runCluster(ctx, snap, tgt, name)
	}
	err = retry.Do(ctx, pol, func(int) error {
		if snap.Path != "" {
			return httpget.Classify(tgt.Upload(ctx, snap.Path, snap.Name, snap.SHA256))
		}
		loc, err := r.presign(ctx, snap)
		if err != nil {
			return retry.Permanent(err)
		}
		return httpget.Classify(tgt.Recover(ctx, loc, snap.SHA256))
	})
	if err != nil {
		return fmt.Errorf("restore into %s: %w", name, err)
	}
	n, err := tgt.Count(ctx)
	if err != nil {
		return fmt.Errorf("restore into %s: count: %w", name, err)
	}
	if n != snap.Points {
		return fmt.Errorf("restore into %s: the collection holds %d points, the snapshot %d", name, n, snap.Points)
	}
	r.rt.Log.Info("restored", "target", name, "points", n)
	if a := r.target.Alias; a != "" {
		if err := r.switchAlias(ctx, tgt, a); err != nil {
			return fmt.Errorf("restore into %s: %w", name, err)
		}
	}
	return r.state.Update(func(s *pipeline.RestoreState) {
		*s = pipeline.RestoreState{Target: name, SHA256: snap.SHA256, Points: n, Done: true}
	})
}

// switchAlias points the alias at the verified collection, then (unless
// keep_previous) drops the collection it pointed at before.
func (r *Restore) switchAlias(ctx context.Context, tgt qrestore.Target, alias string) error {
	before, err := tgt.Aliases(ctx)
	if err != nil {
		return fmt.Errorf("list aliases: %w", err)
	}
	prev := before[alias]
	if err := tgt.SwitchAlias(ctx, alias); err != nil {
		return fmt.Errorf("switch alias %q to %q: %w", alias, r.target.Collection, err)
	}
	r.rt.Log.Info("alias switched", "alias", alias, "from", prev, "to", r.target.Collection)
	keep := r.target.KeepPrevious == nil || *r.target.KeepPrevious
	if prev != "" && prev != r.target.Collection && !keep {
		if err := tgt.DeleteCollection(ctx, prev); err != nil {
			return fmt.Errorf("alias switched; deleting the previous collection %q failed: %w", prev, err)
		}
		r.rt.Log.Info("previous collection deleted", "collection", prev)
	}
	return nil
}

// runCluster restores a cluster manifest onto the target cluster.
func (r *Restore) runCluster(ctx context.Context, snap *pipeline.SnapshotFile, tgt qrestore.Target, name string) error {
	var b []byte
	var err error
	files := ClusterFiles{Dir: filepath.Dir(snap.Path)}
	if snap.Path != "" {
		b, err = os.ReadFile(snap.Path)
	} else {
		o := r.rt.Config.Snapshot.S3
		if files.S3, err = s3up.Client(ctx, s3up.OptionsOf(o)); err != nil {
			return err
		}
		files.Bucket = snap.Bucket
		if i := strings.LastIndex(snap.Key, "/"); i >= 0 {
			files.Prefix = snap.Key[:i+1]
		}
		obj, gerr := files.S3.GetObject(ctx, &s3.GetObjectInput{Bucket: &snap.Bucket, Key: &snap.Key})
		if gerr != nil {
			return gerr
		}
		b, err = io.ReadAll(io.LimitReader(obj.Body, 64<<20))
		obj.Body.Close()
	}
	if err != nil {
		return fmt.Errorf("restore into %s: read the cluster manifest: %w", name, err)
	}
	var m pipeline.ClusterManifest
	if err := json.Unmarshal(b, &m); err != nil {
		return fmt.Errorf("restore into %s: %w", name, err)
	}
	n, err := RestoreCluster(ctx, tgt, &m, files, r.target.Peers, r.target.GRPCPort)
	if err != nil {
		return fmt.Errorf("restore into %s: %w", name, err)
	}
	if n != snap.Points {
		return fmt.Errorf("restore into %s: the collection holds %d points, the snapshot %d", name, n, snap.Points)
	}
	if a := r.target.Alias; a != "" {
		if err := r.switchAlias(ctx, tgt, a); err != nil {
			return fmt.Errorf("restore into %s: %w", name, err)
		}
	}
	r.rt.Log.Info("cluster restored", "target", name, "points", n, "shards", len(m.Shards))
	return r.state.Update(func(s *pipeline.RestoreState) {
		*s = pipeline.RestoreState{Target: name, SHA256: snap.Name, Points: n, Done: true}
	})
}

func (r *Restore) tgt() qrestore.Target {
	return qrestore.Target{URL: r.target.URL, APIKey: r.target.APIKey.Reveal(), Collection: r.target.Collection, Priority: r.target.Priority, HTTP: r.rt.HTTP,
		Progress: func(done, total int64) { r.rt.Events.Progress(r.node, done, total, "bytes") }}
}

// presign gives the target a one-hour URL of the S3 object.
func (r *Restore) presign(ctx context.Context, snap *pipeline.SnapshotFile) (string, error) {
	o := r.rt.Config.Snapshot.S3
	client, err := s3up.Client(ctx, s3up.OptionsOf(o))
	if err != nil {
		return "", err
	}
	ps, err := s3.NewPresignClient(client).PresignGetObject(ctx, &s3.GetObjectInput{Bucket: &snap.Bucket, Key: &snap.Key}, s3.WithPresignExpires(time.Hour))
	if err != nil {
		return "", fmt.Errorf("presign s3://%s/%s: %w", snap.Bucket, snap.Key, err)
	}
	return ps.URL, nil
}

var _ pipeline.Stage = (*Restore)(nil)
