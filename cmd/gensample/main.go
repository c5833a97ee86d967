// Command gensample writes a deterministic LAION-like dataset: a metadata
// Parquet file with LAION's 15 columns (nulls, empty strings, unicode), and
// img_emb/text_emb .npy files of L2-normalised float16 vectors whose row i
// belongs to metadata row i; with -embedded also data.parquet holding the
// vectors as list<float> columns.
//
//	gensample -rows 2000 -out testdata/sample
//
// Output is a pure function of the flags.
package main

import (
	"flag"
	"fmt"
	"os"

	"github.com/snappipe/snappipe/internal/sample"
)

func main() {
	var o sample.Options
	flag.IntVar(&o.Rows, "rows", 2000, "rows to generate")
	flag.StringVar(&o.Out, "out", "testdata/sample", "output directory")
	flag.IntVar(&o.Dim, "dim", 768, "embedding width")
	flag.Uint64Var(&o.Seed, "seed", 1, "generator seed")
	flag.IntVar(&o.RowGroupRows, "row-group-rows", 0, "rows per Parquet row group (0: one row group, as old pyarrow writes LAION)")
	flag.BoolVar(&o.Embedded, "embedded", false, "also write data.parquet: the metadata plus image and text as list<float> columns")
	flag.BoolVar(&o.FullPrecision, "full-precision", false, "with -embedded: data.parquet's vectors at float32 precision (as model outputs are), not rounded to float16 like the .npy rows; also writes those rows as img_emb_f32.npy and text_emb_f32.npy")
	flag.BoolVar(&o.Pyarrow, "pyarrow", false, "with -embedded: write data.parquet in the layout pyarrow writes by default (Hugging Face datasets): data page v1 of about 1 MiB, no page checksums, no page index; otherwise parquet-go's (data page v2, a CRC per page, a page index)")
	flag.Parse()
	if err := sample.Generate(o); err != nil {
		fmt.Fprintln(os.Stderr, "gensample:", err)
		os.Exit(1)
	}
	fmt.Printf("wrote %d rows (%d-d float16) to %s\n", o.Rows, o.Dim, o.Out)
}
