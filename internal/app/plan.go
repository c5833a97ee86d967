package app

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/qdrant/go-client/qdrant"
	"github.com/snappipe/snappipe/internal/httpget"
	"github.com/snappipe/snappipe/internal/httpra"
	"github.com/snappipe/snappipe/pipeline"
	"github.com/snappipe/snappipe/stages/batch"
	"github.com/snappipe/snappipe/stages/decode"
	"github.com/snappipe/snappipe/stages/download"
	"github.com/snappipe/snappipe/stages/upsert"
	"google.golang.org/grpc/status"
)

// SourceReport is what plan learned about one source.
type SourceReport struct {
	Name     string `json:"name"`
	Location string `json:"location"` // redacted URL or path
	Format   string `json:"format"`
	Size     int64  `json:"size"`
	ETag     string `json:"etag,omitempty"`
	Describe string `json:"describe,omitempty"`
	Rows     int64  `json:"rows"`
	Cached   bool   `json:"cached,omitempty"`
}

// PlanReport is the result of read-only checks against the world.
type PlanReport struct {
	Pipeline string          `json:"pipeline"`
	Sources  []SourceReport  `json:"sources"`
	Problems []string        `json:"problems,omitempty"`
	Actions  []string        `json:"actions"`
	State    *pipeline.State `json:"-"`
}

// Pending reports whether apply would change anything.
func (r *PlanReport) Pending() bool { return len(r.Actions) > 0 }

// Text renders the report deterministically.
func (r *PlanReport) Text() string {
	var b strings.Builder
	fmt.Fprintf(&b, "Pipeline %s\n\nSources:\n", r.Pipeline)
	for _, s := range r.Sources {
		fmt.Fprintf(&b, "  %s: %s (%s", s.Name, s.Location, s.Format)
		if s.Size >= 0 {
			fmt.Fprintf(&b, ", %d bytes", s.Size)
		}
		if s.ETag != "" {
			fmt.Fprintf(&b, ", etag %s", s.ETag)
		}
		if s.Cached {
			b.WriteString(", cached")
		}
		b.WriteString(")\n")
		if s.Describe != "" {
			fmt.Fprintf(&b, "    %s\n", s.Describe)
		}
	}
	if len(r.Problems) > 0 {
		b.WriteString("\nProblems:\n")
		for _, p := range r.Problems {
			fmt.Fprintf(&b, "  ! %s\n", p)
		}
	}
	if len(r.Actions) == 0 {
		if len(r.Problems) == 0 {
			b.WriteString("\nNo changes: the snapshot is up to date.\n")
		}
		return b.String()
	}
	b.WriteString("\nApply will:\n")
	for i, a := range r.Actions {
		fmt.Fprintf(&b, "  %d. %s\n", i+1, a)
	}
	return b.String()
}

// Plan checks sources, the server and the checkpoint without changing
// anything, and lists what apply would do.
func Plan(ctx context.Context, cfg *pipeline.Config, stateDir string) (*PlanReport, error) {
	stateDir = StateDir(cfg, stateDir)
	r := &PlanReport{Pipeline: cfg.Name, Actions: []string{}, Sources: []SourceReport{}}
	sf, existed, err := pipeline.OpenState(pipeline.StatePath(stateDir, cfg.Name))
	if err != nil {
		return nil, err
	}
	st := sf.Snapshot()
	fields := pipeline.NormalizedFields(cfg)
	fresh := !existed
	if existed && st.ConfigHash != pipeline.HashFields(fields) {
		r.Problems = append(r.Problems, fmt.Sprintf("the checkpoint %s belongs to a different config (changed: %s): apply refuses to resume; use --full-refresh to start over",
			sf.Path, strings.Join(pipeline.ChangedKeys(st.Fields, fields), ", ")))
		fresh = true
		st = pipeline.State{Upsert: pipeline.UpsertState{Rows: -1}}
	}
	r.State = &st
	headers := map[string]*pipeline.SourceHeader{}
	files := map[string]pipeline.FormatFile{}
	used := pipeline.UsedSources(cfg)
	hc := HTTPClient()
	for _, name := range pipeline.SortedKeys(cfg.Sources) {
		src := cfg.Sources[name]
		rep, hdr, ff, err := inspectSource(ctx, hc, cfg, stateDir, name, src, st)
		files[name] = ff
		if err != nil {
			r.Problems = append(r.Problems, fmt.Sprintf("source %s: %v", name, err))
		}
		r.Sources = append(r.Sources, rep)
		if hdr != nil && slices.Contains(used, name) {
			headers[name] = hdr
		}
	}
	total := int64(-1)
	if len(headers) == len(used) {
		total, err = batch.TotalRows(cfg, headers)
		if err != nil {
			r.Problems = append(r.Problems, err.Error())
		}
	}
	limit := cfg.Points.LimitOr()
	for _, name := range pipeline.SortedKeys(cfg.Sources) {
		src := cfg.Sources[name]
		if !src.IsRemote() || !slices.Contains(used, name) {
			continue
		}
		ds := st.Downloads[name]
		if !fresh && (ds != nil && ds.Done || st.Upsert.Done) {
			continue // cached, or every row is already loaded
		}
		var rep SourceReport
		for _, s := range r.Sources {
			if s.Name == name {
				rep = s
			}
		}
		size := "unknown size"
		if rep.Size >= 0 {
			size = fmt.Sprintf("%d bytes", rep.Size)
		}
		f, ff := pipeline.FormatByName(src.Format), files[name]
		switch {
		case limit >= 0 && src.SHA256 == "" && f != nil && f.Prefixable() && ff != nil && ff.PrefixBytes(limit) >= 0 && ff.PrefixBytes(limit) < rep.Size:
			r.Actions = append(r.Actions, fmt.Sprintf("fetch the header and first %d rows of source %s by HTTP Range (%d of %s)", min(limit, rep.Rows), name, ff.PrefixBytes(limit), size))
		case limit >= 0 && src.SHA256 == "" && f != nil && !f.Prefixable():
			r.Actions = append(r.Actions, fmt.Sprintf("read the footer and the pages of the first %d rows of source %s in place by HTTP Range (file: %s)", limit, name, size))
		default:
			r.Actions = append(r.Actions, fmt.Sprintf("download source %s (%s)", name, size))
		}
	}
	coll := cfg.Collection.Name
	client, ep, err := connectConfig(cfg)
	if err != nil {
		return nil, err
	}
	defer client.Close()
	cctx, cancel := context.WithTimeout(ctx, cfg.Qdrant.Timeout.D())
	exists, err := client.CollectionExists(cctx, coll)
	cancel()
	if err != nil {
		// The source checks above stand; say the server part is unknown.
		r.Problems = append(r.Problems, fmt.Sprintf("qdrant at %s could not be reached (%s): the collection was not checked", ep.RESTBase, grpcText(err)))
		r.Actions = append(r.Actions, fmt.Sprintf("prepare collection %q (%s) once the server is reachable", coll, vectorsSummary(cfg)))
	} else {
		r.collectionActions(ctx, cfg, client, exists, st, fresh)
	}
	bs := int64(cfg.Upload.BatchSize)
	if !st.Upsert.Done || fresh {
		acked := int64(0)
		if !fresh && st.Upsert.BatchSize == cfg.Upload.BatchSize {
			acked = st.Upsert.AckedCount()
		}
		if total >= 0 {
			batches := (total + bs - 1) / bs
			r.Actions = append(r.Actions, fmt.Sprintf("upsert %d points in %d batches of %d, %d in parallel (%d batches already acknowledged)",
				max(0, total-acked*bs), batches-acked, bs, cfg.Upload.Parallel, acked))
		} else {
			r.Actions = append(r.Actions, "upsert the sources' rows (row count unknown until the problems above are fixed)")
		}
	}
	if st.Snapshot.Name == "" || fresh {
		r.Actions = append(r.Actions, fmt.Sprintf("create a snapshot of %q on the server", coll))
	}
	dest := cfg.Resolve(cfg.Snapshot.Destination)
	fetchDone := false
	if st.Fetch.Done && !fresh {
		if sum, _, err := httpget.HashFile(st.Fetch.Path); err == nil && sum == st.Fetch.SHA256 {
			fetchDone = true
		}
	}
	if !fetchDone {
		r.Actions = append(r.Actions, fmt.Sprintf("download the snapshot over REST, verify its SHA-256, write it to %s", dest))
	}
	return r, nil
}

// collectionActions adds what apply would do to the collection.
func (r *PlanReport) collectionActions(ctx context.Context, cfg *pipeline.Config, client *qdrant.Client, exists bool, st pipeline.State, fresh bool) {
	coll := cfg.Collection.Name
	var points uint64
	if exists {
		cctx, cancel := context.WithTimeout(ctx, cfg.Qdrant.Timeout.D())
		points, _ = client.Count(cctx, &qdrant.CountPoints{CollectionName: coll, Exact: qdrant.PtrOf(true)})
		info, ierr := client.GetCollectionInfo(cctx, coll)
		cancel()
		if ierr == nil && (cfg.Collection.OnExists == "reuse" || st.Collection.Ready) {
			for _, d := range upsert.DiffVectors(cfg, info) {
				r.Problems = append(r.Problems, fmt.Sprintf("collection %q: %s", coll, d))
			}
		}
	}
	switch {
	case st.Collection.Ready && !fresh:
		if !exists && !st.Upsert.Done {
			r.Problems = append(r.Problems, fmt.Sprintf("collection %q was deleted since the checkpoint recorded it; apply needs --full-refresh", coll))
		}
	case !exists:
		r.Actions = append(r.Actions, fmt.Sprintf("create collection %q (%s)", coll, vectorsSummary(cfg)))
	case cfg.Collection.OnExists == "recreate":
		r.Actions = append(r.Actions, fmt.Sprintf("recreate collection %q: drop it (%d points) and create it (%s)", coll, points, vectorsSummary(cfg)))
	case cfg.Collection.OnExists == "reuse":
		r.Actions = append(r.Actions, fmt.Sprintf("reuse collection %q (%d points)", coll, points))
	default:
		r.Problems = append(r.Problems, fmt.Sprintf("collection %q exists (%d points) and collection.on_exists is fail", coll, points))
	}
	if !(st.Collection.Ready && !fresh) {
		for _, f := range pipeline.SortedKeys(cfg.Collection.PayloadIndexes) {
			r.Actions = append(r.Actions, fmt.Sprintf("create payload index %s (%s)", f, cfg.Collection.PayloadIndexes[f]))
		}
	}
}

// grpcText is a gRPC error's code and message.
func grpcText(err error) string {
	if s, ok := status.FromError(err); ok {
		return s.Code().String() + ": " + s.Message()
	}
	return err.Error()
}

func vectorsSummary(cfg *pipeline.Config) string {
	var parts []string
	for _, n := range pipeline.SortedKeys(cfg.Collection.Vectors) {
		v := cfg.Collection.Vectors[n]
		parts = append(parts, fmt.Sprintf("%s: %d %s %s", n, v.Size, v.Distance, v.Datatype))
	}
	return strings.Join(parts, "; ")
}

// inspectSource stats (path) or HEADs (url) a source and asks its format
// plugin what the file holds (header or footer only), without downloading
// it.
func inspectSource(ctx context.Context, hc *http.Client, cfg *pipeline.Config, stateDir, name string, src *pipeline.Source, st pipeline.State) (SourceReport, *pipeline.SourceHeader, pipeline.FormatFile, error) {
	rep := SourceReport{Name: name, Format: src.Format, Size: -1, Rows: -1}
	format := pipeline.FormatByName(src.Format)
	if format == nil {
		return rep, nil, nil, fmt.Errorf("no format plugin %q is registered", src.Format)
	}
	var ra io.ReaderAt
	var size int64
	if src.IsRemote() {
		rep.Location = httpget.Redact(src.URL)
		cache := download.CachePath(filepath.Join(stateDir, "cache", cfg.Name), name, src.URL)
		if ds := st.Downloads[name]; ds != nil && ds.Done {
			if fi, err := os.Stat(cache); err == nil && fi.Size() == ds.Size {
				rep.Cached, rep.Size, rep.ETag = true, ds.Size, ds.ETag
				f, err := os.Open(cache)
				if err != nil {
					return rep, nil, nil, err
				}
				defer f.Close()
				ra, size = f, fi.Size()
			}
		}
		if ra == nil {
			// Small blocks: plan reads only headers and footers.
			block := int64(16 << 10)
			if !format.Prefixable() {
				block = 64 << 10
			}
			r, err := httpra.Open(ctx, hc, src.URL, download.AuthHeader(), block)
			if err != nil {
				return rep, nil, nil, err
			}
			rep.Size, rep.ETag = r.Size(), r.ETag()
			ra, size = r, r.Size()
		}
	} else {
		p := cfg.Resolve(src.Path)
		rep.Location = src.Path
		f, err := os.Open(p)
		if err != nil {
			return rep, nil, nil, err
		}
		defer f.Close()
		fi, err := f.Stat()
		if err != nil {
			return rep, nil, nil, err
		}
		rep.Size = fi.Size()
		ra, size = f, fi.Size()
	}
	ff, err := format.Probe(ra, size, size, src, rep.Location)
	if err != nil {
		return rep, nil, nil, err
	}
	rep.Describe, rep.Rows = ff.Describe(), ff.Rows()
	var problems []string
	if format.Table() {
		cols := ff.Columns()
		need := func(col, role string) {
			if col != "" && !slices.Contains(cols, col) {
				problems = append(problems, fmt.Sprintf("%s column %q is not in the file (columns: %s)", role, col, strings.Join(cols, ", ")))
			}
		}
		if p := cfg.Points.Payload; p != nil && p.Source == name {
			for _, c := range p.Include {
				need(c, "payload include")
			}
			for _, c := range p.Exclude {
				need(c, "payload exclude")
			}
			need(cfg.Points.ID.Column, "id")
		}
		for _, vn := range pipeline.SortedKeys(cfg.Points.Vectors) {
			if vs := cfg.Points.Vectors[vn]; vs.Source == name {
				need(vs.Column, "vector")
			}
		}
	}
	hdr := &pipeline.SourceHeader{Source: name, Rows: ff.Rows(), Widths: map[string]int{}, Columns: ff.Columns(), Describe: ff.Describe()}
	if len(problems) == 0 {
		// Widths from the first row (tables) or the header (arrays); Open
		// also says whether the rows are all there.
		sel := decode.Selection(cfg, name)
		sel.Payload, sel.AllPayload, sel.ID = nil, false, ""
		rr, err := ff.Open(sel, 0, ff.Rows())
		if err != nil {
			problems = append(problems, err.Error())
		} else {
			hdr.Widths = rr.Widths()
			rr.Close()
		}
	}
	if len(problems) > 0 {
		return rep, hdr, ff, errors.New(strings.Join(problems, "; "))
	}
	return rep, hdr, ff, nil
}
