// Package finite finds NaN and ±Inf in float32 vectors, the check every
// vector goes through before it is upserted.
package finite

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
