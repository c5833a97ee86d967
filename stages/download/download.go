// Package download is the stage that fetches a url: source into the cache
// directory, resumably, and verifies it.
package download

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	neturl "net/url"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"time"

	"github.com/snappipe/snappipe/internal/atomicfile"
	"github.com/snappipe/snappipe/internal/httpget"
	"github.com/snappipe/snappipe/internal/httpra"
	"github.com/snappipe/snappipe/pipeline"
	"github.com/snappipe/snappipe/pipeline/config"
)

// Kind is the stage kind.
const Kind = pipeline.KindDownload

// Ports are the messages this stage kind consumes and emits.
var Ports = pipeline.Ports{Emits: []string{pipeline.MsgFile}}

// Download fetches one source.
type Download struct {
	node  string
	name  string
	src   *config.Source
	rt    *pipeline.Runtime
	state pipeline.Section[pipeline.DownloadState]
}

// New is the stage factory.
func New(n *pipeline.Node, rt *pipeline.Runtime) (pipeline.Stage, error) {
	src := rt.Config.Sources[n.Source]
	if src == nil || !src.IsRemote() {
		return nil, fmt.Errorf("source %q has no url", n.Source)
	}
	sec, err := pipeline.DownloadSection(rt, n)
	if err != nil {
		return nil, err
	}
	return &Download{node: n.ID, name: n.Source, src: src, rt: rt, state: sec}, nil
}

// CachePath is where a source's file is cached.
func CachePath(cacheDir, source, url string) string {
	h := sha256.Sum256([]byte(url))
	base := "file"
	if u, err := neturl.Parse(url); err == nil {
		// The path's last element only: no query, no fragment.
		if b := path.Base(u.Path); b != "." && b != "/" && b != "" {
			base = b
		}
	}
	if !safeBase.MatchString(base) {
		base = "file"
	}
	return filepath.Join(cacheDir, fmt.Sprintf("%s-%s-%s", source, hex.EncodeToString(h[:6]), base))
}

// safeBase is what a cache file name may keep of a URL's last element.
var safeBase = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$`)

// Run downloads (or finds in the cache) the file and emits FileReady.
func (d *Download) Run(ctx context.Context, io pipeline.StageIO) error {
	dest := CachePath(d.rt.CacheDir, d.name, d.key())
	if err := os.MkdirAll(filepath.Dir(dest), 0o755); err != nil {
		return err
	}
	ds := d.state.Get()
	if d.rt.Config.Points.LimitOr() >= 0 && d.src.SHA256 == "" {
		// Under a row limit only the bytes those rows need are fetched.
		// (A sha256 pin needs the whole file, so it disables this.)
		f := pipeline.FormatByName(d.src.Format)
		if f == nil {
			return fmt.Errorf("source %s: no format plugin %q is registered", d.name, d.src.Format)
		}
		if !f.Prefixable() {
			// Read in place by the decoder: only the pages the rows need.
			d.recordPrefix(0)
			return io.Emit(ctx, &pipeline.FileReady{Source: d.name, URL: d.src.URL})
		}
		fr, err := d.prefix(ctx, f, dest, ds)
		if err != nil {
			return fmt.Errorf("source %s: %w", d.name, err)
		}
		if fr != nil {
			return io.Emit(ctx, fr)
		}
	}
	if ds.Done && ds.URL == d.key() {
		if fi, err := os.Stat(dest); err == nil && fi.Size() == ds.Size {
			d.rt.Log.Info("download cached", "source", d.name, "path", dest, "bytes", fi.Size())
			return io.Emit(ctx, &pipeline.FileReady{Source: d.name, Path: dest, Size: fi.Size(), FullSize: fi.Size(), Complete: true})
		}
	}
	// A prefix fetched by an earlier limited run becomes the start of the
	// whole download.
	if _, err := os.Stat(dest + ".part"); os.IsNotExist(err) {
		// The head's ETag goes along, so If-Range restarts the download
		// should the file have changed since.
		if etag, err := os.ReadFile(dest + ".head.etag"); err == nil && len(etag) > 0 {
			if os.Rename(dest+".head", dest+".part") == nil {
				atomicfile.WriteFile(dest+".part.etag", etag, 0o644)
			}
		}
	}
	os.Remove(dest + ".head")
	os.Remove(dest + ".head.etag")
	var declared func([]byte) int64
	if sd, ok := pipeline.FormatByName(d.src.Format).(pipeline.SizeDeclarer); ok {
		declared = sd.DeclaredSize
	}
	res, err := httpget.Get(ctx, d.rt.HTTP, httpget.Request{
		URL: d.src.URL, Header: AuthHeader(), Dest: dest, SHA256: d.src.SHA256, DeclaredSize: declared, MaxUndeclared: d.rt.Config.Download.MaxUndeclaredSize,
		MaxAttempts: d.rt.Config.Upload.MaxAttempts, MaxElapsed: d.rt.Config.Upload.MaxElapsed.D(), IdleTimeout: d.rt.Config.Download.IdleTimeout.D(),
		OnRetry: d.retrying,
		Progress: func(done, total int64) {
			d.rt.Events.Progress(d.node, done, total, "bytes")
			d.state.UpdateThrottled(time.Second, func(ds *pipeline.DownloadState) {
				if ds.URL == d.key() {
					ds.Bytes = done
				}
			})
		},
		OnMeta: func(m httpget.Meta) {
			d.state.Update(func(ds *pipeline.DownloadState) {
				if ds.URL != d.key() {
					*ds = pipeline.DownloadState{URL: d.key()}
				}
				ds.FinalURL, ds.Size, ds.ETag = config.RedactURL(m.FinalURL), m.Size, m.ETag
			})
		},
	})
	d.rt.AddFetched(res.Fetched)
	if err != nil {
		return fmt.Errorf("source %s: %w", d.name, err)
	}
	fi, err := os.Stat(dest)
	if err != nil {
		return err
	}
	if err := d.state.Update(func(ds *pipeline.DownloadState) {
		*ds = pipeline.DownloadState{URL: d.key(), FinalURL: config.RedactURL(res.FinalURL), Size: fi.Size(), ETag: res.ETag,
			SHA256: res.SHA256, Bytes: fi.Size(), Done: true}
	}); err != nil {
		return err
	}
	d.rt.Log.Info("downloaded", "source", d.name, "bytes", fi.Size(), "sha256", res.SHA256)
	return io.Emit(ctx, &pipeline.FileReady{Source: d.name, Path: dest, Size: fi.Size(), FullSize: fi.Size(), Complete: true})
}

var _ pipeline.Stage = (*Download)(nil)

func (d *Download) retrying(attempt int, err error, wait time.Duration) {
	d.rt.Log.Warn("download failed; retrying", "source", d.name, "attempt", attempt, "in", wait.Round(time.Millisecond), "err", err)
}

// key is the source URL as the checkpoint and the cache know it: redacted
// (config.RedactURL), so no secret is stored and a rotated token finds the
// same download.
func (d *Download) key() string { return config.RedactURL(d.src.URL) }

// AuthHeader carries HF_TOKEN as a bearer token when it is set.
func AuthHeader() http.Header {
	hdr := http.Header{}
	if tok := os.Getenv("HF_TOKEN"); tok != "" {
		hdr.Set("Authorization", "Bearer "+tok)
	}
	return hdr
}

func (d *Download) recordPrefix(bytes int64) {
	d.state.Update(func(ds *pipeline.DownloadState) {
		if ds.URL != d.key() {
			*ds = pipeline.DownloadState{URL: d.key(), Size: -1}
		}
		ds.Prefix = true
		if bytes > ds.Bytes {
			ds.Bytes = bytes
		}
	})
}

// prefix fetches the bytes the row limit needs (the format says how many,
// from its header) into dest+".head". It returns nil when the limit covers
// the whole file (the caller then downloads it whole).
func (d *Download) prefix(ctx context.Context, f pipeline.Format, dest string, ds pipeline.DownloadState) (*pipeline.FileReady, error) {
	head := dest + ".head"
	if ds.Prefix && ds.URL == d.key() && ds.Bytes > 0 {
		if fi, err := os.Stat(head); err == nil && fi.Size() == ds.Bytes {
			return &pipeline.FileReady{Source: d.name, Path: head, Size: fi.Size(), FullSize: ds.Size}, nil
		}
	}
	ra, err := httpra.Open(ctx, d.rt.HTTP, d.src.URL, AuthHeader(), 4<<10, httpra.IdleTimeout(d.rt.Config.Download.IdleTimeout.D()))
	if err != nil {
		return nil, err
	}
	ff, err := f.Probe(ra, ra.Size(), ra.Size(), d.src, httpget.Redact(d.src.URL))
	d.rt.AddFetched(ra.Fetched())
	if err != nil {
		return nil, err
	}
	need := ff.PrefixBytes(d.rt.Config.Points.LimitOr())
	if need < 0 || need >= ra.Size() {
		return nil, nil
	}
	// The prefix streams to disk by one ranged, resumable download (never
	// held in memory), verified by its length.
	res, err := httpget.Get(ctx, d.rt.HTTP, httpget.Request{
		URL: d.src.URL, Header: AuthHeader(), Dest: head, Limit: need,
		MaxAttempts: d.rt.Config.Upload.MaxAttempts, MaxElapsed: d.rt.Config.Upload.MaxElapsed.D(), IdleTimeout: d.rt.Config.Download.IdleTimeout.D(),
		OnRetry:  d.retrying,
		Progress: func(done, total int64) { d.rt.Events.Progress(d.node, done, need, "bytes") },
	})
	d.rt.AddFetched(res.Fetched)
	if err != nil {
		return nil, err
	}
	if res.Validator != "" {
		atomicfile.WriteFile(head+".etag", []byte(res.Validator), 0o644)
	} else if v := ra.Validator(); v != "" {
		atomicfile.WriteFile(head+".etag", []byte(v), 0o644)
	}
	d.state.Update(func(ds *pipeline.DownloadState) {
		*ds = pipeline.DownloadState{URL: d.key(), Size: ra.Size(), ETag: ra.ETag(), Bytes: need, Prefix: true}
	})
	d.rt.Log.Info("fetched the rows the limit needs", "source", d.name, "bytes", need, "of", ra.Size())
	return &pipeline.FileReady{Source: d.name, Path: head, Size: need, FullSize: ra.Size()}, nil
}
