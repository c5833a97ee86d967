package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/spf13/cobra"

	"github.com/snappipe/snappipe/internal/httpget"
	"github.com/snappipe/snappipe/internal/qdrantconn"
	"github.com/snappipe/snappipe/internal/qrestore"
	"github.com/snappipe/snappipe/internal/s3up"
	"github.com/snappipe/snappipe/pipeline"
	"github.com/snappipe/snappipe/pipeline/config"
	"github.com/snappipe/snappipe/stages/fetch"
	"github.com/snappipe/snappipe/stages/restore"
)

func newSnapshotsCommand(g *globalOptions) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "snapshots",
		Short: "List, download, restore, delete and verify snapshots",
		Long: `Everyday operations on a pipeline's snapshots: on the Qdrant server the
pipeline loads, and at its destination (a directory or s3://BUCKET/PREFIX/).`,
	}
	cmd.AddCommand(newSnapListCommand(g), newSnapDownloadCommand(g), newSnapRestoreCommand(g), newSnapDeleteCommand(g), newSnapVerifyCommand(g))
	return cmd
}

// snapEnv is a loaded config with its Qdrant client.
type snapEnv struct {
	cfg  *config.Config
	ep   qdrantconn.Endpoint
	conn interface{ Close() error }
	list func(ctx context.Context) ([]serverSnap, error)
	del  func(ctx context.Context, name string) error
}

type serverSnap struct {
	Name     string    `json:"name"`
	Size     int64     `json:"size"`
	Checksum string    `json:"checksum"`
	Created  time.Time `json:"created"`
}

func openSnapEnv(load loadFlags, path string) (*snapEnv, error) {
	lo, err := load.options()
	if err != nil {
		return nil, err
	}
	cfg, err := config.LoadPath(path, lo)
	if err != nil {
		return nil, err
	}
	client, ep, err := qdrantconn.Connect(cfg)
	if err != nil {
		return nil, err
	}
	name := cfg.Collection.Name
	e := &snapEnv{cfg: cfg, ep: ep, conn: client}
	e.list = func(ctx context.Context) ([]serverSnap, error) {
		cctx, cancel := context.WithTimeout(ctx, cfg.Qdrant.Timeout.D())
		defer cancel()
		l, err := client.ListSnapshots(cctx, name)
		if err != nil {
			return nil, err
		}
		var out []serverSnap
		for _, s := range l {
			out = append(out, serverSnap{Name: s.GetName(), Size: s.GetSize(), Checksum: s.GetChecksum(), Created: s.GetCreationTime().AsTime()})
		}
		sort.Slice(out, func(i, j int) bool { return out[i].Created.After(out[j].Created) })
		return out, nil
	}
	e.del = func(ctx context.Context, n string) error {
		cctx, cancel := context.WithTimeout(ctx, cfg.Qdrant.Timeout.D())
		defer cancel()
		return client.DeleteSnapshot(cctx, name, n)
	}
	return e, nil
}

// destSnap is a snapshot at the destination.
type destSnap struct {
	Name     string `json:"name"`
	Location string `json:"location"`
	Size     int64  `json:"size"`
	Manifest string `json:"manifest"` // "ok", "missing", "differs: ..."
}

func s3Of(cfg *config.Config) (*s3.Client, error) {
	o := cfg.Snapshot.S3
	return s3up.Client(context.Background(), s3up.OptionsOf(o))
}

// destination lists the collection's snapshots at the destination and
// compares each with its manifest (name and size; the server's checksum
// when the server still has it).
func destination(ctx context.Context, cfg *config.Config, server map[string]serverSnap) ([]destSnap, error) {
	prefix := cfg.Collection.Name + "-"
	check := func(name string, size int64, manifest []byte, err error) string {
		if err != nil {
			return "missing"
		}
		var m pipeline.Manifest
		if json.Unmarshal(manifest, &m) != nil {
			return "unreadable"
		}
		switch {
		case m.Snapshot != name || m.Size != size:
			return fmt.Sprintf("differs (manifest: %s, %d bytes)", m.Snapshot, m.Size)
		case server[name].Checksum != "" && !strings.EqualFold(server[name].Checksum, m.SHA256):
			return "differs (sha256 is not the server's checksum)"
		}
		return "ok"
	}
	var out []destSnap
	if cfg.Snapshot.IsS3() {
		client, err := s3Of(cfg)
		if err != nil {
			return nil, err
		}
		bucket, p := cfg.Snapshot.S3Location()
		lp := p + prefix
		l, err := client.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: &bucket, Prefix: &lp})
		if err != nil {
			return nil, err
		}
		for _, o := range l.Contents {
			key := aws.ToString(o.Key)
			if !strings.HasSuffix(key, ".snapshot") {
				continue
			}
			name := strings.TrimPrefix(key, p)
			var mb []byte
			mo, err := client.GetObject(ctx, &s3.GetObjectInput{Bucket: &bucket, Key: aws.String(key + ".json")})
			if err == nil {
				mb, err = io.ReadAll(io.LimitReader(mo.Body, 1<<20))
				mo.Body.Close()
			}
			out = append(out, destSnap{Name: name, Location: "s3://" + bucket + "/" + key, Size: aws.ToInt64(o.Size), Manifest: check(name, aws.ToInt64(o.Size), mb, err)})
		}
		return out, nil
	}
	dir := cfg.Resolve(cfg.Snapshot.Destination)
	ents, err := os.ReadDir(dir)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, err
	}
	for _, en := range ents {
		if !strings.HasPrefix(en.Name(), prefix) || !strings.HasSuffix(en.Name(), ".snapshot") {
			continue
		}
		fi, err := en.Info()
		if err != nil {
			continue
		}
		p := filepath.Join(dir, en.Name())
		mb, err := os.ReadFile(p + ".json")
		out = append(out, destSnap{Name: en.Name(), Location: p, Size: fi.Size(), Manifest: check(en.Name(), fi.Size(), mb, err)})
	}
	return out, nil
}

func newSnapListCommand(g *globalOptions) *cobra.Command {
	var load loadFlags
	cmd := &cobra.Command{
		Use:   "list CONFIG",
		Short: "The pipeline's snapshots on the server and at the destination, with size, checksum and whether the manifest matches",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			e, err := openSnapEnv(load, args[0])
			if err != nil {
				return err
			}
			defer e.conn.Close()
			ctx := cmd.Context()
			// A server that cannot be asked does not hide the destination:
			// it is listed, and the command fails after it.
			srv, srvErr := e.list(ctx)
			if srvErr != nil {
				srvErr = fmt.Errorf("the snapshots of %q on the server at %s (gRPC %s) could not be listed (%s)",
					e.cfg.Collection.Name, e.ep.RESTBase, e.ep.GRPCAddr(), qdrantconn.Message(srvErr))
			}
			byName := map[string]serverSnap{}
			for _, s := range srv {
				byName[s.Name] = s
			}
			dest, err := destination(ctx, e.cfg, byName)
			if err != nil {
				return fmt.Errorf("list %s: %v", e.cfg.Snapshot.Destination, err)
			}
			if g.output == "json" {
				ev := newEvents(&globalOptions{output: "json", stdout: g.stdout, stderr: g.stderr, progress: "never"}, nil)
				for _, s := range srv {
					ev.emit(map[string]any{"type": "snapshot", "where": "server", "name": s.Name, "size": s.Size, "checksum": s.Checksum, "created": s.Created.Format(time.RFC3339)})
				}
				for _, d := range dest {
					ev.emit(map[string]any{"type": "snapshot", "where": "destination", "name": d.Name, "location": d.Location, "size": d.Size, "manifest": d.Manifest})
				}
				ev.Close()
				return srvErr
			}
			w := tabwriter.NewWriter(g.stdout, 2, 4, 2, ' ', 0)
			fmt.Fprintf(w, "Server (%s, collection %s):\n", e.ep.RESTBase, e.cfg.Collection.Name)
			if srvErr != nil {
				fmt.Fprintln(w, "  could not be listed (see the error below)")
			} else {
				fmt.Fprintln(w, "  NAME\tSIZE\tCREATED\tSHA256")
				for _, s := range srv {
					fmt.Fprintf(w, "  %s\t%d\t%s\t%s\n", s.Name, s.Size, s.Created.Format(time.RFC3339), s.Checksum)
				}
			}
			fmt.Fprintf(w, "Destination (%s):\n", e.cfg.Snapshot.Destination)
			fmt.Fprintln(w, "  NAME\tSIZE\tMANIFEST")
			for _, d := range dest {
				fmt.Fprintf(w, "  %s\t%d\t%s\n", d.Name, d.Size, d.Manifest)
			}
			if err := w.Flush(); err != nil {
				return err
			}
			return srvErr
		},
	}
	load.register(cmd)
	return cmd
}

func newSnapDownloadCommand(g *globalOptions) *cobra.Command {
	var load loadFlags
	var out string
	cmd := &cobra.Command{
		Use:   "download CONFIG [NAME]",
		Short: "Download a snapshot from the server (default: the newest), resumably, verified against the server's checksum",
		Args:  cobra.RangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			e, err := openSnapEnv(load, args[0])
			if err != nil {
				return err
			}
			defer e.conn.Close()
			ctx := cmd.Context()
			srv, err := e.list(ctx)
			if err != nil {
				return err
			}
			var snap *serverSnap
			for i := range srv {
				if len(args) == 1 || srv[i].Name == args[1] {
					snap = &srv[i]
					break
				}
			}
			if snap == nil {
				return fmt.Errorf("no snapshot %s of collection %q on the server", strings.Join(args[1:], ""), e.cfg.Collection.Name)
			}
			if out == "" {
				out = "."
				if !e.cfg.Snapshot.IsS3() {
					out = e.cfg.Resolve(e.cfg.Snapshot.Destination)
				}
			}
			if err := os.MkdirAll(out, 0o755); err != nil {
				return err
			}
			u := strings.TrimRight(e.ep.RESTBase, "/") + "/collections/" + url.PathEscape(e.cfg.Collection.Name) + "/snapshots/" + url.PathEscape(snap.Name)
			hdr := map[string][]string{}
			if k := e.cfg.Qdrant.APIKey.Reveal(); k != "" {
				hdr["Api-Key"] = []string{k}
			}
			dest := filepath.Join(out, snap.Name)
			// A verified copy already there is not fetched again (a
			// snapshot may be many GB): its bytes are hashed instead.
			if st, serr := os.Stat(dest); serr == nil && st.Mode().IsRegular() && st.Size() == snap.Size && snap.Checksum != "" {
				if sha, _, herr := httpget.HashFile(dest); herr == nil && sha == strings.ToLower(snap.Checksum) {
					report(g, fmt.Sprintf("%s is already there and matches the server's checksum (%d bytes, sha256 %s): nothing downloaded", dest, st.Size(), sha),
						map[string]any{"action": "download", "path": dest, "size": st.Size(), "sha256": sha, "downloaded": false})
					return nil
				}
			}
			ev := newEvents(g, nil)
			res, err := httpget.Get(ctx, pipeline.HTTPClient(), httpget.Request{URL: u, Header: hdr, Dest: dest, SHA256: strings.ToLower(snap.Checksum), Size: snap.Size,
				MaxAttempts: e.cfg.Upload.MaxAttempts, IdleTimeout: e.cfg.Download.IdleTimeout.D(),
				Progress: func(done, total int64) { ev.Progress("download", done, total, "bytes") }})
			ev.Close()
			if err != nil {
				return err
			}
			report(g, fmt.Sprintf("Downloaded %s (%d bytes, sha256 %s)", dest, res.Size, res.SHA256),
				map[string]any{"action": "download", "path": dest, "size": res.Size, "sha256": res.SHA256, "downloaded": true})
			return nil
		},
	}
	load.register(cmd)
	cmd.Flags().StringVar(&out, "out", "", "directory to write into (default: the destination directory, or . for an s3:// destination)")
	return cmd
}

// isClusterManifest reports whether a JSON file is a cluster manifest.
func isClusterManifest(path string) bool {
	b, err := os.ReadFile(path)
	if err != nil {
		return false
	}
	var m struct {
		Kind string `json:"kind"`
	}
	return json.Unmarshal(b, &m) == nil && m.Kind == "cluster"
}

// restoreCluster restores a cluster manifest onto a cluster: the
// collection is created with the manifest's config and shard count, each
// shard's file is uploaded (with its checksum) to the target peer holding
// that shard, then every shard's points and the total are checked. The
// target may have another number of peers than the source.
func restoreCluster(ctx context.Context, g *globalOptions, t qrestore.Target, path string, peers []string, grpcPort int, s3o *s3up.Options) error {
	var b []byte
	var err error
	loc := restore.ClusterFiles{Dir: filepath.Dir(path)}
	if s3o != nil {
		// A manifest in S3: each shard is recovered by its target peer from
		// a presigned URL of its object, beside the manifest.
		if loc.S3, err = s3up.Client(ctx, *s3o); err != nil {
			return err
		}
		var key string
		loc.Bucket, key, _ = strings.Cut(strings.TrimPrefix(path, "s3://"), "/")
		if i := strings.LastIndex(key, "/"); i >= 0 {
			loc.Prefix = key[:i+1]
		}
		o, gerr := loc.S3.GetObject(ctx, &s3.GetObjectInput{Bucket: &loc.Bucket, Key: &key})
		if gerr != nil {
			return gerr
		}
		b, err = io.ReadAll(io.LimitReader(o.Body, 64<<20))
		o.Body.Close()
	} else {
		b, err = os.ReadFile(path)
	}
	if err != nil {
		return err
	}
	var m pipeline.ClusterManifest
	if err := json.Unmarshal(b, &m); err != nil {
		return fmt.Errorf("%s: %v", path, err)
	}
	n, err := restore.RestoreCluster(ctx, t, &m, loc, peers, grpcPort)
	if err != nil {
		return err
	}
	if len(peers) == 0 {
		peers = []string{t.URL}
	}
	report(g, fmt.Sprintf("Restored %d shards into %s collection %q over %d peers: %d points", len(m.Shards), httpget.Redact(t.URL), t.Collection, len(peers), n),
		map[string]any{"action": "restore", "collection": t.Collection, "shards": len(m.Shards), "points": n})
	return nil
}

// report prints a command's result: a text line, or with -o json the
// version event and one "result" event with the fields.
func report(g *globalOptions, text string, fields map[string]any) {
	if g.output != "json" {
		fmt.Fprintln(g.stdout, text)
		return
	}
	ev := newEvents(&globalOptions{output: "json", stdout: g.stdout, stderr: g.stderr, progress: "never"}, nil)
	fields["type"] = "result"
	ev.emit(fields)
	ev.Close()
}

func newSnapRestoreCommand(g *globalOptions) *cobra.Command {
	var t qrestore.Target
	var s3o s3up.Options
	var peers []string
	var grpcPort int
	var yes bool
	cmd := &cobra.Command{
		Use:   "restore FILE|MANIFEST|s3://BUCKET/KEY --url URL --collection NAME",
		Short: "Restore a snapshot into a Qdrant and check its point count",
		Long: `Restore a snapshot into a collection of any Qdrant: a local file is uploaded
(streamed, with its checksum: from the manifest beside it, else computed), an
s3:// object is recovered by the server from a presigned URL (credentials from
the AWS SDK's chain). The API key (--api-key, else QDRANT_API_KEY) goes only to
--url's origin. Restoring replaces the collection: when it already holds
points, restore asks first (on a terminal) or needs -y.`,
		Example: `  snappipe snapshots restore out/laion-1-2026-11-27.snapshot --url http://localhost:6333 --collection laion
  snappipe snapshots restore s3://snaps/nightly/laion-1.snapshot --url https://q.example:6333 --collection laion --priority replica`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if t.URL == "" || t.Collection == "" {
				return errors.New("--url and --collection are required")
			}
			if t.APIKey == "" {
				t.APIKey = os.Getenv("QDRANT_API_KEY")
			}
			t.HTTP = pipeline.HTTPClient()
			ev := newEvents(&globalOptions{output: "text", stdout: g.stdout, stderr: g.stderr, progress: g.progress}, nil)
			defer ev.Close()
			t.Progress = func(done, total int64) { ev.Progress("upload", done, total, "bytes") }
			ctx := cmd.Context()
			src := args[0]
			// Recovering replaces the collection: one that holds points is
			// not replaced unasked. (An error here, such as no collection,
			// leaves the restore to go on or to say what is wrong.)
			if n, cerr := t.Count(ctx); cerr == nil && n > 0 && !yes {
				where := fmt.Sprintf("collection %q at %s", t.Collection, httpget.Redact(t.URL))
				if err := askYes(g, fmt.Sprintf("Restoring replaces %s, which holds %d points. Go on?", where, n), "restore",
					fmt.Errorf("%s holds %d points, which restoring replaces; no terminal to confirm on: re-run with -y (an interrupted restore of this snapshot is resumed the same way)", where, n)); err != nil {
					return err
				}
			}
			var err error
			switch {
			case strings.HasPrefix(src, "s3://") && strings.HasSuffix(src, ".manifest.json"):
				return restoreCluster(ctx, g, t, src, peers, grpcPort, &s3o)
			case strings.HasPrefix(src, "s3://"):
				bucket, key, _ := strings.Cut(strings.TrimPrefix(src, "s3://"), "/")
				client, cerr := s3up.Client(ctx, s3o)
				if cerr != nil {
					return cerr
				}
				// The server fetches the object by a presigned URL: a missing
				// bucket or object, or credentials that cannot read it, are
				// said here rather than as the server's download error.
				if ok, _, herr := s3up.Head(ctx, client, bucket, key); herr != nil {
					return fmt.Errorf("%s: %w", src, s3up.Explain(herr))
				} else if !ok {
					return fmt.Errorf("%s: no such object in the bucket", src)
				}
				sha := ""
				if mo, gerr := client.GetObject(ctx, &s3.GetObjectInput{Bucket: &bucket, Key: aws.String(key + ".json")}); gerr == nil {
					var m pipeline.Manifest
					json.NewDecoder(io.LimitReader(mo.Body, 1<<20)).Decode(&m)
					mo.Body.Close()
					sha = m.SHA256
				}
				ps, perr := s3.NewPresignClient(client).PresignGetObject(ctx, &s3.GetObjectInput{Bucket: &bucket, Key: &key}, s3.WithPresignExpires(time.Hour))
				if perr != nil {
					return perr
				}
				err = t.Recover(ctx, ps.URL, sha)
			case strings.HasSuffix(src, ".json") && isClusterManifest(src):
				return restoreCluster(ctx, g, t, src, peers, grpcPort, nil)
			default:
				file, sha := src, ""
				if strings.HasSuffix(src, ".json") {
					var m pipeline.Manifest
					b, rerr := os.ReadFile(src)
					if rerr != nil {
						return rerr
					}
					if jerr := json.Unmarshal(b, &m); jerr != nil || m.Snapshot == "" {
						return fmt.Errorf("%s is not a snapshot manifest", src)
					}
					file, sha = filepath.Join(filepath.Dir(src), m.Snapshot), m.SHA256
				} else if b, rerr := os.ReadFile(src + ".json"); rerr == nil {
					var m pipeline.Manifest
					if json.Unmarshal(b, &m) == nil {
						sha = m.SHA256
					}
				}
				if sha == "" {
					if sha, _, err = httpget.HashFile(file); err != nil {
						return err
					}
				}
				err = t.Upload(ctx, file, filepath.Base(file), sha)
			}
			if err != nil {
				return fmt.Errorf("restore into %s collection %q: %w", httpget.Redact(t.URL), t.Collection, err)
			}
			n, err := t.Count(ctx)
			if err != nil {
				return err
			}
			report(g, fmt.Sprintf("Restored into %s collection %q: %d points", httpget.Redact(t.URL), t.Collection, n),
				map[string]any{"action": "restore", "url": httpget.Redact(t.URL), "collection": t.Collection, "points": n})
			return nil
		},
	}
	cmd.Flags().StringVar(&t.URL, "url", "", "REST URL of the target Qdrant")
	cmd.Flags().StringVar(&t.APIKey, "api-key", "", "the target's API key (default: QDRANT_API_KEY)")
	cmd.Flags().StringVar(&t.Collection, "collection", "", "collection to restore into")
	cmd.Flags().StringVar(&t.Priority, "priority", "snapshot", "recovery priority: snapshot, replica or no_sync")
	s3Flags(cmd, &s3o)
	cmd.Flags().StringArrayVar(&peers, "peer", nil, "cluster manifests: the REST URL of every node of the target cluster (repeatable; default: --url alone)")
	cmd.Flags().IntVar(&grpcPort, "grpc-port", 6334, "cluster manifests: gRPC port on --url's host, to create the collection")
	cmd.Flags().BoolVarP(&yes, "yes", "y", false, "replace the collection without asking when it already holds points")
	return cmd
}

func newSnapDeleteCommand(g *globalOptions) *cobra.Command {
	var load loadFlags
	var yes bool
	cmd := &cobra.Command{
		Use:   "delete CONFIG NAME",
		Short: "Delete a snapshot on the server and at the destination (with its manifest)",
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			e, err := openSnapEnv(load, args[0])
			if err != nil {
				return err
			}
			defer e.conn.Close()
			name := args[1]
			if err := fetch.SafeName(name); err != nil {
				return err
			}
			if !yes {
				if err := askYes(g, fmt.Sprintf("Delete snapshot %s of %q on the server and at %s?", name, e.cfg.Collection.Name, e.cfg.Snapshot.Destination), "delete",
					fmt.Errorf("deleting snapshot %s needs a confirmation: no terminal to confirm on, re-run with -y", name)); err != nil {
					return err
				}
			}
			ctx := cmd.Context()
			deleted := 0
			if err := e.del(ctx, name); err == nil {
				deleted++
				fmt.Fprintf(g.stdout, "Deleted %s on the server\n", name)
			}
			if e.cfg.Snapshot.IsS3() {
				client, err := s3Of(e.cfg)
				if err != nil {
					return err
				}
				bucket, p := e.cfg.Snapshot.S3Location()
				if ok, _, _ := s3up.Head(ctx, client, bucket, p+name); ok {
					for _, k := range []string{p + name, p + name + ".json"} {
						if _, err := client.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: &bucket, Key: aws.String(k)}); err != nil {
							return err
						}
					}
					deleted++
					fmt.Fprintf(g.stdout, "Deleted s3://%s/%s and its manifest\n", bucket, p+name)
				}
			} else {
				p := filepath.Join(e.cfg.Resolve(e.cfg.Snapshot.Destination), name)
				if err := os.Remove(p); err == nil {
					os.Remove(p + ".json")
					deleted++
					fmt.Fprintf(g.stdout, "Deleted %s and its manifest\n", p)
				}
			}
			if deleted == 0 {
				return fmt.Errorf("no snapshot %s on the server or at the destination", name)
			}
			return nil
		},
	}
	load.register(cmd)
	cmd.Flags().BoolVarP(&yes, "yes", "y", false, "do not ask")
	return cmd
}

func newSnapVerifyCommand(g *globalOptions) *cobra.Command {
	var s3o s3up.Options
	cmd := &cobra.Command{
		Use:   "verify FILE|s3://BUCKET/KEY",
		Short: "Recompute a snapshot's SHA-256 and compare it with its manifest",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			src := args[0]
			var body, manifest io.ReadCloser
			if strings.HasPrefix(src, "s3://") {
				bucket, key, _ := strings.Cut(strings.TrimPrefix(src, "s3://"), "/")
				client, err := s3up.Client(ctx, s3o)
				if err != nil {
					return err
				}
				o, err := client.GetObject(ctx, &s3.GetObjectInput{Bucket: &bucket, Key: &key})
				if err != nil {
					return fmt.Errorf("%s: %w", src, s3up.Explain(err))
				}
				body = o.Body
				if m, err := client.GetObject(ctx, &s3.GetObjectInput{Bucket: &bucket, Key: aws.String(key + ".json")}); err == nil {
					manifest = m.Body
				}
			} else {
				f, err := os.Open(src)
				if err != nil {
					return err
				}
				body = f
				if m, err := os.Open(src + ".json"); err == nil {
					manifest = m
				}
			}
			defer body.Close()
			if manifest == nil {
				return &exitCodeError{code: exitError, err: fmt.Errorf("%s has no manifest (%s.json)", src, src)}
			}
			var m pipeline.Manifest
			err := json.NewDecoder(io.LimitReader(manifest, 1<<20)).Decode(&m)
			manifest.Close()
			if err != nil {
				return fmt.Errorf("%s.json: %v", src, err)
			}
			h := sha256.New()
			n, err := io.Copy(h, body)
			if err != nil {
				return err
			}
			sum := hex.EncodeToString(h.Sum(nil))
			if sum != m.SHA256 || n != m.Size {
				return &exitCodeError{code: exitError, err: fmt.Errorf("%s does NOT match its manifest: sha256 %s (%d bytes), manifest %s (%d bytes)", src, sum, n, m.SHA256, m.Size)}
			}
			report(g, fmt.Sprintf("%s matches its manifest: sha256 %s, %d bytes, %d points of %q (pipeline %s)", src, sum, n, m.Points, m.Collection.Name, m.Pipeline.Name),
				map[string]any{"action": "verify", "file": src, "sha256": sum, "size": n, "matches": true})
			return nil
		},
	}
	s3Flags(cmd, &s3o)
	return cmd
}

// s3Flags registers how to reach S3 for s3:// arguments.
func s3Flags(cmd *cobra.Command, o *s3up.Options) {
	cmd.Flags().StringVar(&o.Endpoint, "s3-endpoint", "", "S3 endpoint for s3:// arguments (default: the AWS SDK's)")
	cmd.Flags().StringVar(&o.Region, "s3-region", "", "S3 region")
	cmd.Flags().BoolVar(&o.ForcePathStyle, "s3-path-style", false, "address buckets as ENDPOINT/BUCKET")
}
