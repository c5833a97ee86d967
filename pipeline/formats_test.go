package pipeline

import "io"

// The config language asks the format registry; its own tests register
// descriptors of the built-in formats (formats/all registers the real
// plugins in the program; cmd/snappipe checks the schema against those).
type testFormat struct {
	name  string
	exts  []string
	table bool
	opts  []string
}

func (f testFormat) Name() string         { return f.name }
func (f testFormat) Extensions() []string { return f.exts }
func (f testFormat) Table() bool          { return f.table }
func (f testFormat) Options() []string    { return f.opts }
func (f testFormat) Prefixable() bool     { return !f.table }
func (f testFormat) Probe(io.ReaderAt, int64, int64, *Source, string) (FormatFile, error) {
	panic("not in config tests")
}

func init() {
	for _, f := range []testFormat{
		{name: "parquet", exts: []string{".parquet"}, table: true},
		{name: "npy", exts: []string{".npy"}},
		{name: "npz", exts: []string{".npz"}, opts: []string{"array"}},
		{name: "fvecs", exts: []string{".fvecs"}},
		{name: "bvecs", exts: []string{".bvecs"}},
	} {
		RegisterFormat(f)
	}
}
