//go:build !purego

package half

import "golang.org/x/sys/cpu"

// VCVTPH2PS on YMM registers needs F16C and the OS saving AVX state.
var useF16C = cpu.X86.HasF16C && cpu.X86.HasAVX

// cvtF16C converts n float16 values (n a multiple of 32) at src to float32
// at dst.
//
//go:noescape
func cvtF16C(dst *float32, src *byte, n int)
