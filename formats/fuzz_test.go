package formats_test

import (
	"bytes"
	"os"
	"testing"

	"github.com/snappipe/snappipe/internal/npy"
	"github.com/snappipe/snappipe/pipeline"
	"github.com/snappipe/snappipe/pipeline/config"
)

// FuzzFormats hands every format plugin arbitrary bytes under its own
// name: probing, opening and reading blocks must return errors, never
// panic, and never allocate more than the bytes could describe. Seeds are
// the fixtures numpy wrote, the Parquet sample and damaged copies.
func FuzzFormats(f *testing.F) {
	for _, name := range []string{"emb.fvecs", "emb.bvecs", "emb_stored.npz", "emb_deflated.npz", "emb_zip64.npz", "one_deflated.npz"} {
		b, err := os.ReadFile(fixture(name))
		if err != nil {
			continue // seeds are a help, not a need
		}
		f.Add(name, b)
		if len(b) > 200 {
			f.Add(name, b[:len(b)/2])
			d := bytes.Clone(b)
			d[len(d)/3] ^= 0x5a
			d[20] ^= 0xff
			f.Add(name, d)
		}
	}
	for _, descr := range []string{"<f2", "<f4", ">f8"} {
		var b bytes.Buffer
		npy.WriteHeader(&b, descr, 4, 8)
		b.Write(bytes.Repeat([]byte{0x3c, 0x01}, 4*8*4))
		f.Add("x.npy", b.Bytes())
	}
	if b, err := os.ReadFile("../testdata/sample/metadata_0000.parquet"); err == nil && len(b) < 1<<20 {
		f.Add("metadata.parquet", b)
	}
	f.Fuzz(func(t *testing.T, name string, data []byte) {
		ff := pipeline.FormatForName(name)
		if ff == nil {
			return
		}
		for _, src := range []*config.Source{{}, {Options: map[string]string{"array": "txt"}}} {
			file, err := ff.Probe(bytes.NewReader(data), int64(len(data)), int64(len(data)), src, name)
			if err != nil {
				continue
			}
			_ = file.Describe()
			rows := file.Rows()
			if rows < 0 {
				t.Fatalf("%s: %d rows", name, rows)
			}
			sel := pipeline.Selection{}
			if ff.Table() {
				sel.AllPayload = true
			}
			end := min(rows, 64)
			rr, err := file.Open(sel, 0, end)
			if err != nil {
				continue
			}
			w := rr.Widths()
			for c, n := range w {
				if n < 0 || n > 1<<16 {
					t.Fatalf("%s: width %d for %q accepted", name, n, c)
				}
			}
			for s := int64(0); s < end; s += 16 {
				blk := &pipeline.RowBlock{Start: s, N: int(min(16, end-s))}
				err := rr.Read(blk)
				if blk.Release != nil {
					blk.Release()
				}
				if err != nil {
					break
				}
			}
			rr.Close()
		}
	})
}
