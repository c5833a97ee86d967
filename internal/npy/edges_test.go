package npy

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math"
	"strings"
	"testing"
)

func parse(dict string) (*Header, error) {
	return ReadHeader(bytes.NewReader(header(1, dict)))
}

// Every size check of the header at its edges, and the overflow crashes
// of hostile shapes (width × itemsize, rows × row bytes) refused.
func TestHeaderEdges(t *testing.T) {
	d := func(descr, shape string) string {
		return fmt.Sprintf("{'descr': '%s', 'fortran_order': False, 'shape': %s, }", descr, shape)
	}
	maxRows := int64((math.MaxInt64 - 2<<20) / 8) // <f4, width 2: 8 bytes a row; header + data fit int64
	for _, tc := range []struct {
		dict, err string
	}{
		{d("<f4", "(9, 1)"), ""},
		{d("<f4", "(0, 90)"), ""},
		{d("<f4", "(9, 0)"), "width must be at least 1"},
		{d("<f4", fmt.Sprintf("(%d, 2)", maxRows)), ""},
		{d("<f4", fmt.Sprintf("(%d, 2)", maxRows+1)), "too large"},
		{d("<f4", "(1, 4611686018427387904)"), "too large"},
		{d("<f8", "(1, 2305843009213693952)"), "too large"},
		{d("<f2", "(1, 9223372036854775807)"), "too large"},
		{d("<f4", "(10,)"), "expected a 2-D array"},
		{"{'descr': '<f4, 'fortran_order': False, 'shape': (1, 1), }", ""},
	} {
		h, err := parse(tc.dict)
		switch {
		case tc.err == "" && strings.Contains(tc.dict, "'<f4,"):
			if err == nil {
				t.Errorf("%s: an unterminated string accepted", tc.dict)
			}
		case tc.err == "" && err != nil:
			t.Errorf("%s: %v", tc.dict, err)
		case tc.err == "" && h.Rows()*h.RowBytes() < 0:
			t.Errorf("%s: data size overflows", tc.dict)
		case tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)):
			t.Errorf("%s: err = %v, want %q", tc.dict, err, tc.err)
		}
	}
	// Header length: MaxHeaderLen may be read (here the file then ends),
	// one byte more is refused before anything is read or allocated.
	for _, n := range []uint32{MaxHeaderLen, MaxHeaderLen + 1} {
		var b bytes.Buffer
		b.WriteString(Magic)
		b.Write([]byte{2, 0})
		binary.Write(&b, binary.LittleEndian, n)
		_, err := ReadHeader(&b)
		exceeds := err != nil && strings.Contains(err.Error(), "exceeds")
		if exceeds != (n > MaxHeaderLen) || err == nil {
			t.Errorf("header length %d: %v", n, err)
		}
	}
}

// ReadRows accepts exactly the rows the file has and a destination of
// exactly n*width values.
func TestReadRowsEdges(t *testing.T) {
	var b bytes.Buffer
	WriteHeader(&b, "<f4", 3, 2)
	for i := 0; i < 6; i++ {
		binary.Write(&b, binary.LittleEndian, float32(i))
	}
	h, err := ReadHeader(bytes.NewReader(b.Bytes()))
	if err != nil {
		t.Fatal(err)
	}
	r := NewReader(bytes.NewReader(b.Bytes()), h)
	dst := make([]float32, 4)
	if err := r.ReadRows(1, 2, dst); err != nil || dst[0] != 2 || dst[3] != 5 {
		t.Fatalf("last two rows: %v %v", dst, err)
	}
	if err := r.ReadRows(2, 2, make([]float32, 4)); err == nil {
		t.Fatal("rows past the end accepted")
	}
	if err := r.ReadRows(-1, 1, make([]float32, 2)); err == nil {
		t.Fatal("a negative start accepted")
	}
	if err := r.ReadRows(0, 2, make([]float32, 3)); err == nil {
		t.Fatal("a short destination accepted")
	}
	// Truncated data: the header promises 3 rows, the file holds 2.
	tr := NewReader(bytes.NewReader(b.Bytes()[:b.Len()-8]), h)
	if err := tr.ReadRows(0, 3, make([]float32, 6)); err == nil || !strings.Contains(err.Error(), "truncated") {
		t.Fatalf("truncated: %v", err)
	}
}
