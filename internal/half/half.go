// Package half converts IEEE 754 binary16 (float16) values to float32,
// exactly. On amd64 with F16C it uses VCVTPH2PS (eight values per
// instruction); elsewhere, and for the tail, a 64K-entry table.
package half

import (
	"encoding/binary"

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

// FirstNonFinite returns the index of the first NaN or ±Inf among the
// little-endian float16 values in h (all exponent bits set), or -1. Four
// values are checked a step per 64-bit word, sixteen per iteration.
func FirstNonFinite(h []byte) int {
	const exp = 0x7C007C007C007C00
	const low, high = 0x0001000100010001, 0x8000800080008000
	n := len(h) / 2
	i := 0
	if useAVX2 && n >= 32 {
		bulk := 2 * n &^ 63
		if !anyNonFiniteAVX2(&h[0], bulk) {
			i = bulk / 2 // all finite so far: the tail is left
		}
		// else: found below, exactly, from the start
	}
	for ; i+16 <= n; i += 16 {
		b := h[2*i : 2*i+32 : 2*i+32]
		x0 := (binary.LittleEndian.Uint64(b[0:]) & exp) ^ exp
		x1 := (binary.LittleEndian.Uint64(b[8:]) & exp) ^ exp
		x2 := (binary.LittleEndian.Uint64(b[16:]) & exp) ^ exp
		x3 := (binary.LittleEndian.Uint64(b[24:]) & exp) ^ exp
		if ((x0-low)&^x0|(x1-low)&^x1|(x2-low)&^x2|(x3-low)&^x3)&high != 0 {
			break
		}
	}
	for ; i+4 <= n; i += 4 {
		w := binary.LittleEndian.Uint64(h[2*i:])
		// x has a zero lane exactly where a value's exponent is all ones;
		// lanes are < 0x8000, so the zero-lane test is exact.
		x := (w & exp) ^ exp
		if (x-low)&^x&high != 0 {
			break
		}
	}
	for ; i < n; i++ {
		if (uint16(h[2*i])|uint16(h[2*i+1])<<8)&0x7C00 == 0x7C00 {
			return i
		}
	}
	return -1
}
