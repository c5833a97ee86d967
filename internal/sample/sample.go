// Package sample writes a deterministic LAION-like dataset: a metadata
// Parquet file with LAION's 15 columns (nulls, empty strings, unicode), and
// img_emb/text_emb .npy files of L2-normalised float16 vectors whose row i
// belongs to metadata row i.
//
//	gensample -rows 2000 -out testdata/sample
//
// Output is a pure function of the flags, so sample and benchmark inputs can
// be regenerated anywhere.
package sample

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"

	"github.com/parquet-go/parquet-go"
	"github.com/snappipe/snappipe/internal/atomicfile"
	"github.com/snappipe/snappipe/internal/npy"
	"github.com/x448/float16"
	"io"
)

// Meta is one LAION metadata row (pyarrow writes every column OPTIONAL).
type Meta struct {
	ImagePath      *string  `parquet:"image_path,optional"`
	Caption        *string  `parquet:"caption,optional"`
	NSFW           *string  `parquet:"NSFW,optional"`
	Similarity     *float64 `parquet:"similarity,optional"`
	LICENSE        *string  `parquet:"LICENSE,optional"`
	URL            *string  `parquet:"url,optional"`
	Key            *string  `parquet:"key,optional"`
	Status         *string  `parquet:"status,optional"`
	ErrorMessage   *string  `parquet:"error_message,optional"`
	Width          *int64   `parquet:"width,optional"`
	Height         *int64   `parquet:"height,optional"`
	OriginalWidth  *int64   `parquet:"original_width,optional"`
	OriginalHeight *int64   `parquet:"original_height,optional"`
	Exif           *string  `parquet:"exif,optional"`
	MD5            *string  `parquet:"md5,optional"`
}

var words = []string{"cat", "mountain", "landscape", "kitchen", "wedding", "print", "abstract", "beach", "blue", "cloud",
	"photo", "chair", "forest", "card", "new", "from", "by", "design", "logo", "moon", "city", "Straße", "café", "東京", "😀", "naïve"}
var nsfw = []string{"UNLIKELY", "UNSURE", "NSFW"}

func ptr[T any](v T) *T { return &v }

func metaRow(r *rand.Rand, i int) Meta {
	key := fmt.Sprintf("%05d%04d", i/10000, i%10000)
	n := 3 + r.IntN(12)
	var cap []string
	for j := 0; j < n; j++ {
		cap = append(cap, words[r.IntN(len(words))])
	}
	m := Meta{
		ImagePath: ptr(key), Caption: ptr(strings.Join(cap, " ")), NSFW: ptr(nsfw[r.IntN(3)]),
		Similarity: ptr(0.25 + r.Float64()*0.2), LICENSE: ptr("?"),
		URL: ptr(fmt.Sprintf("https://example.com/img/%s/%x.jpg", key, r.Uint64())), Key: ptr(key), Status: ptr("success"),
		Width: ptr(int64(64 + r.IntN(960))), Height: ptr(int64(64 + r.IntN(960))),
		OriginalWidth: ptr(int64(256 + r.IntN(6000))), OriginalHeight: ptr(int64(256 + r.IntN(6000))),
		Exif: ptr(fmt.Sprintf(`{"Image Make": "Canon", "seq": %d}`, i)), MD5: ptr(fmt.Sprintf("%016x%016x", r.Uint64(), r.Uint64())),
	}
	switch i % 97 {
	case 3:
		m.LICENSE = nil
	case 5:
		m.NSFW = nil
	case 7:
		m.Exif = nil
	case 11:
		m.Caption = ptr("")
	}
	return m
}

// Options say what to generate.
type Options struct {
	Rows, Dim    int
	Seed         uint64
	RowGroupRows int // 0: one row group
	Out          string
	// Embedded also writes data.parquet with the vectors as list columns.
	Embedded bool
	// FullPrecision writes data.parquet's vectors at float32 precision, as
	// a model's outputs are, instead of rounded to float16 like the .npy
	// files' (values then differ from the .npy rows in the low bits), and
	// the same rows as img_emb_f32.npy and text_emb_f32.npy (<f4).
	FullPrecision bool
	// Pyarrow writes data.parquet as pyarrow does by default, the layout
	// of Hugging Face datasets: data page v1 of about 1 MiB, Snappy, no
	// page checksums, no page index (see pyarrowLayout). Otherwise it is
	// parquet-go's: data page v2 with a CRC per page, and a page index.
	Pyarrow bool
}

// Generate writes metadata_0000.parquet, img_emb_0000.npy and
// text_emb_0000.npy (and data.parquet when Embedded) into o.Out.
func Generate(o Options) error {
	if err := run(o.Rows, o.Dim, o.Seed, o.RowGroupRows, o.Out); err != nil {
		return err
	}
	if o.Embedded {
		return writeEmbedded(o.Rows, o.Dim, o.Seed, o.RowGroupRows, o.Out, o.FullPrecision, o.Pyarrow)
	}
	return nil
}

func run(rows, dim int, seed uint64, rowGroup int, out string) error {
	if rows < 1 || dim < 1 {
		return fmt.Errorf("-rows and -dim must be at least 1")
	}
	if err := os.MkdirAll(out, 0o755); err != nil {
		return err
	}
	if rowGroup <= 0 {
		rowGroup = rows
	}
	err := atomicfile.Write(filepath.Join(out, "metadata_0000.parquet"), 0o644, func(w io.Writer) error {
		r := rand.New(rand.NewPCG(seed, 1))
		pw := parquet.NewGenericWriter[Meta](w, parquet.Compression(&parquet.Snappy), parquet.MaxRowsPerRowGroup(int64(rowGroup)))
		buf := make([]Meta, 0, 1024)
		for i := 0; i < rows; i++ {
			buf = append(buf, metaRow(r, i))
			if len(buf) == cap(buf) || i == rows-1 {
				if _, err := pw.Write(buf); err != nil {
					return err
				}
				buf = buf[:0]
			}
		}
		return pw.Close()
	})
	if err != nil {
		return err
	}
	for k, name := range []string{"img_emb_0000.npy", "text_emb_0000.npy"} {
		g := newVecGen(seed, k, dim)
		err := writeNpy(filepath.Join(out, name), "<f2", rows, dim, func(row []float32, b []byte) {
			g.next(row)
			for j, x := range row {
				binary.LittleEndian.PutUint16(b[2*j:], float16.Fromfloat32(x).Bits())
			}
		})
		if err != nil {
			return err
		}
	}
	return nil
}

// writeNpy writes a (rows, dim) .npy file of descr ('<f2' or '<f4'),
// each row made by next (a row of float32 values and the row's bytes to
// fill).
func writeNpy(path, descr string, rows, dim int, next func(row []float32, b []byte)) error {
	item := 2
	if descr == "<f4" {
		item = 4
	}
	return atomicfile.Write(path, 0o644, func(w io.Writer) error {
		bw := bufio.NewWriterSize(w, 1<<20)
		if err := npy.WriteHeader(bw, descr, int64(rows), dim); err != nil {
			return err
		}
		row := make([]float32, dim)
		b := make([]byte, item*dim)
		for i := 0; i < rows; i++ {
			next(row, b)
			if _, err := bw.Write(b); err != nil {
				return err
			}
		}
		return bw.Flush()
	})
}

// Embedded is a metadata row with its two vectors as LIST<FLOAT> columns,
// the layout of many Hugging Face embedding datasets.
type Embedded struct {
	Meta
	Image []float32 `parquet:"image,list"`
	Text  []float32 `parquet:"text,list"`
}

// vectors returns the float16-rounded unit vectors of row streams k (0
// image, 1 text), identical to the .npy files' rows.
type vecGen struct {
	r *rand.Rand
	v []float64
}

func newVecGen(seed uint64, k, dim int) *vecGen {
	return &vecGen{r: rand.New(rand.NewPCG(seed, uint64(2+k))), v: make([]float64, dim)}
}

func (g *vecGen) next(dst []float32) {
	g.nextFull(dst)
	for j := range dst {
		dst[j] = float16.Fromfloat32(dst[j]).Float32()
	}
}

// nextFull is next without the float16 rounding.
func (g *vecGen) nextFull(dst []float32) {
	var norm float64
	for j := range g.v {
		g.v[j] = g.r.NormFloat64()
		norm += g.v[j] * g.v[j]
	}
	norm = math.Sqrt(norm)
	for j := range g.v {
		dst[j] = float32(g.v[j] / norm)
	}
}

func writeEmbedded(rows, dim int, seed uint64, rowGroup int, out string, full, pyarrow bool) error {
	if rowGroup <= 0 {
		rowGroup = rows
	}
	if full {
		// The same full-precision rows as .npy float32 files too, so the
		// Parquet and npy readers can be compared on the same bytes.
		for k, name := range []string{"img_emb_f32.npy", "text_emb_f32.npy"} {
			g := newVecGen(seed, k, dim)
			err := writeNpy(filepath.Join(out, name), "<f4", rows, dim, func(row []float32, b []byte) {
				g.nextFull(row)
				for j, x := range row {
					binary.LittleEndian.PutUint32(b[4*j:], math.Float32bits(x))
				}
			})
			if err != nil {
				return err
			}
		}
	}
	final := filepath.Join(out, "data.parquet")
	name := final
	opts := []parquet.WriterOption{parquet.Compression(&parquet.Snappy), parquet.MaxRowsPerRowGroup(int64(rowGroup))}
	if pyarrow {
		name = filepath.Join(out, "data.parquet-go.tmp")
		opts = append(opts, parquet.DataPageVersion(1), parquet.PageBufferSize(1<<20))
	}
	err := atomicfile.Write(name, 0o644, func(w io.Writer) error {
		r := rand.New(rand.NewPCG(seed, 1))
		gi, gt := newVecGen(seed, 0, dim), newVecGen(seed, 1, dim)
		pw := parquet.NewGenericWriter[Embedded](w, opts...)
		buf := make([]Embedded, 0, 256)
		for i := 0; i < rows; i++ {
			e := Embedded{Meta: metaRow(r, i), Image: make([]float32, dim), Text: make([]float32, dim)}
			if full {
				gi.nextFull(e.Image)
				gt.nextFull(e.Text)
			} else {
				gi.next(e.Image)
				gt.next(e.Text)
			}
			buf = append(buf, e)
			if len(buf) == cap(buf) || i == rows-1 {
				if _, err := pw.Write(buf); err != nil {
					return err
				}
				buf = buf[:0]
			}
		}
		return pw.Close()
	})
	if err != nil || !pyarrow {
		return err
	}
	defer os.Remove(name)
	in, err := os.Open(name)
	if err != nil {
		return err
	}
	defer in.Close()
	return atomicfile.Write(final, 0o644, func(w io.Writer) error { return pyarrowLayout(in, w) })
}

// Each calls fn with row i's metadata and vectors, for i in [0, rows), as
// Generate writes them, computed from the generator's formula. Tests use it
// as an oracle that does not go through the readers the pipeline uses. The
// slices are reused between calls.
func Each(rows, dim int, seed uint64, fn func(i int, m Meta, image, text []float32) error) error {
	r := rand.New(rand.NewPCG(seed, 1))
	gi, gt := newVecGen(seed, 0, dim), newVecGen(seed, 1, dim)
	img, txt := make([]float32, dim), make([]float32, dim)
	for i := 0; i < rows; i++ {
		m := metaRow(r, i)
		gi.next(img)
		gt.next(txt)
		if err := fn(i, m, img, txt); err != nil {
			return err
		}
	}
	return nil
}
