package config

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
)

// ShardFile is one file of a source: its shard index and where it is.
type ShardFile struct {
	Index int
	URL   string // for url: sources (as written: may hold secrets)
	Path  string // for path: sources, resolved against the config's directory
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

// IsShardSet reports whether a source names many files: a {A..B} range in
// its url or path, or glob characters in its path.
func (s *Source) IsShardSet() bool {
	loc := s.Path
	if s.URL != "" {
		loc = s.URL
	}
	return rangeRE.MatchString(loc) || (s.URL == "" && strings.ContainsAny(s.Path, "*?["))
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
		return nil, fmt.Errorf("%q holds %d {A..B} ranges; a shard set has exactly one", redactURL(s), len(ms))
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
	idx, err := shardIndexes(files)
	if err != nil {
		return nil, fmt.Errorf("glob %q: %w", pattern, err)
	}
	out := make([]ShardFile, len(files))
	for i, f := range files {
		out[i] = ShardFile{Index: idx[i], Path: f}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Index < out[j].Index })
	for i := 1; i < len(out); i++ {
		if out[i].Index == out[i-1].Index {
			return nil, fmt.Errorf("glob %q: %s and %s have the same shard index %d", pattern, filepath.Base(out[i-1].Path), filepath.Base(out[i].Path), out[i].Index)
		}
	}
	return out, nil
}

var digitsRE = regexp.MustCompile(`\d+`)

// shardIndexes finds each name's shard index: the integer in the part
// of the names that varies (the common prefix and suffix removed, widened
// to whole digit runs). One file alone: the only integer of its base name
// that is not in the extension, when there is exactly one.
func shardIndexes(files []string) ([]int, error) {
	names := make([]string, len(files))
	for i, f := range files {
		names[i] = filepath.Base(f)
	}
	out := make([]int, len(names))
	if len(names) == 1 {
		stem := strings.TrimSuffix(names[0], filepath.Ext(names[0]))
		runs := digitsRE.FindAllString(stem, -1)
		if len(runs) != 1 {
			return nil, fmt.Errorf("cannot tell the shard index of %s: its name holds %d integers", names[0], len(runs))
		}
		n, _ := strconv.Atoi(runs[0])
		out[0] = n
		return out, nil
	}
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
		v, err := strconv.Atoi(mid)
		if err != nil || mid == "" {
			return nil, fmt.Errorf("cannot tell the shard index of %s: the part that varies (%q) is not an integer", n, mid)
		}
		out[i] = v
	}
	return out, nil
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
	all := map[int]bool{}
	has := map[string]map[int]bool{}
	for _, s := range multi {
		has[s] = map[int]bool{}
		for _, f := range sets[s] {
			all[f.Index] = true
			has[s][f.Index] = true
		}
	}
	idx := make([]int, 0, len(all))
	for i := range all {
		idx = append(idx, i)
	}
	sort.Ints(idx)
	var missing []string
	for _, i := range idx {
		for _, s := range multi {
			if !has[s][i] {
				missing = append(missing, fmt.Sprintf("%s shard %d", s, i))
			}
		}
	}
	if len(missing) > 0 {
		shown := missing
		more := ""
		if len(shown) > 50 {
			shown, more = shown[:50], fmt.Sprintf(" and %d more", len(missing)-50)
		}
		return nil, fmt.Errorf("shards are paired by index across sources; missing: %s%s", strings.Join(shown, ", "), more)
	}
	return idx, nil
}
