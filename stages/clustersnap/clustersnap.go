// Package clustersnap is the stage of snapshot.scope: cluster. A
// collection snapshot taken through one node of a Qdrant cluster holds
// only that node's shards; this stage maps every shard to the peer that
// holds it (collection cluster info on each of qdrant.peers), refuses a
// cluster whose shards it cannot all reach, creates one shard snapshot per
// shard on its peer (bounded parallelism; after a timeout or a crash it
// polls for the snapshot it asked for, never creating a second), downloads
// each verified, and writes a cluster manifest listing them all.
package clustersnap

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/s3"
	"golang.org/x/sync/errgroup"

	"github.com/snappipe/snappipe/internal/atomicfile"
	"github.com/snappipe/snappipe/internal/httpget"
	"github.com/snappipe/snappipe/internal/qrest"
	"github.com/snappipe/snappipe/internal/s3up"
	"github.com/snappipe/snappipe/pipeline"
	"github.com/snappipe/snappipe/stages/fetch"
)

// Kind is the stage kind.
const Kind = pipeline.KindClusterSnapshot

// Ports: it follows the upsert (or finalize's verify).
var Ports = pipeline.Ports{Consumes: []string{pipeline.MsgUpsertDone}, Emits: []string{pipeline.MsgSnapshotFile}}

// ClusterSnap snapshots a cluster.
type ClusterSnap struct {
	rt    *pipeline.Runtime
	node  string
	state pipeline.Section[pipeline.ClusterSnapshotState]
	mu    sync.Mutex // serialises state updates of the shard goroutines
	// PollInterval and ResumeGrace tune the wait for a shard snapshot an
	// earlier run requested.
	PollInterval time.Duration
	ResumeGrace  time.Duration
}

// New is the stage factory.
func New(n *pipeline.Node, rt *pipeline.Runtime) (pipeline.Stage, error) {
	sec, err := pipeline.ClusterSnapshotSection(rt, n)
	if err != nil {
		return nil, err
	}
	return &ClusterSnap{rt: rt, node: n.ID, state: sec, PollInterval: 250 * time.Millisecond, ResumeGrace: 60 * time.Second}, nil
}

// Preflight checks, before the load, that the destination can take the
// shard files (a writable directory, or a reachable bucket).
func (c *ClusterSnap) Preflight(ctx context.Context) error {
	if c.here(c.state.Get()) {
		return nil
	}
	cfg := c.rt.Config
	if cfg.Snapshot.IsS3() {
		client, err := c.s3()
		if err != nil {
			return err
		}
		bucket, _ := cfg.Snapshot.S3Location()
		if err := s3up.CheckBucket(ctx, client, bucket); err != nil {
			return fmt.Errorf("snapshot.destination: %w", err)
		}
		return nil
	}
	if err := fetch.CheckDestination(cfg.Resolve(cfg.Snapshot.Destination), true); err != nil {
		return fmt.Errorf("snapshot.destination: %w", err)
	}
	return nil
}

var _ pipeline.Preflighter = (*ClusterSnap)(nil)

// Describe says what the checkpoint holds.
func (c *ClusterSnap) Describe() []string {
	st := c.state.Get()
	done := 0
	for _, s := range st.Shards {
		if s.Done {
			done++
		}
	}
	if st.Done {
		moved := ""
		if !c.here(st) {
			moved = " (snapshot.destination changed since: apply takes a new one there)"
		}
		return []string{fmt.Sprintf("  cluster    done: %d shard snapshots, manifest %s%s", len(st.Shards), st.Manifest, moved)}
	}
	return []string{fmt.Sprintf("  cluster    %d of %d shard snapshots downloaded", done, len(st.Shards))}
}

// Plan says what apply would do.
func (c *ClusterSnap) Plan(ctx context.Context, pc *pipeline.PlanContext) error {
	if gone, _ := c.left(c.state.Get()); len(gone) > 0 {
		pc.Action("abort %d multipart upload(s) of shard snapshots the checkpoint no longer needs (%s, …)", len(gone), gone[0].Path)
	}
	if c.here(c.state.Get()) {
		return nil
	}
	owners, _, err := c.shardMap(ctx)
	if err != nil {
		pc.Problem("snapshot.scope cluster: %v", err)
	}
	pc.Action("snapshot each of %d shards on the peer that holds it (%d peers), download and verify each, write a cluster manifest to %s", len(owners), len(c.rt.Config.Qdrant.Peers), c.rt.Config.Snapshot.Destination)
	return nil
}

func (c *ClusterSnap) get(ctx context.Context, u string, out any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return err
	}
	c.header(req.Header)
	return c.do(req, out)
}

func (c *ClusterSnap) header(h http.Header) {
	if k := c.rt.Config.Qdrant.APIKey.Reveal(); k != "" {
		h.Set("api-key", k)
	}
}

func (c *ClusterSnap) do(req *http.Request, out any) error { return qrest.Do(c.rt.HTTP, req, out) }

func (c *ClusterSnap) coll() string { return url.PathEscape(c.rt.Config.Collection.Name) }

// shardMap asks every peer for its local shards: shard id -> peer URL and
// points. Shards no listed peer holds are an error naming them.
func (c *ClusterSnap) shardMap(ctx context.Context) (map[uint32]string, map[uint32]uint64, error) {
	owners, points := map[uint32]string{}, map[uint32]uint64{}
	count := uint64(0)
	// Custom sharding (shard keys) places shards by key, not by id alone:
	// refused clearly rather than snapshotted half-understood.
	var info struct {
		Config struct {
			Params struct {
				ShardingMethod string `json:"sharding_method"`
			} `json:"params"`
		} `json:"config"`
	}
	if len(c.rt.Config.Qdrant.Peers) > 0 {
		if err := c.get(ctx, strings.TrimRight(c.rt.Config.Qdrant.Peers[0], "/")+"/collections/"+c.coll(), &info); err != nil {
			return nil, nil, fmt.Errorf("peer %s: %w", httpget.Redact(c.rt.Config.Qdrant.Peers[0]), err)
		}
		if strings.EqualFold(info.Config.Params.ShardingMethod, "custom") {
			return nil, nil, fmt.Errorf("collection %q uses custom sharding (shard keys), which scope: cluster does not support", c.rt.Config.Collection.Name)
		}
	}
	for _, p := range c.rt.Config.Qdrant.Peers {
		var ci struct {
			ShardCount uint64 `json:"shard_count"`
			Local      []struct {
				ShardID     uint32 `json:"shard_id"`
				PointsCount uint64 `json:"points_count"`
			} `json:"local_shards"`
		}
		if err := c.get(ctx, strings.TrimRight(p, "/")+"/collections/"+c.coll()+"/cluster", &ci); err != nil {
			return nil, nil, fmt.Errorf("peer %s: %w", httpget.Redact(p), err)
		}
		count = max(count, ci.ShardCount)
		for _, l := range ci.Local {
			if _, dup := owners[l.ShardID]; !dup {
				owners[l.ShardID] = strings.TrimRight(p, "/")
				points[l.ShardID] = l.PointsCount
			}
		}
	}
	var missing []string
	for k := uint32(0); uint64(k) < count; k++ {
		if _, ok := owners[k]; !ok {
			missing = append(missing, strconv.Itoa(int(k)))
		}
	}
	if len(missing) > 0 {
		return owners, points, fmt.Errorf("shards %s of %d are on no peer listed in qdrant.peers: add the REST URL of every node", strings.Join(missing, ", "), count)
	}
	return owners, points, nil
}

type snapDesc struct {
	Name     string `json:"name"`
	Size     int64  `json:"size"`
	Checksum string `json:"checksum"`
}

func (c *ClusterSnap) list(ctx context.Context, peer string, id uint32) ([]snapDesc, error) {
	var out []snapDesc
	err := c.get(ctx, fmt.Sprintf("%s/collections/%s/shards/%d/snapshots", peer, c.coll(), id), &out)
	return out, err
}

// Run snapshots every shard and writes the manifest.
func (c *ClusterSnap) Run(ctx context.Context, sio pipeline.StageIO) error {
	in, err := sio.Input()
	if err != nil {
		return err
	}
	if _, ok, err := pipeline.Receive[*pipeline.UpsertDone](ctx, sio, in); err != nil || !ok {
		if err == nil {
			err = fmt.Errorf("internal: %s ended without saying the load is done", in)
		}
		return err
	}
	cfg := c.rt.Config
	dir := cfg.Resolve(cfg.Snapshot.Destination)
	if err := c.abortLeft(ctx); err != nil {
		return err
	}
	if st := c.state.Get(); c.here(st) {
		if _, err := os.Stat(st.Manifest); err == nil || strings.HasPrefix(st.Manifest, "s3://") {
			c.summary(st)
			return sio.Emit(ctx, c.file(st))
		}
	} else if was := c.moved(st, dir); st.Done || was != "" {
		// The destination changed since (after the manifest, or after a
		// shard was written and before the manifest): new shard snapshots
		// go there, so the manifest lists only files beside it (the files
		// at the old one are left as they are; uploads in progress are
		// aborted once the shards are done).
		if st.Done {
			was = st.Manifest
		}
		c.rt.Log.Info("snapshot.destination changed since the last cluster snapshot: taking a new one", "was", was)
		if err := c.state.Update(func(s *pipeline.ClusterSnapshotState) { *s = pipeline.ClusterSnapshotState{Abandoned: s.Abandon()} }); err != nil {
			return err
		}
	}
	owners, points, err := c.shardMap(ctx)
	if err != nil {
		return fmt.Errorf("cluster snapshot of %q: %w", cfg.Collection.Name, err)
	}
	if !cfg.Snapshot.IsS3() {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return err
		}
	}
	ids := make([]uint32, 0, len(owners))
	for id := range owners {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(4)
	var done atomic.Int64
	c.rt.Events.Progress(c.node, 0, int64(len(ids)), "shards")
	for _, id := range ids {
		g.Go(func() error {
			if err := c.shard(gctx, dir, id, owners[id], points[id]); err != nil {
				return err
			}
			c.rt.Events.Progress(c.node, done.Add(1), int64(len(ids)), "shards")
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return err
	}
	if err := c.abortLeft(ctx); err != nil { // shards taken again above
		return err
	}
	if err := c.writeManifest(dir, ids); err != nil {
		return err
	}
	return sio.Emit(ctx, c.file(c.state.Get()))
}

// file describes the cluster manifest for restore stages.
func (c *ClusterSnap) file(st pipeline.ClusterSnapshotState) *pipeline.SnapshotFile {
	f := &pipeline.SnapshotFile{Name: filepath.Base(st.Manifest), Cluster: true, Points: c.rt.LoadedPoints()}
	if strings.HasPrefix(st.Manifest, "s3://") {
		f.Bucket, f.Key, _ = strings.Cut(strings.TrimPrefix(st.Manifest, "s3://"), "/")
	} else {
		f.Path = st.Manifest
	}
	return f
}

func (c *ClusterSnap) shardState(id uint32) pipeline.ShardSnapshotState {
	st := c.state.Get()
	if s := st.Shards[strconv.Itoa(int(id))]; s != nil {
		return *s
	}
	return pipeline.ShardSnapshotState{}
}

func (c *ClusterSnap) setShard(id uint32, f func(*pipeline.ShardSnapshotState)) error {
	return c.setShardAll(id, func(_ *pipeline.ClusterSnapshotState, s *pipeline.ShardSnapshotState) { f(s) })
}

// setShardAll is setShard with the whole state at hand too.
func (c *ClusterSnap) setShardAll(id uint32, f func(*pipeline.ClusterSnapshotState, *pipeline.ShardSnapshotState)) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.state.Update(func(st *pipeline.ClusterSnapshotState) {
		if st.Shards == nil {
			st.Shards = map[string]*pipeline.ShardSnapshotState{}
		}
		k := strconv.Itoa(int(id))
		if st.Shards[k] == nil {
			st.Shards[k] = &pipeline.ShardSnapshotState{}
		}
		f(st, st.Shards[k])
	})
}

// shard creates (or finds) and downloads one shard's snapshot.
func (c *ClusterSnap) shard(ctx context.Context, dir string, id uint32, peer string, points uint64) error {
	sh := c.shardState(id)
	if sh.Done && sh.Peer == peer {
		if strings.HasPrefix(sh.Path, "s3://") {
			return nil
		}
		if sum, _, err := httpget.HashFile(sh.Path); err == nil && sum == sh.SHA256 {
			return nil
		}
	}
	if sh.Peer != peer || sh.Name == "" {
		d, err := c.create(ctx, id, peer, sh)
		if err != nil {
			return fmt.Errorf("shard %d on %s: %w", id, httpget.Redact(peer), err)
		}
		if err := c.setShardAll(id, func(st *pipeline.ClusterSnapshotState, s *pipeline.ShardSnapshotState) {
			st.Abandoned = append(st.Abandoned, s.Abandon()...) // aborted once the shards are done
			*s = pipeline.ShardSnapshotState{Peer: peer, Name: d.Name, Size: d.Size, Checksum: d.Checksum, Points: points}
		}); err != nil {
			return err
		}
		sh = c.shardState(id)
	}
	if strings.ContainsAny(sh.Name, "/\\") || sh.Name == ".." {
		return fmt.Errorf("shard %d: refusing snapshot name %q", id, sh.Name)
	}
	dest := filepath.Join(dir, sh.Name)
	cfg := c.rt.Config
	hdr := http.Header{}
	c.header(hdr)
	src := fmt.Sprintf("%s/collections/%s/shards/%d/snapshots/%s", peer, c.coll(), id, url.PathEscape(sh.Name))
	if cfg.Snapshot.IsS3() {
		return c.toS3(ctx, id, src, hdr, sh)
	}
	res, err := httpget.Get(ctx, c.rt.HTTP, httpget.Request{
		URL: src, Header: hdr, Dest: dest,
		SHA256: strings.ToLower(sh.Checksum), Size: sh.Size, MaxAttempts: cfg.Upload.MaxAttempts, MaxElapsed: cfg.Upload.MaxElapsed.D(), IdleTimeout: cfg.Download.IdleTimeout.D(),
	})
	c.rt.AddFetched(res.Fetched)
	if err != nil {
		return fmt.Errorf("shard %d: %w", id, err)
	}
	return c.setShard(id, func(s *pipeline.ShardSnapshotState) { s.Path, s.SHA256, s.Done = dest, res.SHA256, true })
}

// toS3 streams one shard snapshot from its peer into a multipart upload
// (verified before completion, resumable part by part), as the collection
// snapshot does.
func (c *ClusterSnap) toS3(ctx context.Context, id uint32, src string, hdr http.Header, sh pipeline.ShardSnapshotState) error {
	cfg := c.rt.Config
	client, err := c.s3()
	if err != nil {
		return err
	}
	bucket, prefix := cfg.Snapshot.S3Location()
	key := prefix + sh.Name
	target := "s3://" + bucket + "/" + key
	var progress s3up.Progress
	if sh.Upload != nil {
		progress = *sh.Upload
	}
	size := sh.Size
	if size <= 0 {
		size = -1
	}
	sum, err := s3up.Upload(ctx, s3up.Request{
		S3: client, Bucket: bucket, Key: key, URL: src, Header: hdr, HTTP: c.rt.HTTP, Size: size, SHA256: strings.ToLower(sh.Checksum),
		PartSize: int64(cfg.Snapshot.S3.PartSize) << 20, MaxAttempts: cfg.Upload.MaxAttempts, Progress: progress,
		Save: func(p s3up.Progress) error {
			return c.setShard(id, func(s *pipeline.ShardSnapshotState) {
				s.Upload, s.UploadPath, s.Store = &p, target, fetch.RecordedStore(c.store())
			})
		},
	})
	if err != nil {
		return fmt.Errorf("shard %d: %w", id, err)
	}
	return c.setShard(id, func(s *pipeline.ShardSnapshotState) {
		s.Path, s.SHA256, s.Done, s.Upload, s.UploadPath, s.Store = target, sum, true, nil, "", nil
	})
}

func (c *ClusterSnap) s3() (*s3.Client, error) { return s3up.Client(context.Background(), c.store()) }

// store is the configured S3 store.
func (c *ClusterSnap) store() s3up.Options {
	o := c.rt.Config.Snapshot.S3
	return s3up.OptionsOf(o)
}

// s3Target is where shard snapshot name goes in the configured bucket
// ("" when the destination is not S3).
func (c *ClusterSnap) s3Target(name string) string {
	if !c.rt.Config.Snapshot.IsS3() {
		return ""
	}
	bucket, prefix := c.rt.Config.Snapshot.S3Location()
	return "s3://" + bucket + "/" + prefix + name
}

// moved returns where a shard of st was written when that is not where
// the destination (dir, or the configured bucket) puts it now; "" when
// every written shard is in place.
func (c *ClusterSnap) moved(st pipeline.ClusterSnapshotState, dir string) string {
	for _, k := range pipeline.SortedKeys(st.Shards) {
		sh := st.Shards[k]
		want := filepath.Join(dir, sh.Name)
		if c.rt.Config.Snapshot.IsS3() {
			want = c.s3Target(sh.Name)
		}
		if sh.Done && sh.Path != want {
			return sh.Path
		}
	}
	return ""
}

// left returns the uploads abortLeft aborts, and the shards whose
// uploads are among them.
func (c *ClusterSnap) left(st pipeline.ClusterSnapshotState) (gone []pipeline.AbandonedUpload, shards []string) {
	gone = slices.Clone(st.Abandoned)
	for _, k := range pipeline.SortedKeys(st.Shards) {
		sh := st.Shards[k]
		if a := sh.Abandon(); len(a) > 0 && sh.UploadPath != c.s3Target(sh.Name) {
			gone, shards = append(gone, a...), append(shards, k)
		}
	}
	return gone, shards
}

// abortLeft aborts the shard uploads the checkpoint gave up and those in
// progress to another object than the destination now names (it changed,
// or is a directory now), each in the store it was started in, and
// forgets them.
func (c *ClusterSnap) abortLeft(ctx context.Context) error {
	gone, shards := c.left(c.state.Get())
	if len(gone) == 0 {
		return nil
	}
	var current *s3.Client
	if c.rt.Config.Snapshot.IsS3() {
		var err error
		if current, err = c.s3(); err != nil {
			return err
		}
	}
	fetch.AbortUploads(ctx, c.rt.Log, current, c.store(), gone)
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.state.Update(func(s *pipeline.ClusterSnapshotState) {
		s.Abandoned = nil
		for _, k := range shards {
			if sh := s.Shards[k]; sh != nil {
				sh.Upload, sh.UploadPath, sh.Store = nil, "", nil
			}
		}
	})
}

// create asks the shard's peer for a snapshot, recording the request
// first; a resumed run (or a timed-out request) polls the list for the new
// name instead of asking again.
func (c *ClusterSnap) create(ctx context.Context, id uint32, peer string, sh pipeline.ShardSnapshotState) (snapDesc, error) {
	if sh.Peer == peer && sh.RequestedAt != nil {
		if d, ok, err := c.poll(ctx, id, peer, sh.Before, c.ResumeGrace); err != nil || ok {
			return d, err
		}
		// Nothing appeared: the earlier request was lost; ask again.
	}
	before, err := c.list(ctx, peer, id)
	if err != nil {
		return snapDesc{}, err
	}
	var names []string
	for _, d := range before {
		names = append(names, d.Name)
	}
	now := time.Now().UTC()
	if err := c.setShard(id, func(s *pipeline.ShardSnapshotState) {
		*s = pipeline.ShardSnapshotState{Peer: peer, RequestedAt: &now, Before: names}
	}); err != nil {
		return snapDesc{}, err
	}
	cctx, cancel := context.WithTimeout(ctx, c.rt.Config.Snapshot.Timeout.D())
	defer cancel()
	req, err := http.NewRequestWithContext(cctx, http.MethodPost, fmt.Sprintf("%s/collections/%s/shards/%d/snapshots", peer, c.coll(), id), nil)
	if err != nil {
		return snapDesc{}, err
	}
	c.header(req.Header)
	var d snapDesc
	err = c.do(req, &d)
	if err == nil {
		return d, nil
	}
	if ctx.Err() != nil {
		return snapDesc{}, ctx.Err()
	}
	if cctx.Err() != nil {
		// Timed out: the peer goes on creating it; wait for it to appear.
		if d, ok, perr := c.poll(ctx, id, peer, names, c.rt.Config.Snapshot.Timeout.D()); perr != nil || ok {
			return d, perr
		}
	}
	return snapDesc{}, err
}

// poll waits up to grace for a shard snapshot not in before.
func (c *ClusterSnap) poll(ctx context.Context, id uint32, peer string, before []string, grace time.Duration) (snapDesc, bool, error) {
	deadline := time.Now().Add(grace)
	for {
		l, err := c.list(ctx, peer, id)
		if err != nil {
			return snapDesc{}, false, err
		}
		for _, d := range l {
			if !slices.Contains(before, d.Name) && d.Checksum != "" {
				return d, true, nil
			}
		}
		if time.Now().After(deadline) {
			return snapDesc{}, false, nil
		}
		select {
		case <-ctx.Done():
			return snapDesc{}, false, ctx.Err()
		case <-time.After(c.PollInterval):
		}
	}
}

// writeManifest writes <collection>-<timestamp>.manifest.json.
func (c *ClusterSnap) writeManifest(dir string, ids []uint32) error {
	cfg := c.rt.Config
	st := c.state.Get()
	name := fmt.Sprintf("%s-%s.manifest.json", cfg.Collection.Name, time.Now().UTC().Format("2006-01-02-15-04-05"))
	var total int64
	var points uint64
	var shards []pipeline.ClusterShard
	for _, id := range ids {
		s := st.Shards[strconv.Itoa(int(id))]
		total += s.Size
		points += s.Points
		shards = append(shards, pipeline.ClusterShard{ShardID: id, Peer: httpget.Redact(s.Peer), File: filepath.Base(s.Path), Size: s.Size, SHA256: s.SHA256, Points: s.Points})
	}
	m := &pipeline.ClusterManifest{Manifest: *c.rt.BuildManifest(name, total, ""), Kind: "cluster", ShardCount: len(ids), Shards: shards}
	m.Points = int64(points)
	path := filepath.Join(dir, name)
	b, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return err
	}
	if cfg.Snapshot.IsS3() {
		client, err := c.s3()
		if err != nil {
			return err
		}
		bucket, prefix := cfg.Snapshot.S3Location()
		if err := s3up.PutSmall(context.Background(), client, bucket, prefix+name, append(b, '\n'), "application/json"); err != nil {
			return fmt.Errorf("write the cluster manifest: %w", err)
		}
		path = "s3://" + bucket + "/" + prefix + name
	} else if err := atomicfile.WriteFile(path, append(b, '\n'), 0o644); err != nil {
		return err
	}
	if err := c.state.Update(func(s *pipeline.ClusterSnapshotState) { s.Manifest, s.Done = path, true }); err != nil {
		return err
	}
	c.summary(c.state.Get())
	c.rt.Log.Info("cluster snapshot written", "shards", len(ids), "manifest", path)
	return nil
}

func (c *ClusterSnap) summary(st pipeline.ClusterSnapshotState) {
	var size int64
	for _, s := range st.Shards {
		size += s.Size
	}
	c.rt.UpdateSummary(func(s *pipeline.Summary) {
		s.SnapshotName, s.SnapshotPath, s.SnapshotSize = filepath.Base(st.Manifest), st.Manifest, size
	})
}

var _ pipeline.Stage = (*ClusterSnap)(nil)

// here reports whether the checkpoint's cluster snapshot is done where the
// config puts it now (its manifest in the destination directory or under
// the S3 prefix).
func (c *ClusterSnap) here(st pipeline.ClusterSnapshotState) bool {
	return st.Done && st.Manifest == fetch.Target(c.rt.Config, path.Base(st.Manifest))
}
