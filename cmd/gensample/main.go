// Command gensample writes a deterministic LAION-like dataset: a metadata
// Parquet file with LAION's 15 columns (nulls, empty strings, unicode), and
// img_emb/text_emb .npy files of L2-normalised float16 vectors whose row i
// belongs to metadata row i.
//
//	gensample -rows 2000 -out testdata/sample
//
// Output is a pure function of the flags, so sample and benchmark inputs can
// be regenerated anywhere.
package main

import (
	"bufio"
	"encoding/binary"
	"flag"
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

func main() {
	rows := flag.Int("rows", 2000, "rows to generate")
	out := flag.String("out", "testdata/sample", "output directory")
	dim := flag.Int("dim", 768, "embedding width")
	seed := flag.Uint64("seed", 1, "generator seed")
	rowGroup := flag.Int("row-group-rows", 0, "rows per Parquet row group (0: one row group, as old pyarrow writes LAION)")
	flag.Parse()
	if err := run(*rows, *dim, *seed, *rowGroup, *out); err != nil {
		fmt.Fprintln(os.Stderr, "gensample:", err)
		os.Exit(1)
	}
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
		err := atomicfile.Write(filepath.Join(out, name), 0o644, func(w io.Writer) error {
			bw := bufio.NewWriterSize(w, 1<<20)
			if err := npy.WriteHeader(bw, "<f2", int64(rows), dim); err != nil {
				return err
			}
			r := rand.New(rand.NewPCG(seed, uint64(2+k)))
			v := make([]float64, dim)
			b := make([]byte, 2*dim)
			for i := 0; i < rows; i++ {
				var norm float64
				for j := range v {
					v[j] = r.NormFloat64()
					norm += v[j] * v[j]
				}
				norm = math.Sqrt(norm)
				for j := range v {
					binary.LittleEndian.PutUint16(b[2*j:], float16.Fromfloat32(float32(v[j]/norm)).Bits())
				}
				if _, err := bw.Write(b); err != nil {
					return err
				}
			}
			return bw.Flush()
		})
		if err != nil {
			return err
		}
	}
	fmt.Printf("wrote %d rows (%d-d float16) to %s\n", rows, dim, out)
	return nil
}
