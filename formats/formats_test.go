// Package formats_test checks the format plugins against files numpy
// wrote (testdata/formats, made by scripts/gen_format_fixtures.py): every
// value is compared with the formula that generated it.
package formats_test

import (
	"bytes"
	"encoding/binary"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	_ "github.com/snappipe/snappipe/formats/all"
	"github.com/snappipe/snappipe/pipeline"
	"github.com/snappipe/snappipe/pipeline/config"
)

const rows, dim = 300, 12

func val(i, j, mod int) int { return (i*31 + j*7) % mod }

// Want returns the expected vector of row i of array kind img, txt or
// bvecs.
func want(kind string, i int) []float32 {
	out := make([]float32, dim)
	for j := range out {
		switch kind {
		case "img":
			out[j] = float32(val(i, j, 251))/8 - 15
		case "txt":
			out[j] = float32(val(i, j, 199))/4 - 20
		case "bvecs":
			out[j] = float32(val(i, j, 256))
		}
	}
	return out
}

func fixture(name string) string { return filepath.Join("..", "testdata", "formats", name) }

func probe(t *testing.T, format, file string, src *config.Source) (pipeline.FormatFile, error) {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	f := pipeline.FormatForName(file)
	if f == nil || f.Name() != format {
		t.Fatalf("%s: inferred format %v, want %s", file, f, format)
	}
	if src == nil {
		src = &config.Source{}
	}
	return f.Probe(bytes.NewReader(b), int64(len(b)), int64(len(b)), src, file)
}

// readAll reads rows [start, end) in blocks of bs and checks each value.
func readAll(t *testing.T, ff pipeline.FormatFile, kind string, start, end int64, bs int) {
	t.Helper()
	rr, err := ff.Open(pipeline.Selection{}, start, end)
	if err != nil {
		t.Fatal(err)
	}
	defer rr.Close()
	if w := rr.Widths()[""]; w != dim {
		t.Fatalf("width %d", w)
	}
	for s := start; s < end; s += int64(bs) {
		blk := &pipeline.RowBlock{Start: s, N: int(min(int64(bs), end-s))}
		if err := rr.Read(blk); err != nil {
			t.Fatalf("rows from %d: %v", s, err)
		}
		v := blk.Floats("") // float16 arrays stay float16 in the block
		for i := 0; i < blk.N; i++ {
			w := want(kind, int(s)+i)
			for j := range w {
				if v[i*dim+j] != w[j] {
					t.Fatalf("%s row %d col %d: %v, want %v", kind, int(s)+i, j, v[i*dim+j], w[j])
				}
			}
		}
		if blk.Release != nil {
			blk.Release()
		}
	}
}

func TestNpzStoredAndDeflated(t *testing.T) {
	for _, file := range []string{"emb_stored.npz", "emb_deflated.npz", "emb_zip64.npz"} {
		for _, kind := range []string{"img", "txt"} {
			t.Run(file+"/"+kind, func(t *testing.T) {
				ff, err := probe(t, "npz", fixture(file), &config.Source{Options: map[string]string{"array": kind}})
				if err != nil {
					t.Fatal(err)
				}
				if ff.Rows() != rows || ff.PrefixBytes(10) != -1 {
					t.Fatalf("rows %d prefix %d", ff.Rows(), ff.PrefixBytes(10))
				}
				readAll(t, ff, kind, 0, rows, 64)
				// Resume from a later row (deflated: inflated and skipped).
				readAll(t, ff, kind, 128, rows, 50)
				readAll(t, ff, kind, 0, 7, 64) // a limit
			})
		}
	}
	// One array: no option needed.
	ff, err := probe(t, "npz", fixture("one_deflated.npz"), nil)
	if err != nil {
		t.Fatal(err)
	}
	readAll(t, ff, "img", 0, rows, 100)
}

func TestNpzArrayChoice(t *testing.T) {
	_, err := probe(t, "npz", fixture("emb_stored.npz"), nil)
	if err == nil || !strings.Contains(err.Error(), "holds 3 arrays (ids, img, txt): choose one with array: NAME") {
		t.Fatalf("no array option: %v", err)
	}
	_, err = probe(t, "npz", fixture("emb_stored.npz"), &config.Source{Options: map[string]string{"array": "image"}})
	if err == nil || !strings.Contains(err.Error(), `array "image" is not in the archive (arrays: ids, img, txt)`) {
		t.Fatalf("unknown array: %v", err)
	}
}

// An npz whose member header lies about its size is refused at probe.
func TestNpzLyingMember(t *testing.T) {
	b, _ := os.ReadFile(fixture("emb_stored.npz"))
	// Change the shape in img.npy's header: (300, 12) -> (900, 12).
	i := bytes.Index(b, []byte("(300, 12)"))
	if i < 0 {
		t.Fatal("fixture header not found")
	}
	c := append([]byte(nil), b...)
	copy(c[i:], "(900, 12)")
	f := pipeline.FormatByName("npz")
	_, err := f.Probe(bytes.NewReader(c), int64(len(c)), int64(len(c)), &config.Source{Options: map[string]string{"array": "img"}}, "x.npz")
	if err == nil || !strings.Contains(err.Error(), "the archive says the member has") {
		t.Fatalf("lying header: %v", err)
	}
	// Not a zip at all.
	if _, err := f.Probe(bytes.NewReader([]byte("nope")), 4, 4, &config.Source{}, "x.npz"); err == nil {
		t.Fatal("garbage accepted")
	}
}

func TestFvecsBvecs(t *testing.T) {
	for _, tc := range []struct{ format, file, kind string }{{"fvecs", "emb.fvecs", "img"}, {"bvecs", "emb.bvecs", "bvecs"}} {
		t.Run(tc.format, func(t *testing.T) {
			ff, err := probe(t, tc.format, fixture(tc.file), nil)
			if err != nil {
				t.Fatal(err)
			}
			rec := int64(4 + dim*map[string]int{"fvecs": 4, "bvecs": 1}[tc.format])
			if ff.Rows() != rows || ff.PrefixBytes(10) != 10*rec || ff.PrefixBytes(1e9) != rows*rec {
				t.Fatalf("rows %d prefix %d", ff.Rows(), ff.PrefixBytes(10))
			}
			readAll(t, ff, tc.kind, 0, rows, 64)
			readAll(t, ff, tc.kind, 200, rows, 64)
			// A prefix of 10 records with the whole size known reads those 10.
			b, _ := os.ReadFile(fixture(tc.file))
			f := pipeline.FormatByName(tc.format)
			pf, err := f.Probe(bytes.NewReader(b[:10*rec]), int64(len(b)), 10*rec, nil, tc.file)
			if err != nil {
				t.Fatal(err)
			}
			readAll(t, pf, tc.kind, 0, 10, 64)
			if _, err := pf.Open(pipeline.Selection{}, 0, 11); err == nil || !strings.Contains(err.Error(), "truncated") {
				t.Fatalf("open past the prefix: %v", err)
			}
		})
	}
}

func TestFvecsMalformed(t *testing.T) {
	b, _ := os.ReadFile(fixture("emb.fvecs"))
	rec := 4 + dim*4
	f := pipeline.FormatByName("fvecs")
	// A size that is not whole records: the cut record is named.
	cut := b[:len(b)-5]
	_, err := f.Probe(bytes.NewReader(cut), int64(len(cut)), int64(len(cut)), nil, "x.fvecs")
	if err == nil || !strings.Contains(err.Error(), "record 299 is cut short") {
		t.Fatalf("cut file: %v", err)
	}
	// Record 5 with another dimension (the size stays whole: 13 = 12+1
	// values would change it, so the dimension field alone lies).
	bad := append([]byte(nil), b...)
	binary.LittleEndian.PutUint32(bad[5*rec:], 11)
	ff, err := f.Probe(bytes.NewReader(bad), int64(len(bad)), int64(len(bad)), nil, "x.fvecs")
	if err != nil {
		t.Fatal(err)
	}
	rr, _ := ff.Open(pipeline.Selection{}, 0, rows)
	err = rr.Read(&pipeline.RowBlock{Start: 0, N: 64})
	if err == nil || !strings.Contains(err.Error(), "record 5 has dimension 11, record 0 has 12") {
		t.Fatalf("bad record: %v", err)
	}
	// A first record with an absurd dimension.
	junk := []byte{0xff, 0xff, 0xff, 0x7f, 1, 2, 3, 4}
	if _, err := f.Probe(bytes.NewReader(junk), 8, 8, nil, "x.fvecs"); err == nil || !strings.Contains(err.Error(), "record 0 has dimension") {
		t.Fatalf("junk: %v", err)
	}
	var _ io.ReaderAt = bytes.NewReader(nil)
}
