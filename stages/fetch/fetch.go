// Package fetch is the stage that downloads the snapshot over REST,
// resumably, verifies its SHA-256 against the server's checksum, and renames
// it into the destination directory only when verified.
package fetch

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/snappipe/snappipe/internal/httpget"
	"github.com/snappipe/snappipe/pipeline"
)

// Kind is the stage kind.
const Kind = pipeline.KindFetch

// Ports are the messages this stage kind consumes and emits.
var Ports = pipeline.Ports{Consumes: []string{pipeline.MsgSnapshot}, Emits: []string{pipeline.MsgSnapshotFile}}

// Fetch downloads the snapshot.
type Fetch struct {
	rt     *pipeline.Runtime
	node   string
	state  pipeline.Section[pipeline.FetchState]
	result *pipeline.SnapshotFile
}

func (f *Fetch) points() int64 { return f.rt.LoadedPoints() }

// New is the stage factory.
func New(n *pipeline.Node, rt *pipeline.Runtime) (pipeline.Stage, error) {
	sec, err := pipeline.FetchSection(rt, n)
	if err != nil {
		return nil, err
	}
	return &Fetch{rt: rt, node: n.ID, state: sec}, nil
}

// ManifestPath is the manifest beside a snapshot file: NAME.json.
func ManifestPath(snapshot string) string { return snapshot + ".json" }

// SafeName refuses server-supplied names that would leave the directory.
func SafeName(name string) error {
	if name == "" || name == "." || name == ".." || strings.ContainsAny(name, "/\\\x00") || filepath.Base(name) != name {
		return fmt.Errorf("refusing snapshot name %q from the server: it would leave the destination directory", name)
	}
	return nil
}

// Run waits for SnapshotReady and writes the verified file.
func (f *Fetch) Run(ctx context.Context, sio pipeline.StageIO) error {
	in, err := sio.Input()
	if err != nil {
		return err
	}
	snap, ok, err := pipeline.Receive[*pipeline.SnapshotReady](ctx, sio, in)
	if err != nil {
		return err
	}
	if !ok {
		return fmt.Errorf("internal: %s ended without a snapshot", in)
	}
	if err := SafeName(snap.Name); err != nil {
		return err
	}
	var err2 error
	if f.rt.Config.Snapshot.IsS3() {
		err2 = f.runS3(ctx, snap)
	} else {
		err2 = f.runLocal(ctx, snap)
	}
	if err2 != nil {
		return err2
	}
	f.retain(ctx, snap.Name)
	return sio.Emit(ctx, f.result)
}

// runLocal writes the verified snapshot (and its manifest) into the
// destination directory.
func (f *Fetch) runLocal(ctx context.Context, snap *pipeline.SnapshotReady) error {
	dir := f.rt.Config.Resolve(f.rt.Config.Snapshot.Destination)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	dest := f.target(snap.Name)
	st := f.state.Get()
	// Uploads to S3 that the checkpoint started (the destination was S3)
	// or gave up are aborted where they are.
	if err := f.abortLeft(ctx, nil, st.Abandon()); err != nil {
		return err
	}
	st = f.state.Get()
	if st.Done && st.Path == dest {
		if sum, _, err := httpget.HashFile(dest); err == nil && sum == st.SHA256 {
			if _, err := os.Stat(ManifestPath(dest)); err != nil {
				fi, _ := os.Stat(dest)
				if err := pipeline.WriteManifest(ManifestPath(dest), f.rt.BuildManifest(snap.Name, fi.Size(), sum)); err != nil {
					return fmt.Errorf("write the manifest: %w", err)
				}
			}
			f.done(dest, snap, sum)
			return nil
		}
	}
	c := f.rt.Config
	u := strings.TrimRight(f.rt.RESTBase, "/") + "/collections/" + url.PathEscape(c.Collection.Name) + "/snapshots/" + url.PathEscape(snap.Name)
	hdr := http.Header{}
	if k := c.Qdrant.APIKey.Reveal(); k != "" {
		hdr.Set("api-key", k)
	}
	res, err := httpget.Get(ctx, f.rt.HTTP, httpget.Request{
		URL: u, Header: hdr, Dest: dest, SHA256: strings.ToLower(snap.Checksum), Size: snap.Size,
		MaxAttempts: c.Upload.MaxAttempts, MaxElapsed: c.Upload.MaxElapsed.D(), IdleTimeout: c.Download.IdleTimeout.D(),
		OnRetry: func(attempt int, err error, wait time.Duration) {
			f.rt.Log.Warn("snapshot download failed; retrying", "snapshot", snap.Name, "attempt", attempt, "in", wait.Round(time.Millisecond), "err", err)
		},
		Progress: func(done, total int64) { f.rt.Events.Progress(f.node, done, total, "bytes") },
	})
	f.rt.AddFetched(res.Fetched)
	if err != nil {
		return fmt.Errorf("fetch snapshot %s: %w", snap.Name, err)
	}
	if snap.Checksum == "" {
		f.rt.Log.Warn("server gave no checksum; verified size only", "snapshot", snap.Name)
	}
	// The manifest is written once the snapshot is verified, before the
	// checkpoint records the fetch as done (a crash in between writes it
	// again).
	fi, err := os.Stat(dest)
	if err != nil {
		return err
	}
	if err := pipeline.WriteManifest(ManifestPath(dest), f.rt.BuildManifest(snap.Name, fi.Size(), res.SHA256)); err != nil {
		return fmt.Errorf("write the manifest: %w", err)
	}
	if err := f.state.Update(func(s *pipeline.FetchState) { *s = pipeline.FetchState{Path: dest, SHA256: res.SHA256, Done: true} }); err != nil {
		return err
	}
	f.done(dest, snap, res.SHA256)
	return nil
}

func (f *Fetch) done(dest string, snap *pipeline.SnapshotReady, sum string) {
	fi, _ := os.Stat(dest)
	var size int64
	if fi != nil {
		size = fi.Size()
	}
	f.result = &pipeline.SnapshotFile{Name: snap.Name, Path: dest, Size: size, SHA256: sum, Points: f.points()}
	f.rt.UpdateSummary(func(s *pipeline.Summary) {
		s.SnapshotName, s.SnapshotPath, s.SnapshotSize, s.SnapshotSHA256 = snap.Name, dest, size, sum
	})
}

var _ pipeline.Stage = (*Fetch)(nil)
