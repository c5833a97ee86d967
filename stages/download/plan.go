package download

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/snappipe/snappipe/internal/httpget"
	"github.com/snappipe/snappipe/internal/httpra"
	"github.com/snappipe/snappipe/pipeline"
)

// Plan HEADs the source (or finds it in the cache), has its format read
// the header or footer by small Range reads, says what apply would fetch,
// and hands the probed file to the decoder's plan.
func (d *Download) Plan(ctx context.Context, pc *pipeline.PlanContext) error {
	if d.rt.LayoutOf().Sharded {
		return nil // the shard set's files were probed for the layout
	}
	f := pipeline.FormatByName(d.src.Format)
	rep := pipeline.SourceReport{Name: d.name, Location: httpget.Redact(d.src.URL), Format: d.src.Format, Size: -1, Rows: -1}
	pf := &pipeline.PlanFile{Report: rep}
	defer func() { pf.Report = rep; pc.Put(pf) }()
	ds := d.state.Get()
	cache := CachePath(d.rt.CacheDir, d.name, d.key())
	var ff pipeline.FormatFile
	if ds.Done && ds.URL == d.key() {
		if fi, err := os.Stat(cache); err == nil && fi.Size() == ds.Size {
			file, err := os.Open(cache)
			if err != nil {
				pc.Problem("source %s: %v", d.name, err)
				return nil
			}
			pf.Closer = file
			rep.Cached, rep.Size, rep.ETag = true, ds.Size, ds.ETag
			if ff, err = f.Probe(file, fi.Size(), fi.Size(), d.src, filepath.Base(cache)); err != nil {
				pc.Problem("source %s: %v", d.name, err)
				return nil
			}
		}
	}
	if ff == nil {
		// Small blocks: plan reads only headers and footers.
		block := int64(16 << 10)
		if !f.Prefixable() {
			block = 64 << 10
		}
		ra, err := httpra.Open(ctx, d.rt.HTTP, d.src.URL, AuthHeader(), block, httpra.IdleTimeout(d.rt.Config.Download.IdleTimeout.D()))
		if err != nil {
			pc.Problem("source %s: %v", d.name, err)
			return nil
		}
		rep.Size, rep.ETag = ra.Size(), ra.ETag()
		if ff, err = f.Probe(ra, ra.Size(), ra.Size(), d.src, rep.Location); err != nil {
			pc.Problem("source %s: %v", d.name, err)
			return nil
		}
	}
	pf.File = ff
	rep.Describe, rep.Rows = ff.Describe(), ff.Rows()
	if _, loaded := d.rt.Resume.AllLoaded(); !pc.Fresh && (ds.Done && ds.URL == d.key() || loaded) {
		return nil // cached, or every row is already loaded
	}
	size := "unknown size"
	if rep.Size >= 0 {
		size = fmt.Sprintf("%d bytes", rep.Size)
	}
	limit := d.rt.Config.Points.LimitOr()
	switch {
	case limit >= 0 && d.src.SHA256 == "" && f.Prefixable() && ff.PrefixBytes(limit) >= 0 && ff.PrefixBytes(limit) < rep.Size:
		cached := ""
		if ds.Prefix && ds.URL == d.key() && ds.Bytes > 0 && ds.Bytes < ff.PrefixBytes(limit) {
			cached = fmt.Sprintf("; the first %d bytes are in the cache from a run with a lower limit", ds.Bytes)
		}
		pc.Action("fetch the header and first %d rows of source %s by HTTP Range (%d of %s%s)", min(limit, rep.Rows), d.name, ff.PrefixBytes(limit), size, cached)
	case limit >= 0 && d.src.SHA256 == "" && !f.Prefixable():
		pc.Action("read the footer and the pages of the first %d rows of source %s in place by HTTP Range (file: %s)", limit, d.name, size)
	default:
		pc.Action("download source %s (%s)", d.name, size)
	}
	return nil
}

// Describe says what the checkpoint holds for this download.
func (d *Download) Describe() []string {
	if l := d.rt.LayoutOf(); l.Sharded {
		return d.describeShards(l)
	}
	ds := d.state.Get()
	switch {
	case ds.URL != d.key():
		return []string{fmt.Sprintf("  download %-10s pending", d.name)}
	case ds.Done:
		return []string{fmt.Sprintf("  download %-10s done (%d bytes, sha256 %s)", d.name, ds.Size, ds.SHA256)}
	case ds.Prefix:
		return []string{fmt.Sprintf("  download %-10s the rows a limit needs (%d bytes of %d)", d.name, ds.Bytes, ds.Size)}
	default:
		return []string{fmt.Sprintf("  download %-10s partial (%d of %d bytes)", d.name, ds.Bytes, ds.Size)}
	}
}

// describeShards sums up a shard set's downloads: each file is fetched as
// its shard comes to load and removed from the cache once read, so the
// shard table (loaded rows) is the progress; this says what the cache
// holds now.
func (d *Download) describeShards(l *pipeline.Layout) []string {
	recs, err := pipeline.DownloadShards(d.rt, d.nodeRef)
	if err != nil {
		return []string{fmt.Sprintf("  download %-10s %v", d.name, err)}
	}
	var cached, partial int
	for key, ds := range recs {
		dest := CachePath(d.rt.CacheDir, key, ds.URL)
		switch _, err := os.Stat(dest); {
		case ds.Done && err == nil:
			cached++
		case !ds.Done && !ds.Prefix:
			if _, err := os.Stat(dest + ".part"); err == nil {
				partial++
			}
		}
	}
	return []string{fmt.Sprintf("  download %-10s shard set of %d files (each fetched as its shard loads, removed once read): %d in the cache, %d partly downloaded",
		d.name, len(l.Shards), cached, partial)}
}
