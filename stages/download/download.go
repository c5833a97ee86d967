// Package download is the stage that fetches a url: source into the cache
// directory, resumably, and verifies it.
package download

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"os"
	"path"
	"path/filepath"

	"github.com/snappipe/snappipe/internal/httpget"
	"github.com/snappipe/snappipe/pipeline"
)

// Kind is the stage kind.
const Kind = pipeline.KindDownload

// Download fetches one source.
type Download struct {
	node string
	name string
	src  *pipeline.Source
	rt   *pipeline.Runtime
}

// New is the stage factory.
func New(n *pipeline.Node, rt *pipeline.Runtime) (pipeline.Stage, error) {
	src := rt.Config.Sources[n.Source]
	if src == nil || !src.IsRemote() {
		return nil, fmt.Errorf("source %q has no url", n.Source)
	}
	return &Download{node: n.ID, name: n.Source, src: src, rt: rt}, nil
}

// CachePath is where a source's file is cached.
func CachePath(cacheDir, source, url string) string {
	h := sha256.Sum256([]byte(url))
	base := path.Base(httpget.Redact(url))
	if base == "." || base == "/" {
		base = "file"
	}
	return filepath.Join(cacheDir, fmt.Sprintf("%s-%s-%s", source, hex.EncodeToString(h[:6]), base))
}

// Run downloads (or finds in the cache) the file and emits FileReady.
func (d *Download) Run(ctx context.Context, io pipeline.StageIO) error {
	dest := CachePath(d.rt.CacheDir, d.name, d.src.URL)
	if err := os.MkdirAll(filepath.Dir(dest), 0o755); err != nil {
		return err
	}
	st := d.rt.State.Snapshot()
	if ds := st.Downloads[d.name]; ds != nil && ds.Done && ds.URL == d.src.URL {
		if fi, err := os.Stat(dest); err == nil && fi.Size() == ds.Size {
			d.rt.Log.Info("download cached", "source", d.name, "path", dest, "bytes", fi.Size())
			return io.Emit(ctx, &pipeline.FileReady{Source: d.name, Path: dest, Size: fi.Size(), Complete: true})
		}
	}
	hdr := http.Header{}
	if tok := os.Getenv("HF_TOKEN"); tok != "" {
		hdr.Set("Authorization", "Bearer "+tok)
	}
	res, err := httpget.Get(ctx, d.rt.HTTP, httpget.Request{
		URL: d.src.URL, Header: hdr, Dest: dest, SHA256: d.src.SHA256, MaxAttempts: d.rt.Config.Upload.MaxAttempts,
		Progress: func(done, total int64) { d.rt.Events.Progress(d.node, done, total, "bytes") },
		OnMeta: func(m httpget.Meta) {
			d.rt.State.Update(func(s *pipeline.State) {
				if s.Downloads == nil {
					s.Downloads = map[string]*pipeline.DownloadState{}
				}
				ds := s.Downloads[d.name]
				if ds == nil || ds.URL != d.src.URL {
					ds = &pipeline.DownloadState{URL: d.src.URL}
					s.Downloads[d.name] = ds
				}
				ds.FinalURL, ds.Size, ds.ETag = m.FinalURL, m.Size, m.ETag
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
	if err := d.rt.State.Update(func(s *pipeline.State) {
		if s.Downloads == nil {
			s.Downloads = map[string]*pipeline.DownloadState{}
		}
		s.Downloads[d.name] = &pipeline.DownloadState{URL: d.src.URL, FinalURL: res.FinalURL, Size: fi.Size(), ETag: res.ETag,
			SHA256: res.SHA256, Bytes: fi.Size(), Done: true}
	}); err != nil {
		return err
	}
	d.rt.Log.Info("downloaded", "source", d.name, "bytes", fi.Size(), "sha256", res.SHA256)
	return io.Emit(ctx, &pipeline.FileReady{Source: d.name, Path: dest, Size: fi.Size(), Complete: true})
}

var _ pipeline.Stage = (*Download)(nil)
