// Package download is the stage that fetches a url: source into the cache
// directory, resumably, and verifies it.
package download

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	neturl "net/url"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"time"

	"golang.org/x/sync/errgroup"

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
	nodeRef *pipeline.Node
	node    string
	name    string
	src     *config.Source
	rt      *pipeline.Runtime
	state   pipeline.Section[pipeline.DownloadState]
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
	return &Download{node: n.ID, nodeRef: n, name: n.Source, src: src, rt: rt, state: sec}, nil
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

// Run downloads (or finds in the cache) the file and emits FileReady; for
// a shard set, every shard the run loads, in index order, several at once.
func (d *Download) Run(ctx context.Context, io pipeline.StageIO) error {
	if l := d.rt.LayoutOf(); l.Sharded {
		return d.runShards(ctx, io, l)
	}
	fl := file{name: d.name, url: d.src.URL, state: d.state, limit: d.rt.Config.Points.LimitOr()}
	fl.early = func(fr *pipeline.FileReady) error { return io.Emit(ctx, fr) }
	fr, err := d.fetch(ctx, fl)
	if err != nil || fr == nil {
		return err // nil: handed over early as a stream
	}
	return io.Emit(ctx, fr)
}

// file is one file to fetch: a plain source, or one shard of a set.
type file struct {
	name  string // cache and log name: the source, or source#index
	url   string
	state pipeline.Section[pipeline.DownloadState]
	limit int64 // rows needed from its start; -1 all
	shard int
	// early, if set, receives the file as a Stream as soon as its size is
	// known (formats read from a prefix, download.stream); fetch then
	// returns nil once the download is verified.
	early func(*pipeline.FileReady) error
}

// fetch downloads (or finds in the cache) one file.
func (d *Download) fetch(ctx context.Context, fl file) (*pipeline.FileReady, error) {
	key := config.RedactURL(fl.url)
	dest := CachePath(d.rt.CacheDir, fl.name, key)
	if err := os.MkdirAll(filepath.Dir(dest), 0o755); err != nil {
		return nil, err
	}
	ds := fl.state.Get()
	// A whole verified file in the cache serves any limit.
	if ds.Done && ds.URL == key {
		if fi, err := os.Stat(dest); err == nil && fi.Size() == ds.Size {
			d.rt.Log.Info("download cached", "source", fl.name, "path", dest, "bytes", fi.Size())
			return &pipeline.FileReady{Source: d.name, Path: dest, Size: fi.Size(), FullSize: fi.Size(), Complete: true, Shard: fl.shard}, nil
		}
	}
	if fl.limit >= 0 && d.src.SHA256 == "" {
		// Under a row limit only the bytes those rows need are fetched.
		// (A sha256 pin needs the whole file, so it disables this.)
		f := pipeline.FormatByName(d.src.Format)
		if f == nil {
			return nil, fmt.Errorf("source %s: no format plugin %q is registered", d.name, d.src.Format)
		}
		var fr *pipeline.FileReady
		var err error
		if f.Prefixable() {
			fr, err = d.prefix(ctx, f, fl, dest, ds)
		} else {
			// Read in place by the decoder: only the pages the rows need,
			// when the server answers Range requests.
			fr, err = d.inPlace(ctx, fl)
		}
		if err != nil {
			return nil, fmt.Errorf("source %s: %w", fl.name, err)
		}
		if fr != nil {
			return fr, nil
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
	// Formats read front to back are decoded while they download.
	var (
		stream  *pipeline.Stream
		handed  bool
		getCtx  = ctx
		cancel  = func() {}
		handErr error
	)
	if f := pipeline.FormatByName(d.src.Format); fl.early != nil && d.rt.Config.Download.Stream && f != nil && f.Prefixable() {
		var have int64
		if st, err := os.Stat(dest + ".part"); err == nil {
			have = st.Size()
		}
		getCtx, cancel = context.WithCancel(ctx)
		stream = pipeline.NewStream(dest+".part", -1, have)
	}
	defer cancel()
	req := httpget.Request{
		URL: fl.url, Header: AuthHeader(), Dest: dest, SHA256: d.src.SHA256, DeclaredSize: declared, MaxUndeclared: d.rt.Config.Download.MaxUndeclaredSize,
		MaxAttempts: d.rt.Config.Upload.MaxAttempts, MaxElapsed: d.rt.Config.Upload.MaxElapsed.D(), IdleTimeout: d.rt.Config.Download.IdleTimeout.D(),
		OnRetry: d.retrying,
		Progress: func(done, total int64) {
			d.rt.Events.Progress(d.node, done, total, "bytes")
			fl.state.UpdateThrottled(time.Second, func(ds *pipeline.DownloadState) {
				if ds.URL == key {
					ds.Bytes = done
				}
			})
		},
		OnMeta: func(m httpget.Meta) {
			// Not saved at once: a resumed download is validated by the
			// .part's own ETag file, not by this record (with thousands of
			// shards, a save per file start was most of a run's CPU).
			fl.state.UpdateThrottled(time.Second, func(ds *pipeline.DownloadState) {
				if ds.URL != key {
					*ds = pipeline.DownloadState{URL: key}
				}
				ds.FinalURL, ds.Size, ds.ETag = config.RedactURL(m.FinalURL), m.Size, m.ETag
			})
			if stream != nil && !handed && m.Size >= 0 {
				stream.SetSize(m.Size)
			}
		},
	}
	if stream != nil {
		req.OnStart = func(offset int64) {
			if err := stream.Started(offset); err != nil {
				// Bytes already handed out were dropped: whatever error
				// the run ends with, its acknowledgements are forgotten.
				d.rt.RequireReplay()
				cancel()
				return
			}
			if !handed && stream.Size() >= 0 {
				handed = true
				handErr = fl.early(&pipeline.FileReady{Source: d.name, Size: stream.Size(), FullSize: stream.Size(), Complete: true, Shard: fl.shard, Stream: stream})
				if handErr != nil {
					cancel()
				}
			}
		}
		req.OnWrite = stream.Wrote
	}
	res, err := httpget.Get(getCtx, d.rt.HTTP, req)
	d.rt.AddFetched(res.Fetched)
	if handErr != nil {
		stream.Finish("", handErr)
		return nil, handErr
	}
	if stream != nil {
		var ferr error
		switch serr := stream.Err(); {
		case serr != nil && errors.Is(serr, pipeline.ErrStreamReset):
			ferr = fmt.Errorf("source %s: %w", fl.name, serr) // a *ReplayError
		case err != nil && handed && errors.Is(err, httpget.ErrChecksum):
			d.rt.RequireReplay()
			ferr = &pipeline.ReplayError{Err: fmt.Errorf("source %s: %w", fl.name, err)}
		case err != nil:
			ferr = fmt.Errorf("source %s: %w", fl.name, err)
		}
		if ferr != nil {
			stream.Finish("", ferr) // the decoder reading it fails with the same error
			if errors.As(ferr, new(*pipeline.ReplayError)) {
				// Its bytes are not to be trusted either: the next run
				// starts the download afresh.
				os.Remove(dest + ".part")
				os.Remove(dest + ".part.etag")
			}
			return nil, ferr
		}
	}
	if err != nil {
		return nil, fmt.Errorf("source %s: %w", fl.name, err)
	}
	fi, err := os.Stat(dest)
	if err != nil {
		return nil, err
	}
	if err := fl.state.Update(func(ds *pipeline.DownloadState) {
		*ds = pipeline.DownloadState{URL: key, FinalURL: config.RedactURL(res.FinalURL), Size: fi.Size(), ETag: res.ETag,
			SHA256: res.SHA256, Bytes: fi.Size(), Done: true}
	}); err != nil {
		return nil, err
	}
	d.rt.Log.Info("downloaded", "source", fl.name, "bytes", fi.Size(), "sha256", res.SHA256)
	if handed {
		stream.Finish(dest, nil)
		return nil, nil
	}
	if stream != nil {
		stream.Finish(dest, nil) // never handed over (no size known): emitted whole
	}
	return &pipeline.FileReady{Source: d.name, Path: dest, Size: fi.Size(), FullSize: fi.Size(), Complete: true, Shard: fl.shard}, nil
}

// runShards fetches the shards the run loads: up to
// download.parallel_shards at once, emitted in index order (memory and
// disk bounded by that parallelism, not by the number of shards). Shards
// every batch of which is acknowledged are skipped.
func (d *Download) runShards(ctx context.Context, io pipeline.StageIO, l *pipeline.Layout) error {
	var spans []pipeline.ShardSpan
	for _, s := range l.Shards {
		if !l.SpanDone(d.rt.Resume, s) {
			spans = append(spans, s)
		}
	}
	par := max(1, d.rt.Config.Download.ParallelShards)
	results := make([]chan *pipeline.FileReady, len(spans))
	done := make([]chan struct{}, len(spans)) // closed when the shard's download ended
	for i := range results {
		results[i] = make(chan *pipeline.FileReady, 1)
		done[i] = make(chan struct{})
	}
	g, gctx := errgroup.WithContext(ctx)
	sem := make(chan struct{}, par)
	g.Go(func() error {
		for i, s := range spans {
			select {
			case sem <- struct{}{}:
			case <-gctx.Done():
				return gctx.Err()
			}
			g.Go(func() error {
				defer close(done[i])
				sec, err := pipeline.DownloadShardSection(d.rt, d.nodeRef, pipeline.ShardKey(d.name, s.Index))
				if err != nil {
					return err
				}
				limit := int64(-1)
				if s.Rows < s.FileRows {
					limit = s.Rows
				}
				fl := file{name: pipeline.ShardKey(d.name, s.Index), url: s.Files[d.name].URL, state: sec, limit: limit, shard: s.Index}
				fl.early = func(fr *pipeline.FileReady) error { results[i] <- fr; return nil }
				fr, err := d.fetch(gctx, fl)
				if err != nil || fr == nil {
					return err // nil: handed over early as a stream
				}
				results[i] <- fr
				return nil
			})
		}
		return nil
	})
	g.Go(func() error {
		for i := range spans {
			var fr *pipeline.FileReady
			select {
			case fr = <-results[i]:
			case <-gctx.Done():
				return gctx.Err()
			}
			if err := io.Emit(gctx, fr); err != nil {
				return err
			}
			// The next shard may start once this one is handed on and its
			// download ended (a streamed shard is handed on while it still
			// downloads): at most parallel_shards downloads at once.
			select {
			case <-done[i]:
			case <-gctx.Done():
				return gctx.Err()
			}
			<-sem
		}
		return nil
	})
	return g.Wait()
}

var _ pipeline.Stage = (*Download)(nil)

func (d *Download) retrying(attempt int, err error, wait time.Duration) {
	d.rt.Log.Warn("download failed; retrying", "source", d.name, "attempt", attempt, "in", wait.Round(time.Millisecond), "err", err)
}

// AuthHeader carries HF_TOKEN as a bearer token when it is set.
func AuthHeader() http.Header { return httpget.HFAuth() }

func (d *Download) recordPrefix(fl file, bytes int64) {
	key := config.RedactURL(fl.url)
	fl.state.Update(func(ds *pipeline.DownloadState) {
		if ds.URL != key {
			*ds = pipeline.DownloadState{URL: key, Size: -1}
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
func (d *Download) prefix(ctx context.Context, f pipeline.Format, fl file, dest string, ds pipeline.DownloadState) (*pipeline.FileReady, error) {
	head := dest + ".head"
	key := config.RedactURL(fl.url)
	if ds.Prefix && ds.URL == key && ds.Bytes > 0 {
		if fi, err := os.Stat(head); err == nil && fi.Size() == ds.Bytes {
			need := cachedNeed(f, head, ds, d.src, fl.limit)
			if need >= 0 && need <= ds.Bytes {
				return &pipeline.FileReady{Source: d.name, Path: head, Size: fi.Size(), FullSize: ds.Size, Shard: fl.shard}, nil
			}
			// A raised limit needs more rows: the prefix fetched before
			// is the start of the longer one (If-Range by its ETag).
			if etag, err := os.ReadFile(head + ".etag"); err == nil && len(etag) > 0 {
				if _, err := os.Stat(head + ".part"); os.IsNotExist(err) && os.Rename(head, head+".part") == nil {
					atomicfile.WriteFile(head+".part.etag", etag, 0o644)
				}
			}
		}
	}
	ra, err := httpra.Open(ctx, d.rt.HTTP, fl.url, AuthHeader(), 4<<10, httpra.IdleTimeout(d.rt.Config.Download.IdleTimeout.D()))
	if err != nil {
		return nil, err
	}
	ff, err := f.Probe(ra, ra.Size(), ra.Size(), d.src, httpget.Redact(fl.url))
	d.rt.AddFetched(ra.Fetched())
	if errors.Is(err, httpra.ErrNoRange) {
		d.noRanges(fl)
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	need := ff.PrefixBytes(fl.limit)
	if need < 0 || need >= ra.Size() {
		return nil, nil
	}
	// The prefix streams to disk by one ranged, resumable download (never
	// held in memory), verified by its length.
	res, err := httpget.Get(ctx, d.rt.HTTP, httpget.Request{
		URL: fl.url, Header: AuthHeader(), Dest: head, Limit: need,
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
	fl.state.Update(func(ds *pipeline.DownloadState) {
		*ds = pipeline.DownloadState{URL: key, Size: ra.Size(), ETag: ra.ETag(), Bytes: need, Prefix: true}
	})
	d.rt.Log.Info("fetched the rows the limit needs", "source", fl.name, "bytes", need, "of", ra.Size())
	return &pipeline.FileReady{Source: d.name, Path: head, Size: need, FullSize: ra.Size(), Shard: fl.shard}, nil
}

// inPlace hands the decoder the URL to read the limit's pages by Range,
// or returns nil (download the whole file) when the server ignores Range.
func (d *Download) inPlace(ctx context.Context, fl file) (*pipeline.FileReady, error) {
	ra, err := httpra.Open(ctx, d.rt.HTTP, fl.url, AuthHeader(), 4<<10, httpra.IdleTimeout(d.rt.Config.Download.IdleTimeout.D()))
	if err != nil {
		return nil, err
	}
	ok, err := ra.RangesWork()
	d.rt.AddFetched(ra.Fetched())
	if err != nil || !ok {
		if err == nil {
			d.noRanges(fl)
		}
		return nil, err
	}
	d.recordPrefix(fl, 0)
	return &pipeline.FileReady{Source: d.name, URL: fl.url, Shard: fl.shard}, nil
}

// noRanges says why a limited run downloads a whole file: only a whole
// file can be had from a server that ignores Range requests.
func (d *Download) noRanges(fl file) {
	d.rt.Log.Warn("the server ignores HTTP Range requests: downloading the whole file for the rows the limit needs", "source", fl.name, "url", httpget.Redact(fl.url))
}

// cachedNeed is how many leading bytes the first limit rows take, read
// from the header of a prefix fetched before (-1 when it cannot tell).
func cachedNeed(f pipeline.Format, head string, ds pipeline.DownloadState, src *config.Source, limit int64) int64 {
	h, err := os.Open(head)
	if err != nil {
		return -1
	}
	defer h.Close()
	ff, err := f.Probe(h, ds.Size, ds.Bytes, src, head)
	if err != nil {
		return -1
	}
	return ff.PrefixBytes(limit)
}

// key is the source URL as the checkpoint and the cache know it: redacted
// (config.RedactURL), so no secret is stored and a rotated token finds the
// same download.
func (d *Download) key() string { return config.RedactURL(d.src.URL) }
