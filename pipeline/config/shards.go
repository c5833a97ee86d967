package config

import (
	"cmp"
	"context"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/snappipe/snappipe/internal/hfhub"
)

// ShardFile is one file of a source: its shard index and where it is.
type ShardFile struct {
	Index int
	URL   string // for url: sources (as written: may hold secrets)
	Path  string // for path: sources, resolved against the config's directory
	// Key is the part of the name that varies when it is not a number
	// (DataComp's <hash>.parquet + <hash>.npz): shards then pair by key,
	// and Index is the key's place among all keys in sorted order
	// (assigned by PairShards).
	Key string
}

// Location is the file's URL or path.
func (f ShardFile) Location() string {
	if f.URL != "" {
		return f.URL
	}
	return f.Path
}

// MaxShards bounds the files one source may name.
const MaxShards = 100_000

// rangeRE matches one numeric range in braces: {0000..2313}, {0..9}.
var rangeRE = regexp.MustCompile(`\{(\d+)\.\.(\d+)\}`)

// looseRangeRE matches what looks like a range, well formed or not
// ({0..}, {a..c}, {-1..3}): those are mistakes, not file names.
var looseRangeRE = regexp.MustCompile(`\{[^{}/]*\.\.[^{}/]*\}`)

// badRange returns an error for a {..} in loc that is not a range.
func badRange(loc string) error {
	for _, m := range looseRangeRE.FindAllString(loc, -1) {
		if !rangeRE.MatchString(m) {
			return fmt.Errorf("%s is not a shard range: write {FIRST..LAST} with whole numbers, FIRST <= LAST, e.g. {0000..2313}", m)
		}
	}
	return nil
}

// IsShardSet reports whether a source names many files: a {A..B} range in
// its url or path, or glob characters in its path.
func (s *Source) IsShardSet() bool {
	loc := s.Path
	if s.URL != "" {
		loc = s.URL
	}
	return rangeRE.MatchString(loc) || (s.URL == "" && strings.ContainsAny(s.Path, "*?[")) || s.IsRemoteGlob()
}

// IsRemoteGlob reports whether the source is a glob over a Hugging Face
// repository (hf://datasets/OWNER/NAME/DIR/*.parquet): its files are
// listed at plan and apply time, not by validate.
func (s *Source) IsRemoteGlob() bool {
	if !hfhub.IsRef(s.URL) {
		return false
	}
	r, err := hfhub.ParseWith(s.URL, s.HubEndpoint)
	return err == nil && r.HasGlob()
}

// ListRemote lists a remote glob's files (set by the engine, which owns
// the HTTP client; nil in packages that never list).
var ListRemote func(ctx context.Context, pattern, endpoint string) ([]string, error)

// ShardsCtx is Shards, listing a remote glob's files too.
func (s *Source) ShardsCtx(ctx context.Context, dir string) ([]ShardFile, error) {
	if !s.IsRemoteGlob() {
		return s.Shards(dir)
	}
	if ListRemote == nil {
		return nil, fmt.Errorf("%s: remote globs are listed at plan and apply time", s.URL)
	}
	urls, err := ListRemote(ctx, s.URL, s.HubEndpoint)
	if err != nil {
		return nil, err
	}
	if len(urls) > MaxShards {
		return nil, fmt.Errorf("%s matches %d files; at most %d", s.URL, len(urls), MaxShards)
	}
	return indexed(urls, func(i int, key, u string) ShardFile { return ShardFile{Index: i, Key: key, URL: u} }, s.URL)
}

// HasRange reports whether the source's files are a {A..B} range (known
// without looking at any file system).
func (s *Source) HasRange() bool {
	if s.URL != "" {
		return rangeRE.MatchString(s.URL)
	}
	return rangeRE.MatchString(s.Path)
}

// Shards lists a source's files by shard index, ascending: the expanded
// {A..B} range (zero padding kept), the files a path glob matches, or the
// one file (index 0) of a plain source. Glob matches are listed from dir.
func (s *Source) Shards(dir string) ([]ShardFile, error) {
	if s.IsRemoteGlob() {
		return nil, fmt.Errorf("%s: remote globs are listed at plan and apply time", s.URL)
	}
	if err := badRange(s.URL + s.Path); err != nil {
		return nil, err
	}
	if s.URL != "" {
		if !rangeRE.MatchString(s.URL) {
			return []ShardFile{{Index: 0, URL: s.URL}}, nil
		}
		return expandRange(s.URL, func(i int, v string) ShardFile { return ShardFile{Index: i, URL: v} })
	}
	p := s.Path
	if !filepath.IsAbs(p) {
		p = filepath.Join(dir, p)
	}
	if rangeRE.MatchString(p) {
		return expandRange(p, func(i int, v string) ShardFile { return ShardFile{Index: i, Path: v} })
	}
	if strings.ContainsAny(s.Path, "*?[") {
		return globShards(p)
	}
	return []ShardFile{{Index: 0, Path: p}}, nil
}

func expandRange(s string, mk func(int, string) ShardFile) ([]ShardFile, error) {
	ms := rangeRE.FindAllStringSubmatchIndex(s, -1)
	if len(ms) != 1 {
		return nil, fmt.Errorf("holds %d {A..B} ranges; a shard set has exactly one", len(ms))
	}
	m := ms[0]
	a, b := s[m[2]:m[3]], s[m[4]:m[5]]
	lo, err1 := strconv.Atoi(a)
	hi, err2 := strconv.Atoi(b)
	if err1 != nil || err2 != nil || lo > hi {
		return nil, fmt.Errorf("range {%s..%s}: expected {FIRST..LAST} with FIRST <= LAST", a, b)
	}
	if hi-lo+1 > MaxShards {
		return nil, fmt.Errorf("range {%s..%s} names %d files; at most %d", a, b, hi-lo+1, MaxShards)
	}
	width := 0
	if len(a) > 1 && a[0] == '0' || len(a) == len(b) && len(a) > 1 {
		width = len(a) // zero padding kept: {0000..2313}
	}
	out := make([]ShardFile, 0, hi-lo+1)
	for i := lo; i <= hi; i++ {
		v := fmt.Sprintf("%0*d", width, i)
		out = append(out, mk(i, s[:m[0]]+v+s[m[1]:]))
	}
	return out, nil
}

// globShards lists the files a path glob matches, each with the integer
// in the part of its name that varies across the matches.
func globShards(pattern string) ([]ShardFile, error) {
	if strings.Contains(pattern, "**") {
		return nil, fmt.Errorf("%q: ** is not supported; name the directory", pattern)
	}
	matches, err := filepath.Glob(pattern)
	if err != nil {
		return nil, fmt.Errorf("glob %q: %w", pattern, err)
	}
	var files []string
	for _, m := range matches {
		if fi, err := os.Stat(m); err == nil && !fi.IsDir() {
			files = append(files, m)
		}
	}
	if len(files) == 0 {
		return nil, fmt.Errorf("glob %q matches no file", pattern)
	}
	if len(files) > MaxShards {
		return nil, fmt.Errorf("glob %q matches %d files; at most %d", pattern, len(files), MaxShards)
	}
	return indexed(files, func(i int, key, f string) ShardFile { return ShardFile{Index: i, Key: key, Path: f} }, pattern)
}

// indexed gives each file its shard index (or key, when the part of the
// names that varies is not a number), sorted, refusing two files with one
// index or key.
func indexed(files []string, mk func(int, string, string) ShardFile, pattern string) ([]ShardFile, error) {
	idx, keys, err := shardIndexes(files)
	if err != nil {
		return nil, fmt.Errorf("glob %q: %w", redactURL(pattern), err)
	}
	out := make([]ShardFile, len(files))
	for i, f := range files {
		k := ""
		if keys != nil {
			k = keys[i]
		}
		out[i] = mk(idx[i], k, f)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Key != out[j].Key {
			return out[i].Key < out[j].Key
		}
		return out[i].Index < out[j].Index
	})
	for i := 1; i < len(out); i++ {
		if out[i].Index == out[i-1].Index && out[i].Key == out[i-1].Key {
			return nil, fmt.Errorf("glob %q: %s and %s have the same shard index %d", redactURL(pattern), path.Base(out[i-1].Location()), path.Base(out[i].Location()), out[i].Index)
		}
	}
	if keys != nil {
		for i := range out {
			out[i].Index = i // provisional: PairShards places keys among all sources' keys
		}
	}
	return out, nil
}

var digitsRE = regexp.MustCompile(`\d+`)

// shardIndexes finds each name's shard index: the integer in the part
// of the names that varies (the common prefix and suffix removed, widened
// to whole digit runs). One file alone: the only integer of its base name
// that is not in the extension, when there is exactly one.
func shardIndexes(files []string) ([]int, []string, error) {
	names := make([]string, len(files))
	for i, f := range files {
		names[i] = path.Base(filepath.ToSlash(f))
	}
	out := make([]int, len(names))
	if len(names) == 1 {
		stem := strings.TrimSuffix(names[0], path.Ext(names[0]))
		runs := digitsRE.FindAllString(stem, -1)
		if len(runs) != 1 {
			// No single number: the name itself is the key.
			return out, []string{stem}, nil
		}
		n, _ := strconv.Atoi(runs[0])
		out[0] = n
		return out, nil, nil
	}
	mids := make([]string, len(names))
	keyed := false
	pre, suf := len(names[0]), len(names[0])
	for _, n := range names[1:] {
		pre = min(pre, commonPrefix(names[0], n))
		suf = min(suf, commonSuffix(names[0], n))
	}
	for i, n := range names {
		a, b := pre, len(n)-suf
		if a > b { // names of different lengths overlapping: no middle
			a = b
		}
		for a > 0 && isDigit(n[a-1]) {
			a--
		}
		for b < len(n) && isDigit(n[b]) {
			b++
		}
		mid := n[a:b]
		mids[i] = mid
		v, err := strconv.Atoi(mid)
		if err != nil || mid == "" {
			keyed = true
			continue
		}
		out[i] = v
	}
	if !keyed {
		return out, nil, nil
	}
	// The part that varies is not a number (a hash): it is the key. The
	// common prefix and suffix are cut back to a separator ('_', '-', '.'),
	// so a key does not depend on which files happen to share their first
	// or last characters ("metadata_<hash>.parquet" and "<hash>.npz" both
	// key as <hash>).
	isSep := func(c byte) bool { return c == '_' || c == '-' || c == '.' }
	p0 := names[0][:pre]
	cut := 0
	for i := len(p0) - 1; i >= 0; i-- {
		if isSep(p0[i]) {
			cut = i + 1
			break
		}
	}
	s0 := names[0][len(names[0])-suf:]
	scut := 0
	for i := 0; i < len(s0); i++ {
		if isSep(s0[i]) {
			scut = len(s0) - i
			break
		}
	}
	for i, n := range names {
		a, b := cut, len(n)-scut
		if a > b {
			a = b
		}
		mids[i] = n[a:b]
		if mids[i] == "" {
			return nil, nil, fmt.Errorf("cannot tell the shard of %s: nothing in its name differs from the others", n)
		}
	}
	return out, mids, nil
}

func commonPrefix(a, b string) int {
	i := 0
	for i < len(a) && i < len(b) && a[i] == b[i] {
		i++
	}
	return i
}

func commonSuffix(a, b string) int {
	i := 0
	for i < len(a) && i < len(b) && a[len(a)-1-i] == b[len(b)-1-i] {
		i++
	}
	return i
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

// PairShards pairs the shard sets of sources by index. Every index present
// in one source must be present in all; the error names every missing
// (source, index). A mix of shard sets and plain single files is refused.
func PairShards(sets map[string][]ShardFile, sharded map[string]bool) ([]int, error) {
	var plain, multi []string
	for _, s := range SortedKeys(sets) {
		if sharded[s] {
			multi = append(multi, s)
		} else {
			plain = append(plain, s)
		}
	}
	if len(multi) == 0 {
		return []int{0}, nil
	}
	if len(plain) > 0 {
		return nil, fmt.Errorf("sources %s are single files while %s are shard sets: rows pair by shard index, so every source feeding points must be a shard set", strings.Join(plain, ", "), strings.Join(multi, ", "))
	}
	var keyed, numbered []string
	for _, s := range multi {
		if len(sets[s]) > 0 && sets[s][0].Key != "" {
			keyed = append(keyed, s)
		} else {
			numbered = append(numbered, s)
		}
	}
	if len(keyed) > 0 {
		if len(numbered) > 0 {
			return nil, fmt.Errorf("the shards of %s are named by number but those of %s are not (%s): shards pair by one kind of name", strings.Join(numbered, ", "), strings.Join(keyed, ", "), sets[keyed[0]][0].Key)
		}
		return pairKeys(sets, multi)
	}
	return pairedBy(sets, multi, func(f ShardFile) int { return f.Index }, "index")
}

// pairKeys pairs shard sets whose files are named by key (a hash): every
// key present in one source must be present in all. The keys, sorted,
// give the shard indexes (so the global row order is the keys' order),
// written into every set.
func pairKeys(sets map[string][]ShardFile, multi []string) ([]int, error) {
	keys, err := pairedBy(sets, multi, func(f ShardFile) string { return f.Key }, "name")
	if err != nil {
		return nil, err
	}
	pos := make(map[string]int, len(keys))
	for i, k := range keys {
		pos[k] = i
	}
	for _, s := range multi {
		for i := range sets[s] {
			sets[s][i].Index = pos[sets[s][i].Key]
		}
	}
	idx := make([]int, len(keys))
	for i := range idx {
		idx[i] = i
	}
	return idx, nil
}

// pairedBy returns the shard ids (index or key) of every source, sorted,
// or an error naming every (source, id) missing from a source that others
// have (the first 50, then a count).
func pairedBy[K cmp.Ordered](sets map[string][]ShardFile, multi []string, id func(ShardFile) K, what string) ([]K, error) {
	all := map[K]bool{}
	has := map[string]map[K]bool{}
	for _, s := range multi {
		has[s] = map[K]bool{}
		for _, f := range sets[s] {
			all[id(f)] = true
			has[s][id(f)] = true
		}
	}
	ids := make([]K, 0, len(all))
	for k := range all {
		ids = append(ids, k)
	}
	slices.Sort(ids)
	var missing []string
	for _, k := range ids {
		for _, s := range multi {
			if !has[s][k] {
				missing = append(missing, fmt.Sprintf("%s shard %v", s, k))
			}
		}
	}
	if len(missing) > 0 {
		shown, more := missing, ""
		if len(shown) > 50 {
			shown, more = shown[:50], fmt.Sprintf(" and %d more", len(missing)-50)
		}
		return nil, fmt.Errorf("shards are paired by %s across sources; missing: %s%s", what, strings.Join(shown, ", "), more)
	}
	return ids, nil
}

// RangeExtended reports whether cur is old with its {A..B} range's last
// index raised, nothing else changed (a shard set grown at the end).
// A URL's braces may be escaped (%7B, %7D: checkpoints keep URLs as
// url.URL writes them).
func RangeExtended(old, cur string) bool {
	unescape := strings.NewReplacer("%7B", "{", "%7b", "{", "%7D", "}", "%7d", "}")
	old, cur = unescape.Replace(old), unescape.Replace(cur)
	mo, mc := rangeRE.FindAllStringSubmatchIndex(old, -1), rangeRE.FindAllStringSubmatchIndex(cur, -1)
	if len(mo) != 1 || len(mc) != 1 {
		return false
	}
	o, c := mo[0], mc[0]
	if old[:o[0]] != cur[:c[0]] || old[o[1]:] != cur[c[1]:] || old[o[2]:o[3]] != cur[c[2]:c[3]] {
		return false
	}
	ho, err1 := strconv.Atoi(old[o[4]:o[5]])
	hc, err2 := strconv.Atoi(cur[c[4]:c[5]])
	return err1 == nil && err2 == nil && hc > ho
}

// ShardKeys names each file's shard as a shard set would: its index (the
// integer in the part of the names that varies), or for files named by
// hash the hash. init uses it to say which shard a source lacks.
func ShardKeys(files []string) ([]string, error) {
	idx, keys, err := shardIndexes(files)
	if err != nil {
		return nil, err
	}
	out := make([]string, len(files))
	for i := range files {
		if keys != nil {
			out[i] = keys[i]
		} else {
			out[i] = strconv.Itoa(idx[i])
		}
	}
	return out, nil
}
