package main

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/snappipe/snappipe/internal/atomicfile"
	"github.com/snappipe/snappipe/internal/hfhub"
	"github.com/snappipe/snappipe/internal/httpget"
	"github.com/snappipe/snappipe/internal/httpra"
	"github.com/snappipe/snappipe/pipeline"
	"github.com/snappipe/snappipe/pipeline/config"
)

func newInitCommand(g *globalOptions) *cobra.Command {
	var out string
	var force bool
	cmd := &cobra.Command{
		Use:   "init SOURCE... [-o FILE]",
		Short: "Write a pipeline file from the headers and footers of local files, directories or http(s) URLs",
		Long: `init inspects the sources — a file, a directory (its files, numbered files
grouped into shard sets, as are numbered files given one by one), an http(s)
URL, or a shard set as a config writes it (a {A..B} range of paths or URLs, a
quoted path glob) — reading only headers and footers
(bytes fetched are printed), and writes a commented pipeline that validates and
applies as written: array files (npy, npz, fvecs, bvecs) become vectors sized by
their shape; Parquet list<float|double|half> columns of one width become vectors,
an unsigned-integer or UUID column named id, _id or uid the point id, the other
columns payload. Files pair when their file and row counts agree. It never overwrites a
file without --force; -o - prints to stdout.`,
		Example: `  snappipe init testdata/sample -o pipeline.yaml
  snappipe init data/train-*.parquet -o pipeline.yaml
  snappipe init 'https://example.org/emb/img_emb_{0000..2313}.npy' 'https://example.org/emb/metadata_{0000..2313}.parquet' -o -
  snappipe init https://example.org/emb/img_emb_0000.npy https://example.org/emb/metadata_0000.parquet -o -`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error { return runInit(cmd.Context(), g, args, out, force) },
	}
	// -o/--output is the file here (it shadows the global result-format
	// flag, which init has no use for); -O/--output-file is the same.
	cmd.Flags().StringVarP(&out, "output", "o", "pipeline.yaml", "where to write the pipeline (- for stdout)")
	cmd.Flags().StringVarP(&out, "output-file", "O", "pipeline.yaml", "the same as -o")
	cmd.Flags().BoolVar(&force, "force", false, "overwrite an existing file")
	return cmd
}

// initGroup is one source: a file or a shard set of files.
type initGroup struct {
	name    string // source name
	stem    string
	loc     string // path or URL as the config writes it (a range or glob for sets)
	remote  bool
	files   []string
	format  pipeline.Format
	ff      pipeline.FormatFile
	rows    int64
	half    bool
	width   int
	columns []pipeline.ColumnInfo
	// option is a format option naming the member read (npz: array).
	option, member string
}

// groupKey is the key files group by: the name with its digit runs
// replaced, or, for hash-named files, just the extension.
func groupKey(name string) (string, bool) {
	ext := path.Ext(name)
	if hashStemRE.MatchString(strings.TrimSuffix(name, ext)) {
		return "<hash>" + ext, true
	}
	return digitRunRE.ReplaceAllString(name, "#"), false
}

// groupName names a group of files (names sorted): its stem, and the
// pattern naming them all — one glob per kind for files named by hash
// (paired by hash), else a {A..B} range or a glob (shardPattern).
func groupName(f pipeline.Format, names []string) (stem, pattern string, hashed bool) {
	if _, h := groupKey(names[0]); h && len(names) > 1 {
		return hashedStem(f, names[0]), "*" + path.Ext(names[0]), true
	}
	return stemOf(names...), shardPattern(names), false
}

// hashedStem names a group of hash-named files: metadata for a table,
// else the extension (an npz group is named by its arrays anyway).
func hashedStem(f pipeline.Format, name string) string {
	if f != nil && f.Table() {
		return "metadata"
	}
	return strings.TrimPrefix(path.Ext(name), ".")
}

// hashStemRE matches file stems that are hashes (DataComp's shards): such
// files group by extension into one glob, paired by hash when applied.
var hashStemRE = regexp.MustCompile(`^[0-9a-f]{16,}$`)

var digitRunRE = regexp.MustCompile(`\d+`)

func runInit(ctx context.Context, g *globalOptions, args []string, out string, force bool) error {
	if out != "-" {
		if _, err := os.Stat(out); err == nil && !force {
			return fmt.Errorf("%s exists: use --force to overwrite it, or -o - to print", out)
		}
	}
	base := "."
	if out != "-" {
		base = filepath.Dir(out)
	}
	var groups []*initGroup
	for _, a := range args {
		gs, err := initSources(ctx, a)
		if err != nil {
			return err
		}
		groups = append(groups, gs...)
	}
	if len(groups) == 0 {
		return errors.New("no file of a known format (parquet, npy, npz, fvecs, bvecs) among the sources")
	}
	groups, err := mergeFileArgs(groups)
	if err != nil {
		return err
	}
	var fetched int64
	var skipped []string
	var probed []*initGroup
	for _, gr := range groups {
		members, n, err := gr.members(ctx)
		fetched += n
		if err != nil {
			return err
		}
		if len(members) == 0 {
			members = []*initGroup{gr}
		}
		for _, m := range members {
			n, err := m.probe(ctx)
			fetched += n
			if err != nil {
				if m.member != "" {
					// An array that is not a table of vectors (a 1-D
					// mask, say): reported, not used.
					skipped = append(skipped, fmt.Sprintf("%s array %s (%v)", m.stem, m.member, err))
					continue
				}
				return err
			}
			probed = append(probed, m)
		}
	}
	groups = probed
	if len(skipped) > 0 {
		for _, sk := range skipped {
			fmt.Fprintf(g.stderr, "init: not used: %s\n", sk)
		}
	}
	text, err := initConfig(groups, base, out == "-", args)
	if err != nil {
		return err
	}
	if fetched > 0 {
		fmt.Fprintf(g.stderr, "init: read %d bytes of headers and footers over HTTP\n", fetched)
	}
	if out == "-" {
		_, err := io.WriteString(g.stdout, text)
		return err
	}
	if err := atomicfile.WriteFile(out, []byte(text), 0o644); err != nil {
		return err
	}
	fmt.Fprintf(g.stdout, "Wrote %s (%d sources). Check it with: snappipe validate %s\n", out, len(groups), out)
	return nil
}

// mergeFileArgs makes numbered files given one by one (a shell glob:
// init data/train-*.parquet) the shard set they are, as a directory's
// files are grouped: the files of one directory (or URL directory) whose
// names differ only in a number. A set that no {A..B} range names exactly
// is refused rather than written as a glob that would load other files.
func mergeFileArgs(groups []*initGroup) ([]*initGroup, error) {
	type key struct {
		dir, gk string
		remote  bool
	}
	var out, merged []*initGroup
	sets := map[key]*initGroup{}
	for _, gr := range groups {
		f := gr.files[0]
		if len(gr.files) != 1 || strings.HasPrefix(gr.loc, "hf://") {
			out = append(out, gr)
			continue
		}
		dir, name := filepath.Dir(f), filepath.Base(f)
		if gr.remote {
			u := strings.SplitN(f, "?", 2)[0]
			dir, name = u[:strings.LastIndex(u, "/")], path.Base(u)
		}
		gk, _ := groupKey(name)
		k := key{dir, gk, gr.remote}
		if set, ok := sets[k]; ok {
			if len(set.files) == 1 {
				merged = append(merged, set)
			}
			set.files = append(set.files, f)
			continue
		}
		c := *gr
		c.files = []string{f}
		sets[k] = &c
		out = append(out, &c)
	}
	for _, gr := range merged {
		for _, f := range gr.files {
			if strings.Contains(f, "?") {
				return nil, fmt.Errorf("%s ... (%d files): numbered URLs with query strings (signed URLs) cannot be one source, whose range would drop them; give them to separate pipelines", httpget.Redact(f), len(gr.files))
			}
		}
		sort.Strings(gr.files)
		gr.files = slices.Compact(gr.files)
		var names []string
		for _, f := range gr.files {
			names = append(names, path.Base(filepath.ToSlash(f)))
		}
		if len(names) < 2 {
			continue
		}
		dir := gr.files[0][:len(gr.files[0])-len(names[0])]
		var pat string
		var hashed bool
		gr.stem, pat, hashed = groupName(gr.format, names)
		gr.loc = dir + pat
		if !strings.Contains(pat, "*") {
			continue
		}
		// Only a glob names them: it must match these files and no others.
		var matched []string
		if !gr.remote {
			matched, _ = filepath.Glob(gr.loc)
		}
		if hashed && gr.remote {
			return nil, fmt.Errorf("%s ... (%d files): named by hash, so only a glob names them, and a URL cannot be one: give their directory, or an hf:// repository", httpget.Redact(gr.files[0]), len(gr.files))
		}
		if !slices.Equal(matched, gr.files) {
			return nil, fmt.Errorf("%s ... (%d files): not numbered contiguously, so no {A..B} range names exactly these files; give their directory, or files whose numbers follow each other", httpget.Redact(gr.files[0]), len(gr.files))
		}
	}
	return out, nil
}

// initShardSet lists an argument written as a config writes a shard set
// — a {A..B} range (path or URL) or a quoted path glob — as one source;
// ok is false for any other argument.
func initShardSet(a string) ([]*initGroup, bool, error) {
	remote := strings.HasPrefix(a, "http://") || strings.HasPrefix(a, "https://")
	src := &config.Source{Path: a}
	if remote {
		src = &config.Source{URL: a}
	} else if _, err := os.Stat(a); err == nil {
		return nil, false, nil // a file or directory whose name holds such characters
	}
	if !src.IsShardSet() {
		return nil, false, nil
	}
	loc := a
	if !remote {
		loc, _ = filepath.Abs(a)
		src.Path = loc
	}
	files, err := src.Shards("")
	if err != nil {
		return nil, true, err
	}
	gr := &initGroup{loc: loc, remote: remote}
	var names []string
	for _, f := range files {
		gr.files = append(gr.files, f.Location())
		names = append(names, path.Base(filepath.ToSlash(strings.SplitN(f.Location(), "?", 2)[0])))
	}
	if gr.format = pipeline.FormatForName(names[0]); gr.format == nil {
		return nil, true, fmt.Errorf("%s: cannot tell the format from the name", httpget.Redact(a))
	}
	gr.stem, _, _ = groupName(gr.format, names)
	return []*initGroup{gr}, true, nil
}

// initSources lists one argument's sources.
func initSources(ctx context.Context, a string) ([]*initGroup, error) {
	if strings.HasPrefix(a, "hf://") {
		return hfSources(ctx, a)
	}
	if gs, ok, err := initShardSet(a); ok || err != nil {
		return gs, err
	}
	if strings.HasPrefix(a, "http://") || strings.HasPrefix(a, "https://") {
		u, err := url.Parse(a)
		if err != nil {
			return nil, err
		}
		f := pipeline.FormatForName(u.Path)
		if f == nil {
			return nil, fmt.Errorf("%s: cannot tell the format from the name", httpget.Redact(a))
		}
		stem := stemOf(path.Base(u.Path))
		return []*initGroup{{stem: stem, loc: a, remote: true, files: []string{a}, format: f}}, nil
	}
	fi, err := os.Stat(a)
	if err != nil {
		return nil, err
	}
	if !fi.IsDir() {
		f := pipeline.FormatForName(a)
		if f == nil {
			return nil, fmt.Errorf("%s: cannot tell the format from the name", a)
		}
		abs, _ := filepath.Abs(a)
		return []*initGroup{{stem: stemOf(filepath.Base(a)), loc: abs, files: []string{abs}, format: f}}, nil
	}
	ents, err := os.ReadDir(a)
	if err != nil {
		return nil, err
	}
	byKey := map[string][]string{}
	var keys []string
	for _, e := range ents {
		if e.IsDir() || pipeline.FormatForName(e.Name()) == nil {
			continue
		}
		k, _ := groupKey(e.Name())
		if _, ok := byKey[k]; !ok {
			keys = append(keys, k)
		}
		byKey[k] = append(byKey[k], e.Name())
	}
	sort.Strings(keys)
	abs, _ := filepath.Abs(a)
	var out []*initGroup
	for _, k := range keys {
		names := byKey[k]
		sort.Strings(names)
		gr := &initGroup{format: pipeline.FormatForName(names[0])}
		for _, n := range names {
			gr.files = append(gr.files, filepath.Join(abs, n))
		}
		var pat string
		gr.stem, pat, _ = groupName(gr.format, names)
		gr.loc = filepath.Join(abs, pat)
		out = append(out, gr)
	}
	return out, nil
}

// hfSources lists hf://datasets/OWNER/NAME[/PATH][@REVISION] through the
// Hugging Face API (HF_ENDPOINT, HF_TOKEN): the files of known formats
// under PATH, numbered ones grouped into shard sets, each read later by
// Range through its resolve URL.
func hfSources(ctx context.Context, a string) ([]*initGroup, error) {
	ref, err := hfhub.Parse(a)
	if err != nil {
		return nil, err
	}
	sub := ref.Path
	if ref.HasGlob() {
		// One split of several (hf://datasets/O/N/data/train-*.parquet):
		// its directory is listed and the names matched.
		if sub = path.Dir(ref.Path); strings.ContainsAny(sub, "*?[") {
			return nil, fmt.Errorf("%s: only the last part of the path may hold a glob", a)
		} else if sub == "." {
			sub = ""
		}
	}
	paths, err := hfhub.List(ctx, pipeline.HTTPClient(), ref, sub)
	if err != nil {
		return nil, err
	}
	if ref.HasGlob() {
		var matched []string
		for _, p := range paths {
			if ok, err := path.Match(ref.Path, p); err != nil {
				return nil, fmt.Errorf("%s: %w", a, err)
			} else if ok {
				matched = append(matched, p)
			}
		}
		if paths = matched; len(paths) == 0 {
			return nil, fmt.Errorf("%s matches no file", a)
		}
	}
	byKey := map[string][]string{}
	var keys []string
	for _, p := range paths {
		if pipeline.FormatForName(p) == nil {
			continue
		}
		gk, _ := groupKey(path.Base(p))
		k := path.Dir(p) + "/" + gk
		if _, ok := byKey[k]; !ok {
			keys = append(keys, k)
		}
		byKey[k] = append(byKey[k], p)
	}
	sort.Strings(keys)
	resolve := ref.Resolve
	var out []*initGroup
	for _, k := range keys {
		paths := byKey[k]
		sort.Strings(paths)
		var names []string
		gr := &initGroup{format: pipeline.FormatForName(paths[0]), remote: true}
		for _, p := range paths {
			names = append(names, path.Base(p))
			gr.files = append(gr.files, resolve(p))
		}
		stem, pat, hashed := groupName(gr.format, names)
		gr.stem = stem
		if hashed {
			// Named by hash: a glob over the repository, paired by hash.
			dir := path.Dir(paths[0])
			glob := pat
			if dir != "." {
				glob = dir + "/" + glob
			}
			gr.loc = "hf://datasets/" + ref.Repo + "/" + glob
			if ref.Rev != "main" {
				gr.loc += "@" + ref.Rev
			}
			out = append(out, gr)
			continue
		}
		if strings.Contains(pat, "*") {
			return nil, fmt.Errorf("%s: the shards %s ... are not numbered contiguously, so a URL range cannot name them: give the shards explicitly", a, path.Join(path.Dir(paths[0]), names[0]))
		}
		gr.loc = resolve(path.Join(path.Dir(paths[0]), pat))
		out = append(out, gr)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%s holds no file of a known format (parquet, npy, npz, fvecs, bvecs)", a)
	}
	return out, nil
}

// shardPattern writes a set of numbered names as a {A..B} range when the
// numbers are contiguous with one width, else as a glob.
func shardPattern(names []string) string {
	if len(names) == 1 {
		return names[0]
	}
	runs, vary := varyingRun(names)
	if vary < 0 {
		return digitRunRE.ReplaceAllString(names[0], "*")
	}
	nums := make([]int, len(names))
	width := len(runs[0][vary])
	same, padded := true, false
	for i := range names {
		nums[i], _ = strconv.Atoi(runs[i][vary])
		same = same && len(runs[i][vary]) == width
		padded = padded || len(runs[i][vary]) > 1 && runs[i][vary][0] == '0'
	}
	sort.Ints(nums)
	// Padded numbers need one width ({0000..0009}); unpadded ones may
	// grow (_0 ... _12 is {0..12}).
	contiguous := same || !padded
	for i := 1; i < len(nums); i++ {
		contiguous = contiguous && nums[i] == nums[i-1]+1
	}
	// The first name in number order carries the pattern.
	first := 0
	for i := range names {
		if n, _ := strconv.Atoi(runs[i][vary]); n == nums[0] {
			first = i
		}
	}
	locs := digitRunRE.FindAllStringIndex(names[first], -1)
	at := locs[vary]
	repl := "*"
	if contiguous {
		if padded {
			repl = fmt.Sprintf("{%0*d..%0*d}", width, nums[0], width, nums[len(nums)-1])
		} else {
			repl = fmt.Sprintf("{%d..%d}", nums[0], nums[len(nums)-1])
		}
	}
	return names[first][:at[0]] + repl + names[first][at[1]:]
}

// varyingRun returns each name's digit runs and the index of the last run
// that is not the same in every name (-1 if none is).
func varyingRun(names []string) ([][]string, int) {
	runs := make([][]string, len(names))
	for i, n := range names {
		runs[i] = digitRunRE.FindAllString(n, -1)
	}
	vary := -1
	for j := range runs[0] {
		for i := 1; i < len(names); i++ {
			if j < len(runs[i]) && runs[i][j] != runs[0][j] {
				vary = j
			}
		}
	}
	return runs, vary
}

// shardSuffixRE is a single file's shard number: a Hugging Face
// "-00000-of-00042", or digits after a separator ("_0000", "-3").
var shardSuffixRE = regexp.MustCompile(`[_\-.]\d+-of-\d+$|[_\-.]+\d+$`)

// ofCountRE is the "-of-00042" after a Hugging Face shard number.
var ofCountRE = regexp.MustCompile(`^-of-\d+`)

// stemOf names a file, or a group of numbered files (sorted), without the
// extension and the shard number: img_emb_0000.npy → img_emb,
// train-00000-of-00042.parquet → train, shard0.npy … shard9.npy → shard.
// Digits that are part of a single file's name stay (clip_vit_b32.parquet
// → clip_vit_b32).
func stemOf(names ...string) string {
	name := names[0]
	s := strings.TrimSuffix(name, path.Ext(name))
	locs := digitRunRE.FindAllStringIndex(s, -1)
	if _, vary := varyingRun(names); len(names) > 1 && vary >= 0 && vary < len(locs) {
		at := locs[vary]
		head := strings.TrimRight(s[:at[0]], "_-.")
		tail := ofCountRE.ReplaceAllString(s[at[1]:], "")
		if head == "" {
			head, tail = strings.TrimLeft(tail, "_-."), ""
		}
		s = head + tail
	} else if t := shardSuffixRE.ReplaceAllString(s, ""); t != "" {
		s = t
	}
	return s
}

// ident makes a source or vector name of a stem.
func ident(s string) string {
	s = regexp.MustCompile(`[^A-Za-z0-9._-]+`).ReplaceAllString(s, "_")
	s = strings.Trim(s, "._-")
	if s == "" {
		return "data"
	}
	if !regexp.MustCompile(`^[A-Za-z0-9]`).MatchString(s) {
		s = "x" + s
	}
	return s
}

// vectorName is a vector name for an array source's stem (clip-retrieval
// names: img_emb -> image, text_emb -> text).
func vectorName(stem string) string {
	switch strings.ToLower(stem) {
	case "img_emb", "image_emb", "img", "image_embeddings", "img_embeddings":
		return "image"
	case "text_emb", "txt_emb", "text", "text_embeddings":
		return "text"
	}
	return ident(strings.TrimSuffix(strings.TrimSuffix(stem, "_emb"), "_embeddings"))
}

// open opens the group's first file (by Range when remote).
func (gr *initGroup) open(ctx context.Context) (io.ReaderAt, int64, func() int64, func(), error) {
	first := gr.files[0]
	if gr.remote || strings.HasPrefix(first, "http") {
		hra, err := httpra.Open(ctx, pipeline.HTTPClient(), first, httpget.HFAuth(), 16<<10)
		if err != nil {
			return nil, 0, nil, nil, err
		}
		return hra, hra.Size(), hra.Fetched, func() {}, nil
	}
	f, err := os.Open(first)
	if err != nil {
		return nil, 0, nil, nil, err
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, 0, nil, nil, err
	}
	return f, st.Size(), nil, func() { f.Close() }, nil
}

// members splits a group whose format holds several arrays (npz) into one
// group per array; nil when it holds one.
func (gr *initGroup) members(ctx context.Context) ([]*initGroup, int64, error) {
	ml, ok := gr.format.(pipeline.MemberLister)
	if !ok {
		return nil, 0, nil
	}
	ra, size, fetched, done, err := gr.open(ctx)
	if err != nil {
		return nil, 0, err
	}
	defer done()
	opt, names, err := ml.Members(ra, size)
	n := int64(0)
	if fetched != nil {
		n = fetched()
	}
	if err != nil || len(names) < 2 {
		return nil, n, err
	}
	var out []*initGroup
	for _, m := range names {
		c := *gr
		c.option, c.member, c.stem = opt, m, m
		out = append(out, &c)
	}
	return out, n, nil
}

// probe reads the first file's header or footer.
func (gr *initGroup) probe(ctx context.Context) (int64, error) {
	first := gr.files[0]
	ra, size, fetched, done, err := gr.open(ctx)
	if err != nil {
		return 0, err
	}
	defer done()
	src := &config.Source{Format: gr.format.Name()}
	if gr.member != "" {
		src.Options = map[string]string{gr.option: gr.member}
	}
	ff, err := gr.format.Probe(ra, size, size, src, filepath.Base(first))
	n := int64(0)
	if err != nil {
		if fetched != nil {
			n = fetched()
		}
		return n, fmt.Errorf("%s: %w", httpget.Redact(first), err)
	}
	gr.ff, gr.rows = ff, ff.Rows()
	if gr.format.Table() {
		if in, ok := ff.(pipeline.Inspector); ok {
			if gr.columns, err = in.Inspect(); err != nil {
				return 0, err
			}
		}
	} else {
		// Opening every row checks the file holds what its header says
		// (a truncated download is said now, not by plan); nothing is read.
		rr, err := ff.Open(pipeline.Selection{}, 0, ff.Rows())
		if err != nil {
			return 0, fmt.Errorf("%s: %w", httpget.Redact(first), err)
		}
		gr.width = rr.Widths()[""]
		rr.Close()
		gr.half = strings.Contains(ff.Describe(), "f2")
	}
	if fetched != nil {
		n = fetched()
	}
	return n, nil
}

// missingShards names the shards some groups have and others lack
// ("metadata lacks shard 4"), the first 20; "" when the files' shards
// cannot be told (one file, names that do not vary by a number or hash).
func missingShards(groups []*initGroup) string {
	have := make([]map[string]bool, len(groups))
	var all []string
	seen := map[string]bool{}
	for i, g := range groups {
		if len(g.files) < 2 {
			return ""
		}
		keys, err := config.ShardKeys(g.files)
		if err != nil {
			return ""
		}
		have[i] = map[string]bool{}
		for _, k := range keys {
			have[i][k] = true
			if !seen[k] {
				seen[k] = true
				all = append(all, k)
			}
		}
	}
	slices.SortFunc(all, func(a, b string) int {
		x, errx := strconv.Atoi(a)
		y, erry := strconv.Atoi(b)
		if errx == nil && erry == nil {
			return cmp.Compare(x, y)
		}
		return strings.Compare(a, b)
	})
	var out []string
	n := 0
	for i, g := range groups {
		var lacks []string
		for _, k := range all {
			if !have[i][k] {
				n++
				if n <= 20 {
					lacks = append(lacks, k)
				}
			}
		}
		if len(lacks) > 0 {
			out = append(out, fmt.Sprintf("%s lacks shard %s", g.name, strings.Join(lacks, ", ")))
		}
	}
	if n > 20 {
		out = append(out, fmt.Sprintf("and %d more", n-20))
	}
	return strings.Join(out, "; ")
}

// initConfig writes the pipeline.
func initConfig(groups []*initGroup, base string, abs bool, args []string) (string, error) {
	used := map[string]bool{}
	for _, gr := range groups {
		n := ident(gr.stem)
		for i := 2; used[n]; i++ {
			n = fmt.Sprintf("%s%d", ident(gr.stem), i)
		}
		gr.name, used[n] = n, true
	}
	// Sources pair shard by shard: every one needs as many files (a split
	// of another size, say, is another table).
	// They pair by shard index (or hash), so equal counts are not enough:
	// each shard must be in every source.
	var counts []string
	for _, g := range groups {
		counts = append(counts, fmt.Sprintf("%s %d", g.name, len(g.files)))
	}
	const oneTable = "row i of every source must describe the same item, so give the files of one table (one split: a glob such as DIR/train-*.parquet, for hf:// too)"
	if m := missingShards(groups); m != "" {
		return "", fmt.Errorf("the sources do not pair up shard by shard: %s (files: %s); %s", m, strings.Join(counts, ", "), oneTable)
	}
	for _, gr := range groups[1:] {
		if len(gr.files) != len(groups[0].files) {
			return "", fmt.Errorf("the sources do not pair up: their file counts differ (%s); %s", strings.Join(counts, ", "), oneTable)
		}
	}
	rows := groups[0].rows
	counts = nil
	aligned := true
	for _, gr := range groups {
		counts = append(counts, fmt.Sprintf("%s %d", gr.name, gr.rows))
		aligned = aligned && gr.rows == rows
	}
	if !aligned {
		return "", fmt.Errorf("the files do not pair up: row counts differ (%s); give files whose row i describes the same item", strings.Join(counts, ", "))
	}
	type vec struct {
		name, src, column string
		width             int
		half, multi       bool
		values            string // a sparse vector: column is the indices, values the values
	}
	var vecs []vec
	var payload *initGroup
	var idCol string
	var varying []string
	vused := map[string]bool{}
	addVec := func(v vec) {
		n := v.name
		for i := 2; vused[n]; i++ {
			n = fmt.Sprintf("%s%d", v.name, i)
		}
		v.name, vused[n] = n, true
		vecs = append(vecs, v)
	}
	for _, gr := range groups {
		if !gr.format.Table() {
			addVec(vec{name: vectorName(gr.stem), src: gr.name, width: gr.width, half: gr.half})
			continue
		}
		for _, c := range gr.columns {
			switch {
			case c.Vector:
				addVec(vec{name: ident(c.Name), src: gr.name, column: c.Name, width: c.Width, half: c.Half})
			case c.Multi:
				addVec(vec{name: ident(c.Name), src: gr.name, column: c.Name, width: c.Width, multi: true})
			case c.SparseValues != "":
				addVec(vec{name: sparseName(c.Name), src: gr.name, column: c.Name, values: c.SparseValues})
			case c.VaryingWidth && !c.SparsePart:
				varying = append(varying, gr.name+"."+c.Name)
			}
		}
		if payload == nil {
			payload = gr
			for _, c := range gr.columns {
				if c.ID && (c.Name == "id" || c.Name == "_id" || c.Name == "uid") {
					idCol = c.Name
				}
			}
		}
	}
	if len(vecs) == 0 {
		return "", errors.New("no vectors found: no array file (npy, npz, fvecs, bvecs) and no Parquet column of fixed-width float lists")
	}
	name := ident(datasetName(groups))
	var b strings.Builder
	fmt.Fprintf(&b, "# yaml-language-server: $schema=https://raw.githubusercontent.com/snappipe/snappipe/main/schema/snappipe.schema.json\n")
	fmt.Fprintf(&b, "# Written by `snappipe init %s` from the files' headers and footers.\n", strings.Join(redactAll(args), " "))
	fmt.Fprintf(&b, "# Check it with `snappipe validate`, see what apply would do with `snappipe plan`.\n")
	if len(varying) > 0 {
		fmt.Fprintf(&b, "# Not used as vectors (their list lengths vary): %s.\n", strings.Join(varying, ", "))
	}
	fmt.Fprintf(&b, "version: 1\nname: %s\n", name)
	b.WriteString("qdrant:\n  url: ${QDRANT_URL:-http://localhost:6333}\n  grpc_port: ${QDRANT_GRPC_PORT:-6334}\n  api_key: ${QDRANT_API_KEY:-}\n")
	fmt.Fprintf(&b, "collection:\n  name: %s\n  on_exists: fail      # or recreate / reuse\n  vectors:\n", name)
	b.WriteString("    # Cosine suits CLIP-style embeddings; set distance: Dot, Euclid or Manhattan if your model says so.\n")
	var sparse []vec
	for _, v := range vecs {
		switch {
		case v.values != "":
			sparse = append(sparse, v)
		case v.multi:
			fmt.Fprintf(&b, "    %s: { size: %d, distance: Cosine, multivector: { comparator: max_sim } }   # token vectors (late interaction)\n", v.name, v.width)
		case v.half:
			fmt.Fprintf(&b, "    %s: { size: %d, distance: Cosine, datatype: float16 }   # the source is float16\n", v.name, v.width)
		default:
			fmt.Fprintf(&b, "    %s: { size: %d, distance: Cosine }\n", v.name, v.width)
		}
	}
	if len(sparse) > 0 {
		b.WriteString("  sparse_vectors:\n")
		for _, v := range sparse {
			fmt.Fprintf(&b, "    %s: {}   # modifier: idf for BM25-style term weights\n", v.name)
		}
	}
	b.WriteString("sources:\n")
	for _, gr := range groups {
		key, loc := "path", gr.loc
		if gr.remote {
			key = "url"
		} else if !abs {
			if rel, err := filepath.Rel(mustAbs(base), gr.loc); err == nil && !strings.HasPrefix(rel, "..") {
				loc = rel
			}
		}
		var jsonCols []string
		for _, c := range gr.columns {
			if c.JSONText {
				jsonCols = append(jsonCols, c.Name)
			}
		}
		note := fmt.Sprintf("%s, %d rows", gr.format.Name(), gr.rows)
		if len(gr.files) > 1 {
			note = fmt.Sprintf("%s, %d shards, %d rows in the first", gr.format.Name(), len(gr.files), gr.rows)
		}
		if len(jsonCols) > 0 {
			fmt.Fprintf(&b, "  %s: { %s: %q, json_vectors: %q }   # %s; JSON-text vectors\n", gr.name, key, loc, strings.Join(jsonCols, ","), note)
		} else if gr.member != "" {
			fmt.Fprintf(&b, "  %s: { %s: %q, %s: %s }   # %s\n", gr.name, key, loc, gr.option, gr.member, note)
		} else {
			fmt.Fprintf(&b, "  %s: { %s: %q }   # %s\n", gr.name, key, loc, note)
		}
	}
	b.WriteString("points:\n")
	if idCol != "" {
		fmt.Fprintf(&b, "  id: { column: %s }\n", idCol)
	} else {
		b.WriteString("  id: row               # the global row index\n")
	}
	b.WriteString("  vectors:\n")
	for _, v := range vecs {
		if v.values != "" {
			fmt.Fprintf(&b, "    %s: { source: %s, indices: %s, values: %s }\n", v.name, v.src, v.column, v.values)
		} else if v.column == "" {
			fmt.Fprintf(&b, "    %s: %s\n", v.name, v.src)
		} else {
			fmt.Fprintf(&b, "    %s: { source: %s, column: %s }\n", v.name, v.src, v.column)
		}
	}
	if payload != nil {
		var ex []string
		for _, v := range vecs {
			if v.src == payload.name && v.column != "" {
				ex = append(ex, v.column)
				if v.values != "" {
					ex = append(ex, v.values)
				}
			}
		}
		ex = append(ex, varyingOf(payload)...)
		if len(ex) > 0 {
			fmt.Fprintf(&b, "  payload: { source: %s, exclude: [%s] }\n", payload.name, strings.Join(ex, ", "))
		} else {
			fmt.Fprintf(&b, "  payload: { source: %s }\n", payload.name)
		}
	}
	b.WriteString("snapshot:\n  destination: snapshots\n")
	return b.String(), nil
}

// sparseName names a sparse vector after its indices column
// ("splade_indices" -> "splade"; "indices" -> "sparse").
func sparseName(indices string) string {
	n := indices
	for _, suf := range []string{"indices", "index", "idx", "ids"} {
		for _, sep := range []string{"_", ".", "-", ""} {
			if strings.HasSuffix(n, sep+suf) {
				n = strings.TrimSuffix(n, sep+suf)
				break
			}
		}
	}
	if n == "" || n == indices {
		return "sparse"
	}
	return ident(n)
}

func varyingOf(gr *initGroup) []string {
	var out []string
	for _, c := range gr.columns {
		if c.VaryingWidth && !c.SparsePart {
			out = append(out, c.Name)
		}
	}
	return out
}

func datasetName(groups []*initGroup) string {
	gr := groups[0]
	if gr.remote {
		u, err := url.Parse(gr.loc)
		if err == nil {
			return path.Base(path.Dir(u.Path))
		}
	}
	return filepath.Base(filepath.Dir(gr.files[0]))
}

func mustAbs(p string) string {
	a, err := filepath.Abs(p)
	if err != nil {
		return p
	}
	return a
}

func redactAll(args []string) []string {
	out := make([]string, len(args))
	for i, a := range args {
		if strings.Contains(a, "://") {
			a = config.RedactURL(a)
		}
		out[i] = a
	}
	return out
}
