package config

import (
	"strings"
	"testing"
)

// The config language asks the format registry; its own tests register
// descriptors of the built-in formats (formats/all registers the real
// plugins in the program; cmd/snappipe checks the schema against those).
type testFormat struct {
	name  string
	exts  []string
	table bool
	opts  []FormatOption
}

func (f testFormat) Name() string            { return f.name }
func (f testFormat) Extensions() []string    { return f.exts }
func (f testFormat) Table() bool             { return f.table }
func (f testFormat) Options() []FormatOption { return f.opts }

// npzArrayDoc is formats/npz's doc of its option (the schema test compares
// the generated schema with the committed one, made by the real plugins).
const parquetJSONDoc = "Comma-separated string columns that hold a vector as JSON text (\"[0.12, -0.5, ...]\", the layout of Qdrant/wolt-food-clip); they are parsed into vectors."

const npzArrayDoc = "The array to read: its member name without .npy (np.savez names them by keyword, or arr_0, arr_1...). Required when the archive holds more than one array."

func init() {
	for _, f := range []testFormat{
		{name: "parquet", exts: []string{".parquet"}, table: true, opts: []FormatOption{{Key: "json_vectors", Doc: parquetJSONDoc}}},
		{name: "npy", exts: []string{".npy"}},
		{name: "npz", exts: []string{".npz"}, opts: []FormatOption{{Key: "array", Doc: npzArrayDoc}}},
		{name: "fvecs", exts: []string{".fvecs"}},
		{name: "bvecs", exts: []string{".bvecs"}},
	} {
		RegisterFormat(f)
	}
}

func TestFormatOptionsValidated(t *testing.T) {
	base := "version: 1\nname: p\ncollection: { name: C, vectors: { v: { size: 4, distance: Dot } } }\npoints: { vectors: { v: s } }\nsnapshot: { destination: out }\n"
	for _, tc := range []struct{ src, want string }{
		{"sources:\n  s: { path: a.npz, array: img }\n", ""},
		{"sources:\n  s: { path: a.npy, array: img }\n", "p.yaml:7:28: sources.s.array: format npy has no option array (array is an option of npz)"},
		{"sources:\n  s: { path: a.npz, arry: img }\n", `p.yaml:7:21: sources.s.arry: unknown key "arry"; did you mean "array"?`},
		{"sources:\n  s: { path: a.npz, array: [x] }\n", "p.yaml:7:28: sources.s.array: expected a string, got a list"},
		{"sources:\n  s: { path: a.bin }\n", `cannot tell the format from "a.bin" (known extensions: .bvecs, .fvecs, .npy, .npz, .parquet)`},
	} {
		cfg, err := Load("p.yaml", []byte(base+tc.src), t.TempDir(), LoadOptions{Lookup: func(string) (string, bool) { return "", false }})
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%s: %v", tc.src, err)
		case tc.want == "" && cfg.Sources["s"].Option("array") != "img":
			t.Errorf("%s: array = %q", tc.src, cfg.Sources["s"].Option("array"))
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("%s: err = %v, want %q", tc.src, err, tc.want)
		}
	}
}

// Diagnostics carry a severity and the end of the value.
func TestDiagnosticEndAndSeverity(t *testing.T) {
	doc := "version: 1\nname: p\ncollection: { name: C, vectors: { v: { size: 4, distance: \"cosine\" } } }\n" +
		"sources: { s: { path: a.npy }, spare: { path: b.npy } }\npoints: { vectors: { v: s } }\nsnapshot: { destination: out }\n"
	_, err := Load("p.yaml", []byte(doc), t.TempDir(), LoadOptions{Lookup: func(string) (string, bool) { return "", false }})
	ds, ok := err.(Diagnostics)
	if !ok || len(ds) != 1 {
		t.Fatalf("err = %v", err)
	}
	d := ds[0]
	// "cosine" in quotes: columns 59 to 67 (just past the closing quote).
	if d.Severity != SeverityError || d.Line != 3 || d.Column != 59 || d.EndLine != 3 || d.EndColumn != 67 {
		t.Fatalf("diagnostic %+v", d)
	}
	cfg, err := Load("p.yaml", []byte(strings.Replace(doc, `"cosine"`, "Cosine", 1)), t.TempDir(), LoadOptions{Lookup: func(string) (string, bool) { return "", false }})
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.Warnings) != 1 || !cfg.Warnings[0].IsWarning() || cfg.Warnings[0].Path != "sources.spare" || !strings.Contains(cfg.Warnings[0].String(), "warning: sources.spare") {
		t.Fatalf("warnings %+v", cfg.Warnings)
	}
}
