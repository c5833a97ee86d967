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
	"github.com/snappipe/snappipe/internal/atomicfile"
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
	plan, err := Compile(cfg)
	if err != nil {
		return nil, err
	}
	stateDir := StateDir(cfg, opts.StateDir)
	lock, err := Lock(ctx, stateDir, cfg.Name, opts.LockTimeout)
	if err != nil {
		return nil, err
	}
	defer lock.Unlock()
	// Temp files a killed run left (state, cache, destination).
	removeStaleTemps(stateDir)
	removeStaleTemps(filepath.Join(stateDir, "cache", cfg.Name))
	removeStaleTemps(cfg.Resolve(cfg.Snapshot.Destination))
	sf, existed, err := OpenState(StatePath(stateDir, cfg.Name))
	if errors.Is(err, ErrUnusableState) && opts.FullRefresh {
		// Starting over needs nothing from it: keep it aside for a look.
		path := StatePath(stateDir, cfg.Name)
		if rerr := os.Rename(path, path+".corrupt"); rerr != nil {
			return nil, fmt.Errorf("%v; moving it aside failed: %w", err, rerr)
		}
		opts.Log.Warn("unreadable state moved aside; starting over", "kept", path+".corrupt", "err", err)
		sf, existed, err = OpenState(path)
	}
	if err != nil {
		return nil, err
	}
	fields := NormalizedFields(cfg)
	hash := HashFields(fields)
	summary := &Summary{}
	cur := sf.Snapshot()
	switch {
	case !existed || opts.FullRefresh:
		sf.Reset(cfg.Name, hash, fields)
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
	if err := sf.Flush(); err != nil {
		return nil, err
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
	rt := &Runtime{
		Config: cfg, Log: opts.Log, Events: opts.Events, HTTP: HTTPClient(), Qdrant: client,
		RESTBase: ep.RESTBase, CacheDir: filepath.Join(stateDir, "cache", cfg.Name),
		Summary: summary, ConfirmRecreate: confirm, InFlight: opts.InFlight,
	}
	rt.SetCheckpoint(sf)
	if opts.FullRefresh && cfg.Collection.OnExists != "recreate" {
		// --full-refresh recreates the collection whatever on_exists says.
		c2 := *cfg
		c2.Collection.OnExists = "recreate"
		rt.Config = &c2
	}
	err = Run(ctx, plan, reg, rt)
	switch {
	case err == nil:
		sf.Update(func(s *State) { s.LastFailure = nil })
	case ctx.Err() == nil:
		// A failure, not an interrupt: record it, and say what the
		// collection holds now and how to go on.
		up := sf.Snapshot().Upsert
		f := &Failure{At: time.Now().UTC(), Error: err.Error(), RowsLoaded: up.AckedRows(), Rows: up.Rows}
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
