// Package finite finds NaN and ±Inf in vectors (float32, and float16 kept
// as little-endian bytes), the check every vector goes through before it
// is upserted.
package finite

import (
	"encoding/binary"
	"unsafe"
)

// First returns the index of the first NaN or ±Inf in data, or -1. With
// AVX2 the bulk is scanned 16 values a step (exponent bits all set) and
// the exact index is looked for only when something is there.
func First(data []float32) int {
	i := 0
	if useAVX2 && len(data) >= 16 {
		bulk := len(data) &^ 15
		if !anyNonFiniteAVX2(&data[0], bulk) {
			i = bulk
		}
	}
	if allFinite(data[i:]) {
		return -1
	}
	for ; i < len(data); i++ {
		if v := data[i]; v-v != 0 { // true for NaN and ±Inf only
			return i
		}
	}
	return -1
}

// FirstLE returns the index of the first NaN or ±Inf among the
// little-endian float32 values in b (which need not be aligned), or -1.
func FirstLE(b []byte) int {
	n := len(b) / 4
	if littleEndian && n > 0 {
		return First(unsafe.Slice((*float32)(unsafe.Pointer(unsafe.SliceData(b))), n))
	}
	return firstLEPortable(b)
}

// firstLEPortable is FirstLE a value at a time (big-endian hosts).
func firstLEPortable(b []byte) int {
	for i := range len(b) / 4 {
		if (binary.LittleEndian.Uint32(b[4*i:])>>23)&0xFF == 0xFF {
			return i
		}
	}
	return -1
}

var littleEndian = binary.NativeEndian.Uint16([]byte{1, 0}) == 1

// allFinite reports whether no value is NaN or ±Inf: v-v is 0 for every
// finite v and NaN otherwise, and NaN survives a sum, so four independent
// sums (no dependency chain between neighbours) check 8 values a step.
func allFinite(data []float32) bool {
	var a, b, c, d float32
	i := 0
	for ; i+8 <= len(data); i += 8 {
		x := data[i : i+8 : i+8]
		a += (x[0] - x[0]) + (x[4] - x[4])
		b += (x[1] - x[1]) + (x[5] - x[5])
		c += (x[2] - x[2]) + (x[6] - x[6])
		d += (x[3] - x[3]) + (x[7] - x[7])
	}
	for ; i < len(data); i++ {
		a += data[i] - data[i]
	}
	return a+b+c+d == 0
}

// FirstHalf returns the index of the first NaN or ±Inf among the
// little-endian float16 values in h (all exponent bits set), or -1. Four
// values are checked a step per 64-bit word, sixteen per iteration.
func FirstHalf(h []byte) int {
	const exp = 0x7C007C007C007C00
	const low, high = 0x0001000100010001, 0x8000800080008000
	n := len(h) / 2
	i := 0
	if useAVX2 && n >= 32 {
		bulk := 2 * n &^ 63
		if !anyNonFiniteHalfAVX2(&h[0], bulk) {
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
