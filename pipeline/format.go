package pipeline

import (
	"fmt"
	"io"
	"path"
	"slices"
	"strings"
	"sync"
)

// Format is a source file format plugin. A format is one package that
// registers itself with RegisterFormat (formats/all imports every one):
// the config language, the download and decode stages and plan ask the
// registry and know no format by name.
type Format interface {
	// Name is the value of sources.NAME.format.
	Name() string
	// Extensions are the file name endings that infer this format (".npy").
	Extensions() []string
	// Table formats have named columns (payload, id, vector list columns);
	// the others hold one vector per row (no column).
	Table() bool
	// Options are the keys under sources.NAME this format accepts beyond
	// the common ones (url, path, format, sha256): validated with
	// positions, in the JSON Schema and the README's config reference.
	Options() []FormatOption
	// Prefixable formats can be read from a prefix of the file: under a
	// row limit a url: source fetches only PrefixBytes(limit) bytes. The
	// others are read in place by HTTP Range under a limit.
	Prefixable() bool
	// Probe reads what the file holds. r holds the file's first avail bytes
	// (avail == size unless only a prefix was fetched); size is the whole
	// file's size. Probe reads only headers and footers, so r may be remote.
	Probe(r io.ReaderAt, size, avail int64, src *Source, name string) (FormatFile, error)
}

// FormatFile is one probed file.
type FormatFile interface {
	// Describe is a one-line description for plan and errors.
	Describe() string
	// Rows in the file.
	Rows() int64
	// Columns are a table's columns, in file order (nil for arrays).
	Columns() []string
	// PrefixBytes is how many leading bytes hold the first n rows; -1 when
	// the format cannot be read from a prefix.
	PrefixBytes(n int64) int64
	// Open streams rows [start, end) with what sel asks for. It fails,
	// naming the file, when the bytes for those rows are not there.
	Open(sel Selection, start, end int64) (RowReader, error)
}

// FormatOption is one key a format accepts under sources.NAME. Values are
// strings (${VAR} expanded like any value).
type FormatOption struct {
	Key string
	Doc string
}

// formatOptions maps each option key to the formats that declare it.
func formatOptions() map[string][]string {
	formatsMu.RLock()
	defer formatsMu.RUnlock()
	out := map[string][]string{}
	for _, n := range SortedKeys(formats) {
		for _, o := range formats[n].Options() {
			out[o.Key] = append(out[o.Key], n)
		}
	}
	return out
}

// hasOption reports whether format f declares key.
func hasOption(f Format, key string) bool {
	for _, o := range f.Options() {
		if o.Key == key {
			return true
		}
	}
	return false
}

// Selection says what a reader must produce.
type Selection struct {
	Vectors    []string // vector columns (table formats); arrays give "" always
	Payload    []string // payload columns, or
	AllPayload bool     // every column but Exclude (and vector/id columns)
	Exclude    []string
	ID         string // id column
}

// RowReader fills row blocks in order.
type RowReader interface {
	// Widths are the vector widths by column, known once Open returned
	// (a table reads its first row for them).
	Widths() map[string]int
	// Read fills blk with rows [blk.Start, blk.Start+blk.N): the vectors,
	// and the payloads and ids the selection asked for. It may set
	// blk.Release to hand buffers back once the block is done.
	Read(blk *RowBlock) error
	Close() error
}

var (
	formatsMu sync.RWMutex
	formats   = map[string]Format{}
)

// RegisterFormat adds a format; a second format of the same name or
// extension panics (a programming error, found at start-up).
func RegisterFormat(f Format) {
	formatsMu.Lock()
	defer formatsMu.Unlock()
	if _, dup := formats[f.Name()]; dup {
		panic(fmt.Sprintf("pipeline: format %q registered twice", f.Name()))
	}
	for _, o := range formats {
		for _, e := range f.Extensions() {
			if slices.Contains(o.Extensions(), e) {
				panic(fmt.Sprintf("pipeline: extension %s claimed by formats %q and %q", e, o.Name(), f.Name()))
			}
		}
	}
	formats[f.Name()] = f
}

// FormatByName returns a registered format, or nil.
func FormatByName(name string) Format {
	formatsMu.RLock()
	defer formatsMu.RUnlock()
	return formats[name]
}

// FormatNames lists the registered formats, sorted.
func FormatNames() []string {
	formatsMu.RLock()
	defer formatsMu.RUnlock()
	return SortedKeys(formats)
}

// FormatForName infers a format from a file name's extension; nil when no
// registered format claims it.
func FormatForName(file string) Format {
	ext := strings.ToLower(path.Ext(file))
	formatsMu.RLock()
	defer formatsMu.RUnlock()
	for _, n := range SortedKeys(formats) {
		if slices.Contains(formats[n].Extensions(), ext) {
			return formats[n]
		}
	}
	return nil
}

// formatExtensions lists every claimed extension, for messages.
func formatExtensions() []string {
	formatsMu.RLock()
	defer formatsMu.RUnlock()
	var out []string
	for _, n := range SortedKeys(formats) {
		out = append(out, formats[n].Extensions()...)
	}
	return out
}
