package pipeline

import (
	"io"

	"github.com/snappipe/snappipe/pipeline/config"
)

// Format is a source file format plugin. A format is one package that
// registers itself with RegisterFormat (formats/all imports every one):
// the config language, the download and decode stages and plan ask the
// registry and know no format by name.
type Format interface {
	// FormatInfo is what the config language knows of a format: name,
	// extensions, table or array, options.
	config.FormatInfo
	// Prefixable formats can be read from a prefix of the file: under a
	// row limit a url: source fetches only PrefixBytes(limit) bytes. The
	// others are read in place by HTTP Range under a limit.
	Prefixable() bool
	// Probe reads what the file holds. r holds the file's first avail bytes
	// (avail == size unless only a prefix was fetched); size is the whole
	// file's size. Probe reads only headers and footers, so r may be remote.
	Probe(r io.ReaderAt, size, avail int64, src *config.Source, name string) (FormatFile, error)
}

// SizeDeclarer is implemented by formats whose header says how long the
// whole file is (npy: header + rows × row bytes). A download whose server
// declares no size is then refused past that size instead of growing
// without bound. DeclaredSize gets the file's first bytes (up to 64 KiB)
// and returns -1 when they do not tell.
type SizeDeclarer interface {
	DeclaredSize(head []byte) int64
}

// ColumnInfo describes a table column for `snappipe init`.
type ColumnInfo struct {
	Name         string
	Vector       bool // a fixed-width list of floats: a vector
	Width        int
	VaryingWidth bool // a list of floats whose length varies (reported, not guessed)
	Half         bool // float16 elements
	ID           bool // unsigned integer or UUID: a point id candidate
	JSONText     bool // a vector stored as JSON text in a string column (json_vectors)
	Multi        bool // token vectors of Width (list<list<float>>): a multivector
	// SparseValues names the float-list column that pairs with this
	// integer-list column as a sparse vector; SparsePart marks both.
	SparseValues string
	SparsePart   bool
}

// MemberLister is a Format whose files hold several arrays, one chosen by
// an option (npz: array). init lists them to propose one source each.
type MemberLister interface {
	Members(r io.ReaderAt, size int64) (option string, names []string, err error)
}

// Inspector is a table FormatFile that can classify its columns (init).
type Inspector interface {
	Inspect() ([]ColumnInfo, error)
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

// Selection says what a reader must produce.
type Selection struct {
	Vectors []string // vector columns (table formats); arrays give "" always
	// Multi are list<list<float>> columns read as multi-dense vectors
	// (RowBlock.Multi); Sparse are indices/values list column pairs read
	// as sparse vectors (RowBlock.Sparse). Table formats only; a format
	// that cannot read them fails Open naming the column.
	Multi      []string
	Sparse     []SparsePair
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
	// Read fills blk with rows [blk.Start, blk.Start+blk.N): the vectors
	// (float32 in blk.Vectors, or little-endian float16 kept as bytes in
	// blk.Half), and the payload (blk.Payload, one column per key; a
	// PayloadBuilder fills it) and ids the selection asked for. It may set
	// blk.Release to hand buffers back once the block is done
	// (internal/bufpool holds buffers shared by every file).
	Read(blk *RowBlock) error
	Close() error
}

// RegisterFormat adds a format plugin (to the config language's registry
// too); a second format of the same name or extension panics.
func RegisterFormat(f Format) { config.RegisterFormat(f) }

// FormatByName returns a registered format plugin, or nil.
func FormatByName(name string) Format {
	f, _ := config.FormatByName(name).(Format)
	return f
}

// FormatForName infers a format plugin from a file name's extension.
func FormatForName(file string) Format {
	f, _ := config.FormatForName(file).(Format)
	return f
}

// SortedKeys returns a map's keys in order.
func SortedKeys[V any](m map[string]V) []string { return config.SortedKeys(m) }

// UsedSources returns the sources that feed points, sorted.
func UsedSources(c *config.Config) []string { return config.UsedSources(c) }
