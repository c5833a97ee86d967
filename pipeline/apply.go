package pipeline

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/gofrs/flock"
	"github.com/qdrant/go-client/qdrant"
	"github.com/snappipe/snappipe/internal/atomicfile"
	"github.com/snappipe/snappipe/internal/hfhub"
	"github.com/snappipe/snappipe/internal/httpget"
	"github.com/snappipe/snappipe/internal/qdrantconn"
	"github.com/snappipe/snappipe/pipeline/config"
)

// StateDir is --state-dir, else .snappipe beside the config.
func StateDir(cfg *config.Config, flag string) string {
	if flag != "" {
		return flag
	}
	return filepath.Join(cfg.Dir, ".snappipe")
}

// HTTPClient is the client for sources and snapshot downloads: no overall
// timeout (files are large) but bounded connection setup.
func HTTPClient() *http.Client {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.DialContext = (&net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second}).DialContext
	tr.ResponseHeaderTimeout = 60 * time.Second
	tr.DisableCompression = true
	return &http.Client{Transport: tr}
}

// ApplyOptions tune one apply run.
type ApplyOptions struct {
	StateDir    string
	FullRefresh bool
	LockTimeout time.Duration
	// ConfirmRecreate decides about dropping a collection that holds points.
	ConfirmRecreate func(collection string, points uint64) error
	Log             *slog.Logger
	Events          Events
	// InFlight outlives ctx after an interrupt so sent upserts can finish.
	InFlight context.Context
	// Partition, when set, loads only that partition's shards (shard k
	// belongs to partition k mod N), with its own state, and no snapshot.
	Partition *Partition
	// Finalize loads nothing: it checks the collection holds every planned
	// row, then snapshots and fetches. Partitions names the partition count
	// in its report of what is missing (0: shards only).
	Finalize   bool
	Partitions int
	// Version is snappipe's version, recorded in manifests.
	Version string
}

// RunName names a run's state file and lock: the pipeline's name, and the
// partition ("NAME.part-2-of-8") or "NAME.finalize".
func RunName(cfg *config.Config, opts ApplyOptions) string {
	switch {
	case opts.Partition != nil:
		return fmt.Sprintf("%s.part-%d-of-%d", cfg.Name, opts.Partition.I, opts.Partition.N)
	case opts.Finalize:
		return cfg.Name + ".finalize"
	}
	return cfg.Name
}

// Mode is the run's mode.
func (o ApplyOptions) Mode() Mode {
	switch {
	case o.Partition != nil:
		return ModePartition
	case o.Finalize:
		return ModeFinalize
	}
	return ModeFull
}

// checkMode refuses what partitions cannot do safely.
func checkMode(cfg *config.Config, opts ApplyOptions) error {
	if opts.Partition != nil && opts.Finalize {
		return errors.New("--partition and --finalize are separate runs: load every partition, then finalize")
	}
	if p := opts.Partition; p != nil && (p.N < 1 || p.I < 0 || p.I >= p.N) {
		return fmt.Errorf("--partition %d/%d: want I/N with 0 <= I < N", p.I, p.N)
	}
	if opts.Mode() == ModeFull {
		return nil
	}
	// Known from the config alone: refused before a lock or state file
	// is written for the run.
	sharded := false
	for _, s := range cfg.Sources {
		sharded = sharded || s.IsShardSet()
	}
	if !sharded {
		flag := "--finalize"
		if opts.Partition != nil {
			flag = "--partition"
		}
		return fmt.Errorf("%s needs shard sets (partitions split a source's shard files between them): every source here is one file; run apply without it", flag)
	}
	if cfg.Collection.OnExists != "reuse" {
		return fmt.Errorf("partitions share one collection: set collection.on_exists: reuse (it creates the collection when absent; %q would %s)", cfg.Collection.OnExists,
			map[string]string{"recreate": "drop the other partitions' points", "fail": "fail every partition but the first"}[cfg.Collection.OnExists])
	}
	if cfg.Upload.Bulk {
		return errors.New("upload.bulk changes the collection's HNSW settings for the load; partitions share the collection, so it is not supported with --partition/--finalize")
	}
	return nil
}

// ErrConfigChanged means the state belongs to a different config.
var ErrConfigChanged = errors.New("config changed since the checkpoint")

// Lock takes the pipeline's OS file lock, waiting up to timeout.
func Lock(ctx context.Context, stateDir, name string, timeout time.Duration) (*flock.Flock, error) {
	if err := os.MkdirAll(stateDir, 0o700); err != nil {
		return nil, err
	}
	fl := flock.New(filepath.Join(stateDir, name+".lock"))
	// Always one attempt, whatever the machine's load; wait only when asked.
	ok, err := fl.TryLock()
	if err != nil {
		return nil, fmt.Errorf("lock %s: %w", fl.Path(), err)
	}
	if !ok && timeout > 0 {
		lctx, cancel := context.WithTimeout(ctx, timeout)
		defer cancel()
		ok, err = fl.TryLockContext(lctx, 100*time.Millisecond)
		if err != nil && !errors.Is(err, context.DeadlineExceeded) {
			return nil, fmt.Errorf("lock %s: %w", fl.Path(), err)
		}
	}
	if !ok {
		return nil, fmt.Errorf("another snappipe run holds the lock %s (waited %s; raise --lock-timeout to wait longer)", fl.Path(), timeout)
	}
	return fl, nil
}

// Apply runs the pipeline (its stages from reg) to completion or to the first error, resuming
// from the checkpoint when it matches the config.
func Apply(ctx context.Context, cfg *config.Config, reg *Registry, opts ApplyOptions) (*Summary, error) {
	if opts.Log == nil {
		opts.Log = slog.New(slog.DiscardHandler)
	}
	if err := checkMode(cfg, opts); err != nil {
		return nil, err
	}
	plan, err := Compile(cfg, opts.Mode())
	if err != nil {
		return nil, err
	}
	runName := RunName(cfg, opts)
	stateDir := StateDir(cfg, opts.StateDir)
	lock, err := Lock(ctx, stateDir, runName, opts.LockTimeout)
	if err != nil {
		return nil, err
	}
	defer lock.Unlock()
	// Temp files a killed run left (state, cache, destination).
	removeStaleTemps(stateDir)
	removeStaleTemps(filepath.Join(stateDir, "cache", cfg.Name))
	if !cfg.Snapshot.IsS3() {
		removeStaleTemps(cfg.Resolve(cfg.Snapshot.Destination))
	}
	sf, existed, err := OpenState(StatePath(stateDir, runName))
	if errors.Is(err, ErrUnusableState) && opts.FullRefresh {
		// Starting over needs nothing from it: keep it aside for a look.
		path := StatePath(stateDir, runName)
		if rerr := os.Rename(path, path+".corrupt"); rerr != nil {
			return nil, fmt.Errorf("%v; moving it aside failed: %w", err, rerr)
		}
		opts.Log.Warn("unreadable state moved aside; starting over", "kept", path+".corrupt", "err", err)
		sf, existed, err = OpenState(path)
	}
	if err != nil {
		return nil, err
	}
	// The layout: shard files, paired, with their row counts (cached in
	// the state, so a resumed run reads no header twice).
	layout, err := BuildLayout(ctx, cfg, LayoutOptions{HTTP: HTTPClient(), Header: httpget.HFAuth(), Partition: opts.Partition, Cache: sf})
	if err != nil {
		return nil, err
	}
	if why := layout.EmptyPartition(); why != "" {
		// An Indexed Job's surplus pods succeed, loading nothing.
		opts.Log.Warn(why)
		return &Summary{}, sf.Update(func(s *State) { s.LastFailure = nil })
	}
	fields := NormalizedFields(cfg)
	layout.Fields(fields)
	hash := HashFields(fields)
	summary := &Summary{}
	cur := sf.Snapshot()
	var grown *Growth
	if existed && !opts.FullRefresh && cur.ConfigHash != hash {
		grown = Grown(cur, fields, layout)
	}
	client, ep, err := qdrantconn.Connect(cfg)
	if err != nil {
		return nil, err
	}
	defer client.Close()
	confirm := opts.ConfirmRecreate
	if opts.FullRefresh && confirm == nil {
		confirm = func(c string, n uint64) error {
			return fmt.Errorf("--full-refresh would drop collection %q with %d points; confirm with -y", c, n)
		}
	}
	if opts.FullRefresh && opts.Mode() == ModeFull {
		// Asked before the checkpoint is dropped: a --full-refresh that is
		// refused leaves the checkpoint (and what plan and status say) as
		// it was. The upsert stage does not ask again.
		n, err := pointsIn(ctx, client, cfg)
		if err != nil {
			return nil, fmt.Errorf("--full-refresh: %w", err)
		}
		if n > 0 {
			if err := confirm(cfg.Collection.Name, n); err != nil {
				return nil, err
			}
			asked, ask := cfg.Collection.Name, confirm
			confirm = func(c string, n uint64) error {
				if c == asked {
					return nil
				}
				return ask(c, n)
			}
		}
	}
	switch {
	case !existed || opts.FullRefresh:
		rows := cur.ShardRows
		sf.Reset(cfg.Name, hash, fields)
		sf.Update(func(s *State) {
			s.ShardRows, s.Fetch.Abandoned, s.Cluster = rows, cur.Fetch.Abandon(), cur.Cluster.reset()
		})
		// Verified downloads stay valid across a refresh: keep their records
		// (for sources whose URL is unchanged) so no byte is fetched twice.
		sf.Update(func(s *State) {
			for name, ds := range cur.Downloads {
				if src := cfg.Sources[name]; src != nil && config.RedactURL(src.URL) == ds.URL {
					if s.Downloads == nil {
						s.Downloads = map[string]*DownloadState{}
					}
					s.Downloads[name] = ds
				}
			}
		})
	case grown != nil:
		// More rows at the end of the same row space: keep what was loaded.
		sf.Update(func(s *State) { grown.Apply(s, hash, fields) })
		summary.Resumed = true
		opts.Log.Info(grown.Text(sf.Path))
	case cur.ConfigHash != hash:
		changed := ChangedKeys(cur.Fields, fields)
		if len(changed) == 0 || HashFields(cur.Fields) != cur.ConfigHash {
			return nil, fmt.Errorf("%w: the state's config_hash does not match its own config_fields (was %s edited by hand?); apply with --full-refresh to start over",
				ErrConfigChanged, sf.Path)
		}
		return nil, fmt.Errorf("%w: %s (state %s); run `snappipe plan` to review, or apply with --full-refresh to start over",
			ErrConfigChanged, strings.Join(changed, ", "), sf.Path)
	default:
		summary.Resumed = true
		opts.Log.Info("resuming from checkpoint", "state", sf.Path, "batches_acked", cur.Upsert.AckedCount())
	}
	sf.Update(func(s *State) { s.Layout = layout.Record() })
	if fetch, cluster := plan.Has(KindFetch), plan.Has(KindClusterSnapshot); fetch || cluster {
		sf.Update(func(s *State) {
			if s.HandOverUploads(fetch, cluster) {
				opts.Log.Info("snapshot.scope changed: the S3 uploads the other scope's snapshot left are aborted by this one's")
			}
		})
	}
	if err := sf.Flush(); err != nil {
		return nil, err
	}
	rt := &Runtime{
		Config: cfg, Log: opts.Log, Events: opts.Events, HTTP: HTTPClient(), Qdrant: client,
		RESTBase: ep.RESTBase, CacheDir: filepath.Join(stateDir, "cache", runName),
		Summary: summary, ConfirmRecreate: confirm, InFlight: opts.InFlight,
		Layout: layout, Partitions: opts.Partitions, Mode: opts.Mode(), Version: opts.Version,
	}
	rt.SetCheckpoint(sf)
	if opts.FullRefresh && cfg.Collection.OnExists != "recreate" && opts.Mode() == ModeFull {
		// --full-refresh recreates the collection whatever on_exists says.
		c2 := *cfg
		c2.Collection.OnExists = "recreate"
		rt.Config = &c2
	}
	err = Run(ctx, plan, reg, rt)
	if err != nil && (errors.As(err, new(*ReplayError)) || rt.ReplayRequired()) {
		// Rows were loaded from bytes a download dropped: forget every
		// acknowledgement (however the run ended), the next run replays
		// them all and overwrites the points.
		sf.Update(func(s *State) { s.Upsert = UpsertState{BatchSize: s.Upsert.BatchSize, Rows: s.Upsert.Rows} })
		if !errors.As(err, new(*ReplayError)) {
			err = &ReplayError{Err: err}
		}
	}
	switch {
	case err == nil:
		sf.Update(func(s *State) { s.LastFailure = nil })
	case ctx.Err() == nil:
		// A failure, not an interrupt: record it, and say what the
		// collection holds now and how to go on.
		up := sf.Snapshot().Upsert
		f := &Failure{At: time.Now().UTC(), Error: err.Error(), RowsLoaded: layout.RowsOfBatches(up), Rows: up.Rows}
		sf.Update(func(s *State) { s.LastFailure = f })
		if f.RowsLoaded > 0 && !up.Done {
			err = &PartialError{Err: err, Collection: cfg.Collection.Name, Loaded: f.RowsLoaded, Rows: f.Rows}
		}
	}
	if ferr := sf.Flush(); ferr != nil && err == nil {
		err = ferr
	}
	return summary, err
}

// PartialError is a run that failed after some rows were loaded.
type PartialError struct {
	Err        error
	Collection string
	Loaded     int64
	Rows       int64
}

func (e *PartialError) Error() string {
	return fmt.Sprintf("%v\ncollection %q now holds the points of the first %d of %d rows (kept in the checkpoint). Fix the data and run the same command again to resume after them, or apply with --full-refresh to start over",
		e.Err, e.Collection, e.Loaded, e.Rows)
}
func (e *PartialError) Unwrap() error { return e.Err }

// removeStaleTemps deletes temp files a killed run left in dir. Only the
// lock holder calls it, so no live writer owns them.
func removeStaleTemps(dir string) {
	m, _ := filepath.Glob(filepath.Join(dir, atomicfile.TempPrefix+"*"))
	for _, p := range m {
		os.Remove(p)
	}
}

// Remote globs (hf://datasets/OWNER/NAME/DIR/*.parquet) are listed through
// the Hugging Face API when the layout is built.
func init() {
	config.ListRemote = func(ctx context.Context, pattern, endpoint string) ([]string, error) {
		r, err := hfhub.ParseWith(pattern, endpoint)
		if err != nil {
			return nil, err
		}
		return hfhub.Glob(ctx, HTTPClient(), r)
	}
}

// pointsIn counts the points of the config's collection (0 when it does
// not exist).
func pointsIn(ctx context.Context, client *qdrant.Client, cfg *config.Config) (uint64, error) {
	ctx, cancel := context.WithTimeout(ctx, cfg.Qdrant.Timeout.D())
	defer cancel()
	exists, err := client.CollectionExists(ctx, cfg.Collection.Name)
	if err != nil {
		return 0, fmt.Errorf("check collection %q: %s", cfg.Collection.Name, qdrantconn.Message(err))
	}
	if !exists {
		return 0, nil
	}
	n, err := client.Count(ctx, &qdrant.CountPoints{CollectionName: cfg.Collection.Name, Exact: qdrant.PtrOf(true)})
	if err != nil {
		return 0, fmt.Errorf("count collection %q: %s", cfg.Collection.Name, qdrantconn.Message(err))
	}
	return n, nil
}
