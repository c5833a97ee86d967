package npy

import (
	"bytes"
	"encoding/binary"
	"math"
	"strings"
	"testing"

	"github.com/x448/float16"
)

func header(major byte, dict string) []byte {
	var b bytes.Buffer
	b.WriteString(Magic)
	b.WriteByte(major)
	b.WriteByte(0)
	if major == 1 {
		binary.Write(&b, binary.LittleEndian, uint16(len(dict)))
	} else {
		binary.Write(&b, binary.LittleEndian, uint32(len(dict)))
	}
	b.WriteString(dict)
	return b.Bytes()
}

func TestHeaderVersionsAndDtypes(t *testing.T) {
	for _, tc := range []struct {
		major byte
		dict  string
		descr string
		item  int
	}{
		{1, "{'descr': '<f2', 'fortran_order': False, 'shape': (3, 4), }\n", "<f2", 2},
		{2, "{'descr': '<f4', 'fortran_order': False, 'shape': (3, 4), }\n", "<f4", 4},
		{3, "{'descr': '>f4', 'fortran_order': True, 'shape': (3, 4)}\n", ">f4", 4},
		{1, `{"descr": "<f8", "fortran_order": False, "shape": (3L, 4L), }`, "<f8", 8},
	} {
		h, err := ReadHeader(bytes.NewReader(header(tc.major, tc.dict)))
		if err != nil {
			t.Fatalf("%s: %v", tc.dict, err)
		}
		if h.Descr != tc.descr || h.ItemSize != tc.item || h.Rows() != 3 || h.Width() != 4 {
			t.Fatalf("%+v", h)
		}
	}
	for _, bad := range []string{
		"{'descr': '<i8', 'fortran_order': False, 'shape': (3, 4), }",
		"{'descr': '<f4', 'fortran_order': False, 'shape': (12,), }",
		"{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (3,), }",
		"{'descr': '<f4', 'shape': (3, 4), }",
		"not a dict",
	} {
		if _, err := ReadHeader(bytes.NewReader(header(1, bad))); err == nil {
			t.Errorf("%q: accepted", bad)
		}
	}
	if _, err := ReadHeader(strings.NewReader("PK\x03\x04 zip")); err != ErrNotNpy {
		t.Errorf("zip: %v", err)
	}
}

// f16 conversion is exact for every bit pattern, subnormals included.
func TestFloat16Exact(t *testing.T) {
	for i := 0; i < 1<<16; i++ {
		got := F16ToF32(uint16(i))
		want := float16.Frombits(uint16(i)).Float32()
		if math.Float32bits(got) != math.Float32bits(want) && !(math.IsNaN(float64(got)) && math.IsNaN(float64(want))) {
			t.Fatalf("%#04x: %v != %v", i, got, want)
		}
	}
	if F16ToF32(0x0001) != float32(math.Ldexp(1, -24)) {
		t.Fatal("smallest subnormal wrong")
	}
}

func TestFortranOrderDecodedCorrectly(t *testing.T) {
	// 3 rows x 2 cols; value(r,c) = 10*r + c, stored column-major, >f4.
	var b bytes.Buffer
	b.Write(header(1, "{'descr': '>f4', 'fortran_order': True, 'shape': (3, 2), }\n"))
	for c := 0; c < 2; c++ {
		for r := 0; r < 3; r++ {
			binary.Write(&b, binary.BigEndian, float32(10*r+c))
		}
	}
	rd := bytes.NewReader(b.Bytes())
	h, err := ReadHeader(rd)
	if err != nil {
		t.Fatal(err)
	}
	dst := make([]float32, 4)
	if err := NewReader(rd, h).ReadRows(1, 2, dst); err != nil {
		t.Fatal(err)
	}
	if dst[0] != 10 || dst[1] != 11 || dst[2] != 20 || dst[3] != 21 {
		t.Fatalf("fortran rows: %v", dst)
	}
}

func TestWriteHeaderRoundTrip(t *testing.T) {
	var b bytes.Buffer
	if err := WriteHeader(&b, "<f2", 1000, 768); err != nil {
		t.Fatal(err)
	}
	if b.Len()%64 != 0 {
		t.Fatalf("header not 64-aligned: %d", b.Len())
	}
	h, err := ReadHeader(&b)
	if err != nil || h.Rows() != 1000 || h.Width() != 768 || h.DataOffset%64 != 0 {
		t.Fatalf("%+v %v", h, err)
	}
}

func FuzzReadHeader(f *testing.F) {
	f.Add(header(1, "{'descr': '<f2', 'fortran_order': False, 'shape': (3, 4), }\n"))
	f.Add(header(3, "{'descr': '>f4', 'fortran_order': True, 'shape': (0, 1)}"))
	f.Add([]byte(Magic + "\x02\x00\xff\xff\xff\x7f"))
	f.Fuzz(func(t *testing.T, data []byte) {
		h, err := ReadHeader(bytes.NewReader(data))
		if err != nil {
			return
		}
		if h.Width() < 1 || h.Rows() < 0 || h.ItemSize == 0 || h.DataOffset < 10 {
			t.Fatalf("accepted bad header %+v", h)
		}
	})
}
