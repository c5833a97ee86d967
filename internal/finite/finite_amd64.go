//go:build !purego

package finite

import "golang.org/x/sys/cpu"

var useAVX2 = cpu.X86.HasAVX2

// anyNonFiniteAVX2 reports whether any of the n float32 values at p (n a
// multiple of 16) has all exponent bits set.
//
//go:noescape
func anyNonFiniteAVX2(p *float32, n int) bool

// anyNonFiniteHalfAVX2 reports whether any of the n/2 float16 values at p
// (n a multiple of 64) has all exponent bits set.
//
//go:noescape
func anyNonFiniteHalfAVX2(p *byte, n int) bool
