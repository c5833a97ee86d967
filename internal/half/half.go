// Package half converts IEEE 754 binary16 (float16) values to float32,
// exactly. On amd64 with F16C it uses VCVTPH2PS (eight values per
// instruction); elsewhere, and for the tail, a 64K-entry table.
package half

import (
	"github.com/x448/float16"
)

// table maps every float16 bit pattern to its exact float32 value.
var table = func() *[65536]float32 {
	var t [65536]float32
	for i := range t {
		t[i] = float16.Frombits(uint16(i)).Float32()
	}
	return &t
}()

// Float32 converts one float16 bit pattern exactly.
func Float32(bits uint16) float32 { return table[bits] }

// LittleEndian converts len(dst) little-endian float16 values from src
// (2*len(dst) bytes) into dst. NaNs stay NaNs (a signalling NaN may come
// back quiet); every other value converts exactly.
func LittleEndian(dst []float32, src []byte) {
	src = src[:2*len(dst)]
	done := 0
	if useF16C && len(dst) >= 32 {
		done = len(dst) &^ 31
		cvtF16C(&dst[0], &src[0], done)
	}
	for i := done; i < len(dst); i++ {
		dst[i] = table[uint16(src[2*i])|uint16(src[2*i+1])<<8]
	}
}

// BigEndian is LittleEndian for big-endian float16 values.
func BigEndian(dst []float32, src []byte) {
	src = src[:2*len(dst)]
	for i := range dst {
		dst[i] = table[uint16(src[2*i+1])|uint16(src[2*i])<<8]
	}
}
