package pipeline

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"sort"
	"strings"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/snappipe/snappipe/internal/httpget"
	"github.com/snappipe/snappipe/internal/httpra"
	"github.com/snappipe/snappipe/pipeline/config"
)

// Layout is how a run's rows lie over files. A plain config is one file
// per source (Sharded false; rows known once the stages read the headers).
// A shard set is many files per source, paired by shard index: shards in
// index order make one global row space, so `id: row` is the global row
// index and appending shards keeps earlier ids stable. Batches never cross
// a shard, so a partition can load its shards alone.
type Layout struct {
	Sharded   bool
	BatchSize int
	// Shards are the shards this run loads (after limit and partition).
	Shards []ShardSpan
	// AllShards is the number of shards in the set; SetRows the rows in
	// all of them (before limit and partition).
	AllShards int
	SetRows   int64
	// Rows and Batches are what this run loads.
	Rows    int64
	Batches int64
	// Partition, when set, is the part of the shards this run loads.
	Partition *Partition
}

// ShardSpan is one shard as a run loads it.
type ShardSpan struct {
	Index    int
	Files    map[string]config.ShardFile // by source
	Start    int64                       // global row of its first row
	FileRows int64                       // rows in its files
	Rows     int64                       // rows this run loads (a limit may cut the last shard)
	FirstSeq int64                       // the run's batch number of its first batch
}

// Batches is the number of batches of the span.
func (s ShardSpan) Batches(bs int) int64 { return (s.Rows + int64(bs) - 1) / int64(bs) }

// Partition is part I of N: shard k belongs to partition k mod N.
type Partition struct{ I, N int }

func (p Partition) String() string { return fmt.Sprintf("%d/%d", p.I, p.N) }

// Owns reports whether shard index k belongs to the partition.
func (p Partition) Owns(k int) bool { return k%p.N == p.I }

// SingleLayout is the layout of a plain config: rows become known from the
// headers (-1 until then); batch seq = row / batch size.
func SingleLayout(bs int) *Layout { return &Layout{BatchSize: bs, Rows: -1, Batches: -1} }

// Seq is the batch number of the batch starting at a global row.
func (l *Layout) Seq(row int64) int64 {
	if !l.Sharded {
		return row / int64(l.BatchSize)
	}
	i := sort.Search(len(l.Shards), func(i int) bool { return l.Shards[i].Start+l.Shards[i].Rows > row })
	if i == len(l.Shards) {
		return l.Batches
	}
	s := l.Shards[i]
	return s.FirstSeq + (row-s.Start)/int64(l.BatchSize)
}

// BatchCount is how many batches rows make (plain configs: by rows).
func (l *Layout) BatchCount(rows int64) int64 {
	if l.Sharded {
		return l.Batches
	}
	return (rows + int64(l.BatchSize) - 1) / int64(l.BatchSize)
}

// RowsOfBatches is how many rows the acknowledged batches hold.
func (l *Layout) RowsOfBatches(u UpsertState) int64 {
	if !l.Sharded {
		return u.AckedRows()
	}
	var n int64
	bs := int64(l.BatchSize)
	for _, s := range l.Shards {
		for j := int64(0); j < s.Batches(l.BatchSize); j++ {
			if u.Acked(s.FirstSeq + j) {
				n += min(bs, s.Rows-j*bs)
			}
		}
	}
	return n
}

// SpanDone reports whether every batch of a span is acknowledged in r.
func (l *Layout) SpanDone(r Resume, s ShardSpan) bool {
	for j := int64(0); j < s.Batches(l.BatchSize); j++ {
		if !r.Acked(l.BatchSize, s.FirstSeq+j) {
			return false
		}
	}
	return true
}

// ShardRowsState caches one shard file's row count, keyed by its
// (redacted) location and validated by size (and ETag for URLs).
type ShardRowsState struct {
	Location string `json:"location"`
	Size     int64  `json:"size"`
	ETag     string `json:"etag,omitempty"`
	Rows     int64  `json:"rows"`
}

// LayoutOptions tune BuildLayout.
type LayoutOptions struct {
	HTTP      *http.Client
	Header    http.Header // for url: shards (HF_TOKEN)
	Partition *Partition
	// Parallel probes at once (default 8).
	Parallel int
	// Cache, when set, remembers row counts across runs (the state).
	Cache *StateFile
}

// BuildLayout lists every source's files, pairs shard sets by index, and
// for shard sets reads each file's row count from its header or footer
// (HTTP Range reads for URLs; cached in the state). Missing shards, row
// counts that differ within a shard, and a set without rows are errors
// naming the shards.
func BuildLayout(ctx context.Context, c *config.Config, o LayoutOptions) (*Layout, error) {
	used := config.UsedSources(c)
	sets := map[string][]config.ShardFile{}
	sharded := map[string]bool{}
	for _, name := range used {
		s := c.Sources[name]
		files, err := s.ShardsCtx(ctx, c.Dir)
		if err != nil {
			return nil, fmt.Errorf("source %s: %w", name, err)
		}
		sets[name] = files
		sharded[name] = s.IsShardSet()
	}
	idx, err := config.PairShards(sets, sharded)
	if err != nil {
		return nil, err
	}
	isSharded := false
	for _, v := range sharded {
		isSharded = isSharded || v
	}
	if !isSharded {
		if o.Partition != nil {
			return nil, fmt.Errorf("--partition needs shard sets: every source here is one file")
		}
		return SingleLayout(c.Upload.BatchSize), nil
	}
	byIndex := map[string]map[int]config.ShardFile{}
	for _, name := range used {
		byIndex[name] = map[int]config.ShardFile{}
		for _, f := range sets[name] {
			byIndex[name][f.Index] = f
		}
	}
	// Row counts of every file of every shard the run needs (see probed
	// below).
	type job struct {
		src string
		k   int
	}
	rows := map[job]int64{}
	// Files that are not there (404/410, no such local file) are gathered
	// and named together, as missing shards are, not one at a time.
	var missing []job
	var firstMissing error // one of their errors, as an example
	var mu sync.Mutex
	par := o.Parallel
	if par <= 0 {
		par = 8
	}
	// probe reads the row counts of shards ks, par files at a time.
	probe := func(ks []int) error {
		g, gctx := errgroup.WithContext(ctx)
		g.SetLimit(par)
		for _, k := range ks {
			for _, name := range used {
				f := byIndex[name][k]
				src := c.Sources[name]
				g.Go(func() error {
					if gctx.Err() != nil {
						return nil // stopped (an error, or too many files absent)
					}
					n, err := shardRows(gctx, c, src, name, f, o)
					var se *httpget.StatusError
					if err != nil && (errors.Is(err, fs.ErrNotExist) || errors.As(err, &se) && (se.Code == http.StatusNotFound || se.Code == http.StatusGone)) {
						mu.Lock()
						defer mu.Unlock()
						missing = append(missing, job{name, k})
						if firstMissing == nil {
							firstMissing = err
						}
						if len(missing) >= maxMissing {
							return errManyMissing // a wrong base URL: stop probing
						}
						return nil
					}
					if errors.Is(err, httpra.ErrNoRange) {
						return fmt.Errorf("source %s shard %d (%s): %w; a shard set's row counts are read from each file's header by HTTP Range: serve the files from a server that answers Range requests (nginx, caddy, S3, a CDN; not python -m http.server), or download them and name them by a local path", name, k, redactLoc(f), err)
					}
					if err != nil {
						return fmt.Errorf("source %s shard %d (%s): %w", name, k, redactLoc(f), err)
					}
					mu.Lock()
					rows[job{name, k}] = n
					mu.Unlock()
					return nil
				})
			}
		}
		return g.Wait()
	}
	// A row limit needs the shards its rows lie in, no more (and no more
	// bytes): the counts are read in index order, par shards at a time,
	// until they reach it. A partition needs every count (its shards'
	// global offsets depend on all the shards before them).
	probed := len(idx)
	var perr error
	if limit := c.Points.LimitOr(); limit >= 0 && o.Partition == nil {
		var reached int64
		for probed = 0; probed < len(idx) && reached < limit; {
			// As many shards as the rows still needed fill at the average
			// shard size so far (one to start; par while all are empty).
			n := 1
			if probed > 0 {
				n = par
				if avg := reached / int64(probed); avg > 0 {
					n = int(min(int64(par), (limit-reached+avg-1)/avg))
				}
			}
			chunk := idx[probed:min(probed+n, len(idx))]
			if perr = probe(chunk); perr != nil || len(missing) > 0 {
				break
			}
			for _, k := range chunk {
				reached += rows[job{used[0], k}]
			}
			probed += len(chunk)
		}
	} else {
		perr = probe(idx)
	}
	if perr != nil && !errors.Is(perr, errManyMissing) {
		return nil, perr
	}
	if len(missing) > 0 {
		sort.Slice(missing, func(i, j int) bool {
			return missing[i].k < missing[j].k || missing[i].k == missing[j].k && missing[i].src < missing[j].src
		})
		var names []string
		for i, m := range missing {
			if i == 20 {
				names = append(names, fmt.Sprintf("and %d more", len(missing)-20))
				break
			}
			names = append(names, fmt.Sprintf("%s shard %d", m.src, m.k))
		}
		count := fmt.Sprint(len(missing))
		if len(missing) >= maxMissing {
			count = fmt.Sprintf("at least %d", len(missing)) // probing stopped there
		}
		return nil, fmt.Errorf("%s shard files are not there: %s (%v)", count, strings.Join(names, ", "), firstMissing)
	}
	l := &Layout{Sharded: true, BatchSize: c.Upload.BatchSize, AllShards: len(idx), Partition: o.Partition}
	var bad []string
	limit := c.Points.LimitOr()
	var start int64
	for _, k := range idx[:probed] {
		var n int64 = -1
		var counts []string
		agree := true
		for _, name := range used {
			r := rows[job{name, k}]
			counts = append(counts, fmt.Sprintf("%s %d", name, r))
			if n >= 0 && r != n {
				agree = false
			}
			n = r
		}
		if !agree {
			bad = append(bad, fmt.Sprintf("shard %d (%s)", k, strings.Join(counts, ", ")))
			continue
		}
		span := ShardSpan{Index: k, Files: map[string]config.ShardFile{}, Start: start, FileRows: n, Rows: n}
		for _, name := range used {
			span.Files[name] = byIndex[name][k]
		}
		if limit >= 0 {
			span.Rows = max(0, min(n, limit-start))
		}
		start += n
		if span.Rows == 0 && limit >= 0 && span.Start >= limit {
			continue // past the limit: never touched
		}
		if o.Partition != nil && !o.Partition.Owns(k) {
			continue
		}
		span.FirstSeq = l.Batches
		l.Batches += span.Batches(l.BatchSize)
		l.Rows += span.Rows
		l.Shards = append(l.Shards, span)
	}
	l.SetRows = start
	if probed < len(idx) {
		l.SetRows = -1 // the shards past the limit were not read
	}
	if len(bad) > 0 {
		return nil, fmt.Errorf("sources are not aligned: row counts differ within %s; row i of every source's shard must describe the same item", strings.Join(bad, "; "))
	}
	if start == 0 {
		return nil, fmt.Errorf("the shard sets hold no rows (%d shards, every one empty): nothing to load", len(idx))
	}
	if limit > start {
		return nil, fmt.Errorf("the shard sets hold %d rows, fewer than points.limit %d", start, limit)
	}
	return l, nil
}

// maxMissing is how many absent shard files stop the probing (a wrong
// base URL would otherwise be tried for every file of every source).
const maxMissing = 100

var errManyMissing = errors.New("too many shard files are not there")

func redactLoc(f config.ShardFile) string {
	if f.URL != "" {
		return httpget.Redact(f.URL)
	}
	return f.Path
}

// ShardKey names a shard file in the state (downloads, row counts).
func ShardKey(source string, index int) string { return fmt.Sprintf("%s#%d", source, index) }

// shardRows reads one file's row count from its header or footer.
func shardRows(ctx context.Context, c *config.Config, src *config.Source, name string, f config.ShardFile, o LayoutOptions) (int64, error) {
	format := FormatByName(src.Format)
	if format == nil {
		return 0, fmt.Errorf("no format plugin %q is registered", src.Format)
	}
	key := ShardKey(name, f.Index)
	cached := func() *ShardRowsState {
		if o.Cache == nil {
			return nil
		}
		var cr *ShardRowsState
		o.Cache.View(func(s *State) {
			if r := s.ShardRows[key]; r != nil {
				c := *r
				cr = &c
			}
		})
		return cr
	}
	remember := func(r ShardRowsState) {
		if o.Cache != nil && o.Cache.Path != "" {
			o.Cache.UpdateThrottled(time.Second, func(s *State) {
				if s.ShardRows == nil {
					s.ShardRows = map[string]*ShardRowsState{}
				}
				s.ShardRows[key] = &r
			})
		}
	}
	ra, size, etag, done, err := openShard(ctx, c, f, o)
	if err != nil {
		return 0, err
	}
	defer done()
	loc := f.Path
	if f.URL != "" {
		loc = config.RedactURL(f.URL)
		if cr := cached(); cr != nil && cr.Location == loc && cr.Size == size && cr.ETag == etag {
			return cr.Rows, nil
		}
	}
	ff, err := format.Probe(ra, size, size, src, redactLoc(f))
	if err != nil {
		return 0, err
	}
	if f.URL != "" {
		remember(ShardRowsState{Location: loc, Size: size, ETag: etag, Rows: ff.Rows()})
	}
	return ff.Rows(), nil
}

// openShard opens a shard file for its header or footer: by HTTP Range
// for a URL. done closes it.
func openShard(ctx context.Context, c *config.Config, f config.ShardFile, o LayoutOptions) (ra io.ReaderAt, size int64, etag string, done func(), err error) {
	if f.URL != "" {
		hr, err := httpra.Open(ctx, o.HTTP, f.URL, o.Header, 16<<10, httpra.IdleTimeout(c.Download.IdleTimeout.D()))
		if err != nil {
			return nil, 0, "", nil, err
		}
		return hr, hr.Size(), hr.ETag(), func() {}, nil
	}
	fh, err := os.Open(f.Path)
	if err != nil {
		return nil, 0, "", nil, err
	}
	st, err := fh.Stat()
	if err != nil {
		fh.Close()
		return nil, 0, "", nil, err
	}
	return fh, st.Size(), "", func() { fh.Close() }, nil
}

// ProbeShard opens one file of a shard set and probes its format from
// the header or footer (HTTP Range reads for a URL), for plan to check a
// shard set's columns and widths as it does a single file's. done
// closes the file.
func ProbeShard(ctx context.Context, c *config.Config, src *config.Source, f config.ShardFile, o LayoutOptions) (ff FormatFile, done func(), err error) {
	format := FormatByName(src.Format)
	if format == nil {
		return nil, nil, fmt.Errorf("no format plugin %q is registered", src.Format)
	}
	ra, size, _, done, err := openShard(ctx, c, f, o)
	if err != nil {
		return nil, nil, err
	}
	if ff, err = format.Probe(ra, size, size, src, redactLoc(f)); err != nil {
		done()
		return nil, nil, err
	}
	return ff, done, nil
}

// EmptyPartition says why a partition has no rows to load (it owns no
// shard: more partitions than shards; or only empty ones), or "".
func (l *Layout) EmptyPartition() string {
	if l.Partition == nil || l.Rows > 0 {
		return ""
	}
	why := "its shards are empty"
	if len(l.Shards) == 0 {
		why = fmt.Sprintf("it owns none of the %d shards (more partitions than shards)", l.AllShards)
	}
	return fmt.Sprintf("partition %s has no rows to load: %s; apply loads nothing and succeeds", l.Partition, why)
}

// Fields adds the layout to a run's normalised config fields, so a
// checkpoint never resumes over other shards (batch numbers follow them).
func (l *Layout) Fields(f map[string]string) {
	if !l.Sharded {
		return
	}
	h := sha256.New()
	for _, s := range l.Shards {
		fmt.Fprintf(h, "%d:%d:%d:%d\n", s.Index, s.Start, s.Rows, s.FirstSeq)
	}
	f["layout"] = fmt.Sprintf("%d of %d shards, %d rows, %x", len(l.Shards), l.AllShards, l.Rows, h.Sum(nil)[:8])
	if l.Partition != nil {
		f["partition"] = l.Partition.String()
	}
}

// LayoutRecord is the layout a run loaded, kept in its state so status can
// show shards without reading any file: [index, start, rows, first seq].
type LayoutRecord struct {
	AllShards int        `json:"all_shards"`
	Rows      int64      `json:"rows"`
	Partition *Partition `json:"partition,omitempty"`
	Spans     [][4]int64 `json:"spans"`
}

// Record is the layout as the state keeps it (nil for plain configs).
func (l *Layout) Record() *LayoutRecord {
	if !l.Sharded {
		return nil
	}
	r := &LayoutRecord{AllShards: l.AllShards, Rows: l.Rows, Partition: l.Partition}
	for _, s := range l.Shards {
		r.Spans = append(r.Spans, [4]int64{int64(s.Index), s.Start, s.Rows, s.FirstSeq})
	}
	return r
}

// Layout rebuilds a layout from its record (no files; for status).
func (r *LayoutRecord) Layout(bs int) *Layout {
	if r == nil {
		return nil
	}
	l := &Layout{Sharded: true, BatchSize: bs, AllShards: r.AllShards, Rows: r.Rows, Partition: r.Partition}
	for _, sp := range r.Spans {
		s := ShardSpan{Index: int(sp[0]), Start: sp[1], Rows: sp[2], FileRows: sp[2], FirstSeq: sp[3]}
		l.Shards = append(l.Shards, s)
		l.Batches += s.Batches(bs)
	}
	return l
}
