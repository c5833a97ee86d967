package config

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"sort"
	"strings"
	"unicode/utf16"
	"unicode/utf8"
)

// Severities.
const (
	SeverityError   = "error"
	SeverityWarning = "warning"
)

// Diagnostic is one problem in a config file, from a start position to an
// end position (the end is just past the value when it is known, else the
// start). An error stops the load; a warning is reported and the config is
// used.
type Diagnostic struct {
	File      string `json:"file"`
	Line      int    `json:"line"`
	Column    int    `json:"column"`
	EndLine   int    `json:"end_line,omitempty"`
	EndColumn int    `json:"end_column,omitempty"`
	Severity  string `json:"severity"`
	Path      string `json:"path,omitempty"` // key path, e.g. collection.vectors.image.size
	Message   string `json:"message"`
}

// IsWarning reports whether the diagnostic does not stop the load.
func (d Diagnostic) IsWarning() bool { return d.Severity == SeverityWarning }

func (d Diagnostic) String() string {
	var b strings.Builder
	b.WriteString(d.File)
	if d.Line > 0 {
		fmt.Fprintf(&b, ":%d:%d", d.Line, d.Column)
	}
	b.WriteString(": ")
	if d.IsWarning() {
		b.WriteString("warning: ")
	}
	if d.Path != "" {
		b.WriteString(d.Path)
		b.WriteString(": ")
	}
	b.WriteString(d.Message)
	return b.String()
}

// Diagnostics is every problem found in one pass; as an error it lists them
// all, one per line, in file order.
type Diagnostics []Diagnostic

func (ds Diagnostics) Error() string {
	lines := make([]string, len(ds))
	for i, d := range ds {
		lines[i] = d.String()
	}
	return strings.Join(lines, "\n")
}

// Sort orders diagnostics by file, line, column, then message, and drops
// exact duplicates.
func (ds Diagnostics) Sort() Diagnostics {
	sort.SliceStable(ds, func(i, j int) bool {
		a, b := ds[i], ds[j]
		if a.File != b.File {
			return a.File < b.File
		}
		if a.Line != b.Line {
			return a.Line < b.Line
		}
		if a.Column != b.Column {
			return a.Column < b.Column
		}
		return a.Message < b.Message
	})
	out := ds[:0]
	for i, d := range ds {
		if i > 0 && d == ds[i-1] {
			continue
		}
		out = append(out, d)
	}
	return out
}

// Err returns ds as an error when it holds an error (warnings included,
// so every problem is listed at once), or nil.
func (ds Diagnostics) Err() error {
	for _, d := range ds {
		if !d.IsWarning() {
			return ds.Sort()
		}
	}
	return nil
}

// Warnings returns the warnings alone.
func (ds Diagnostics) Warnings() Diagnostics {
	var out Diagnostics
	for _, d := range ds {
		if d.IsWarning() {
			out = append(out, d)
		}
	}
	return out.Sort()
}

// suggest returns the candidate s abbreviates or extends ("cos" for
// Cosine, "euclidean" for Euclid) when exactly one does, else the one
// closest to s by edit distance, if close. Case is ignored.
func suggest(s string, candidates []string) string {
	if ls := strings.ToLower(s); len(ls) >= 2 {
		match := ""
		for _, c := range candidates {
			if lc := strings.ToLower(c); lc != ls && (strings.HasPrefix(lc, ls) || strings.HasPrefix(ls, lc)) {
				if match != "" {
					match = ""
					break
				}
				match = c
			}
		}
		if match != "" {
			return match
		}
	}
	best, bestD := "", 1<<30
	for _, c := range candidates {
		d := levenshtein(strings.ToLower(s), strings.ToLower(c))
		if d < bestD {
			best, bestD = c, d
		}
	}
	if bestD <= max(2, len(s)/3) {
		return best
	}
	return ""
}

func levenshtein(a, b string) int {
	ra, rb := []rune(a), []rune(b)
	prev := make([]int, len(rb)+1)
	cur := make([]int, len(rb)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(ra); i++ {
		cur[0] = i
		for j := 1; j <= len(rb); j++ {
			cost := 1
			if ra[i-1] == rb[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(rb)]
}

// SourceLines splits a config file into lines as YAML counts them (a
// diagnostic's Line indexes them from 1): "\r\n", "\r" and "\n" each end
// a line, so a file saved with old Mac line ends is not one long line, and
// so do NEL, LS and PS (U+0085, U+2028, U+2029), which YAML 1.1 counts as
// line breaks too. A file with a UTF-16 byte order mark is read as UTF-16,
// as the YAML parser reads it; a UTF-8 one loses its mark.
func SourceLines(data []byte) []string {
	s := yamlText(data)
	var out []string
	start := 0
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		switch r {
		case '\r':
			if i+1 < len(s) && s[i+1] == '\n' {
				size = 2
			}
			fallthrough
		case '\n', '\u0085', '\u2028', '\u2029':
			out = append(out, s[start:i])
			start = i + size
		}
		i += size
	}
	return append(out, s[start:])
}

// yamlText is the text the YAML parser reads from data: UTF-16 (big or
// little endian, by its byte order mark) as UTF-8, a UTF-8 mark dropped.
func yamlText(data []byte) string {
	var order binary.ByteOrder
	switch {
	case bytes.HasPrefix(data, []byte{0xEF, 0xBB, 0xBF}):
		return string(data[3:])
	case bytes.HasPrefix(data, []byte{0xFE, 0xFF}):
		order = binary.BigEndian
	case bytes.HasPrefix(data, []byte{0xFF, 0xFE}):
		order = binary.LittleEndian
	default:
		return string(data)
	}
	u := make([]uint16, 0, len(data)/2)
	for i := 2; i+1 < len(data); i += 2 {
		u = append(u, order.Uint16(data[i:]))
	}
	return string(utf16.Decode(u))
}
