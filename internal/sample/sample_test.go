package sample

import (
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/snappipe/snappipe/internal/pq"
	"github.com/snappipe/snappipe/internal/testkit"
)

// With FullPrecision, the float32 .npy files hold exactly data.parquet's
// vector rows (the bench compares the two readers on the same bytes), and
// those differ from the float16 .npy rows.
func TestFullPrecisionNpyMatchesParquet(t *testing.T) {
	dir := t.TempDir()
	const rows, dim = 37, 5
	if err := Generate(Options{Rows: rows, Dim: dim, Seed: 7, RowGroupRows: 10, Out: dir, Embedded: true, FullPrecision: true}); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(filepath.Join(dir, "data.parquet"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	st, _ := f.Stat()
	pf, err := pq.Open(f, st.Size(), "data.parquet")
	if err != nil {
		t.Fatal(err)
	}
	r, err := pf.NewReader(pq.Selection{Vectors: []string{"image", "text"}}, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	want := map[string][]float32{}
	for i := 0; i < rows; i++ {
		var row pq.Row
		if err := r.Next(&row); err != nil {
			t.Fatal(err)
		}
		for c, v := range row.Vectors {
			want[c] = append(want[c], v...)
		}
	}
	for _, c := range []struct{ col, f32, f16 string }{{"image", "img_emb_f32.npy", "img_emb_0000.npy"}, {"text", "text_emb_f32.npy", "text_emb_0000.npy"}} {
		full := slices.Concat(testkit.NpyRows(t, filepath.Join(dir, c.f32))...)
		half := slices.Concat(testkit.NpyRows(t, filepath.Join(dir, c.f16))...)
		if len(full) != rows*dim || len(half) != rows*dim {
			t.Fatalf("%s: %d values, %s: %d, want %d", c.f32, len(full), c.f16, len(half), rows*dim)
		}
		differ := 0
		for i, x := range want[c.col] {
			if full[i] != x {
				t.Fatalf("%s value %d: npy %v, parquet %v", c.f32, i, full[i], x)
			}
			if half[i] != x {
				differ++
			}
		}
		if differ == 0 {
			t.Errorf("%s: the float16 rows equal the full-precision ones", c.f16)
		}
	}
}
