package npy

import (
	"bytes"
	"encoding/binary"
	"math"
	"strings"
	"testing"
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
// refHalf converts IEEE 754 binary16 bits by the definition (sign,
// biased exponent, fraction), independently of the table and of
// x448/float16 that fills it.
func refHalf(b uint16) float64 {
	sign := 1.0
	if b&0x8000 != 0 {
		sign = -1
	}
	exp := int(b>>10) & 0x1f
	frac := float64(b & 0x3ff)
	switch exp {
	case 0: // zero and subnormals: 2^-14 * frac/1024
		return sign * math.Ldexp(frac, -24)
	case 0x1f:
		if frac != 0 {
			return math.NaN()
		}
		return sign * math.Inf(1)
	}
	return sign * math.Ldexp(1+frac/1024, exp-15)
}

func TestFloat16Exact(t *testing.T) {
	for i := 0; i < 1<<16; i++ {
		got := F16ToF32(uint16(i))
		want := refHalf(uint16(i))
		if math.IsNaN(want) {
			if !math.IsNaN(float64(got)) {
				t.Fatalf("%#04x: %v, want NaN", i, got)
			}
			continue
		}
		// Every half is exact in float32; the sign of zero counts too.
		if float64(got) != want || math.Signbit(float64(got)) != math.Signbit(want) {
			t.Fatalf("%#04x: %v, want %v", i, got, want)
		}
	}
	// Known values (numpy: np.array([...], '<f2').view('<u2')).
	for bits, want := range map[uint16]float32{0x3c00: 1, 0xc000: -2, 0x7bff: 65504, 0x0400: 6.1035156e-05, 0x0001: 5.9604645e-08, 0x3555: 0.33325195} {
		if got := F16ToF32(bits); got != want {
			t.Errorf("%#04x: %v, want %v", bits, got, want)
		}
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
		// Reading rows from whatever follows (often too little) is an
		// error, never a panic; float16 rows handed on unconverted say
		// what the converted read says.
		if h.Width() > 4096 {
			return
		}
		n := int(min(h.Rows(), 3))
		r := NewReader(bytes.NewReader(data), h)
		f32 := make([]float32, n*h.Width())
		err32 := r.ReadRows(0, n, f32)
		if !h.HalfLE() {
			return
		}
		raw := make([]byte, 2*n*h.Width())
		errHalf := r.ReadHalfRows(0, n, raw)
		if (err32 == nil) != (errHalf == nil) {
			t.Fatalf("ReadRows %v, ReadHalfRows %v", err32, errHalf)
		}
		if err32 != nil {
			return
		}
		for i, v := range f32 {
			if w := F16ToF32(uint16(raw[2*i]) | uint16(raw[2*i+1])<<8); math.Float32bits(v) != math.Float32bits(w) && !(v != v && w != w) {
				t.Fatalf("value %d: %v converted, %v raw", i, v, w)
			}
		}
	})
}

// Every dtype in both byte orders and both memory orders decodes to the
// values written, read from a start row inside the array (the float32
// little-endian C-order rows are read straight into the destination).
func TestReadRowsEveryLayout(t *testing.T) {
	const rows, width = 5, 3
	val := func(r, c int) float32 { return float32(r)*1.5 - float32(c)/4 + 0.125 }
	for _, descr := range []string{"<f2", ">f2", "<f4", ">f4", "<f8", ">f8"} {
		for _, fortran := range []bool{false, true} {
			var order binary.ByteOrder = binary.LittleEndian
			if descr[0] == '>' {
				order = binary.BigEndian
			}
			var data bytes.Buffer
			put := func(x float32) {
				switch descr[1:] {
				case "f2":
					// every val is exact in float16: sign 0, small exponents
					binary.Write(&data, order, f32ToF16(t, x))
				case "f4":
					binary.Write(&data, order, x)
				case "f8":
					binary.Write(&data, order, float64(x))
				}
			}
			if fortran {
				for c := 0; c < width; c++ {
					for r := 0; r < rows; r++ {
						put(val(r, c))
					}
				}
			} else {
				for r := 0; r < rows; r++ {
					for c := 0; c < width; c++ {
						put(val(r, c))
					}
				}
			}
			fo := "False"
			if fortran {
				fo = "True"
			}
			var b bytes.Buffer
			if err := WriteHeader(&b, descr, rows, width); err != nil {
				t.Fatal(err)
			}
			if fortran {
				b.Reset()
				b.Write(header(1, "{'descr': '"+descr+"', 'fortran_order': "+fo+", 'shape': (5, 3), }\n"))
			}
			b.Write(data.Bytes())
			rd := bytes.NewReader(b.Bytes())
			h, err := ReadHeader(rd)
			if err != nil {
				t.Fatal(err)
			}
			dst := make([]float32, 3*width+1)
			dst[len(dst)-1] = 42
			if err := NewReader(rd, h).ReadRows(1, 3, dst[:3*width]); err != nil {
				t.Fatalf("%s fortran=%v: %v", descr, fortran, err)
			}
			for i := 0; i < 3; i++ {
				for c := 0; c < width; c++ {
					if got, want := dst[i*width+c], val(1+i, c); got != want {
						t.Fatalf("%s fortran=%v: row %d col %d = %v, want %v", descr, fortran, 1+i, c, got, want)
					}
				}
			}
			if dst[len(dst)-1] != 42 {
				t.Fatalf("%s fortran=%v: wrote past the rows asked for", descr, fortran)
			}
		}
	}
}

// f32ToF16 returns the float16 bits of x, which must be exact in float16.
func f32ToF16(t *testing.T, x float32) uint16 {
	for b := 0; b < 1<<16; b++ {
		if F16ToF32(uint16(b)) == x {
			return uint16(b)
		}
	}
	t.Fatalf("%v is not exact in float16", x)
	return 0
}
