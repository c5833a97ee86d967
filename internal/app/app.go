// Package app wires a loaded config to the engine: state, lock, clients,
// and the apply run. The CLI commands are thin layers over it.
package app

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/gofrs/flock"
	"github.com/qdrant/go-client/qdrant"
	"github.com/snappipe/snappipe/internal/atomicfile"
	"github.com/snappipe/snappipe/pipeline"
	"github.com/snappipe/snappipe/pipeline/config"
	"github.com/snappipe/snappipe/stages/all"
)

// LoadConfig reads a config ("-" for standard input). The environment
// overrides (config.EnvOverrides) are applied by the loader, once, in the
// order --set > environment > --env-file > file > default.
func LoadConfig(path string, opts config.LoadOptions) (*config.Config, error) {
	var cfg *config.Config
	var err error
	if path == "-" {
		data, rerr := io.ReadAll(os.Stdin)
		if rerr != nil {
			return nil, rerr
		}
		wd, _ := os.Getwd()
		cfg, err = config.Load("<stdin>", data, wd, opts)
	} else {
		cfg, err = config.LoadFile(path, opts)
	}
	return cfg, err
}

// StateDir is --state-dir, else .snappipe beside the config.
func StateDir(cfg *config.Config, flag string) string {
	if flag != "" {
		return flag
	}
	return filepath.Join(cfg.Dir, ".snappipe")
}

// Endpoint is where Qdrant is, derived from qdrant.url and grpc_port.
type Endpoint struct {
	RESTBase string
	Host     string
	GRPCPort int
	TLS      bool
}

// EndpointOf parses the config's Qdrant location.
func EndpointOf(cfg *config.Config) (Endpoint, error) {
	u, err := url.Parse(cfg.Qdrant.URL)
	if err != nil || u.Host == "" {
		return Endpoint{}, fmt.Errorf("qdrant.url %q is not a URL", cfg.Qdrant.URL)
	}
	host := u.Hostname()
	port := cfg.Qdrant.GRPCPort
	if port == 0 {
		port = 6334
	}
	return Endpoint{RESTBase: strings.TrimRight(u.Scheme+"://"+u.Host+u.Path, "/"), Host: host, GRPCPort: port, TLS: u.Scheme == "https"}, nil
}

// Connect makes a go-client for the endpoint. No RPC is made.
func Connect(cfg *config.Config, ep Endpoint) (*qdrant.Client, error) {
	return qdrant.NewClient(&qdrant.Config{
		Host: ep.Host, Port: ep.GRPCPort, APIKey: cfg.Qdrant.APIKey.Reveal(), UseTLS: ep.TLS,
		SkipCompatibilityCheck: true, PoolSize: uint(max(1, min(cfg.Upload.Parallel, 4))),
	})
}

func connectConfig(cfg *config.Config) (*qdrant.Client, Endpoint, error) {
	ep, err := EndpointOf(cfg)
	if err != nil {
		return nil, ep, err
	}
	c, err := Connect(cfg, ep)
	return c, ep, err
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
	Events          pipeline.Events
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

// Apply runs the pipeline to completion or to the first error, resuming
// from the checkpoint when it matches the config.
func Apply(ctx context.Context, cfg *config.Config, opts ApplyOptions) (*pipeline.Summary, error) {
	if opts.Log == nil {
		opts.Log = slog.New(slog.DiscardHandler)
	}
	plan, err := pipeline.Compile(cfg)
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
	sf, existed, err := pipeline.OpenState(pipeline.StatePath(stateDir, cfg.Name))
	if err != nil {
		return nil, err
	}
	fields := pipeline.NormalizedFields(cfg)
	hash := pipeline.HashFields(fields)
	summary := &pipeline.Summary{}
	cur := sf.Snapshot()
	switch {
	case !existed || opts.FullRefresh:
		sf.Reset(cfg.Name, hash, fields)
		// Verified downloads stay valid across a refresh: keep their records
		// (for sources whose URL is unchanged) so no byte is fetched twice.
		sf.Update(func(s *pipeline.State) {
			for name, ds := range cur.Downloads {
				if src := cfg.Sources[name]; src != nil && src.URL == ds.URL {
					if s.Downloads == nil {
						s.Downloads = map[string]*pipeline.DownloadState{}
					}
					s.Downloads[name] = ds
				}
			}
		})
	case cur.ConfigHash != hash:
		return nil, fmt.Errorf("%w: %s (state %s); run `snappipe plan` to review, or apply with --full-refresh to start over",
			ErrConfigChanged, strings.Join(pipeline.ChangedKeys(cur.Fields, fields), ", "), sf.Path)
	default:
		summary.Resumed = true
		opts.Log.Info("resuming from checkpoint", "state", sf.Path, "batches_acked", cur.Upsert.AckedCount())
	}
	if err := sf.Flush(); err != nil {
		return nil, err
	}
	client, ep, err := connectConfig(cfg)
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
	rt := &pipeline.Runtime{
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
	err = pipeline.Run(ctx, plan, all.Registry(), rt)
	if ferr := sf.Flush(); ferr != nil && err == nil {
		err = ferr
	}
	return summary, err
}

// FormatBytes renders a byte count for people.
func FormatBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return strconv.FormatInt(n, 10) + " B"
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}

// removeStaleTemps deletes temp files a killed run left in dir. Only the
// lock holder calls it, so no live writer owns them.
func removeStaleTemps(dir string) {
	m, _ := filepath.Glob(filepath.Join(dir, atomicfile.TempPrefix+"*"))
	for _, p := range m {
		os.Remove(p)
	}
}
