// Package all registers every source format plugin. Adding a format is one
// new package under formats/ plus one import line here.
package all

import (
	_ "github.com/snappipe/snappipe/formats/npy"
	_ "github.com/snappipe/snappipe/formats/npz"
	_ "github.com/snappipe/snappipe/formats/parquet"
	_ "github.com/snappipe/snappipe/formats/texmex"
)
