//go:build !purego

#include "textflag.h"

// func cvtF16C(dst *float32, src *byte, n int)
TEXT ·cvtF16C(SB), NOSPLIT, $0-24
	MOVQ dst+0(FP), DI
	MOVQ src+8(FP), SI
	MOVQ n+16(FP), CX
	SHRQ $5, CX
	JZ   done

loop:
	VCVTPH2PS 0(SI), Y0
	VCVTPH2PS 16(SI), Y1
	VCVTPH2PS 32(SI), Y2
	VCVTPH2PS 48(SI), Y3
	VMOVUPS   Y0, 0(DI)
	VMOVUPS   Y1, 32(DI)
	VMOVUPS   Y2, 64(DI)
	VMOVUPS   Y3, 96(DI)
	ADDQ      $64, SI
	ADDQ      $128, DI
	DECQ      CX
	JNZ       loop

done:
	VZEROUPPER
	RET

// func anyNonFiniteAVX2(p *byte, n int) bool
// n is a multiple of 64: reports whether any little-endian float16 at p
// has all exponent bits set (NaN or ±Inf).
TEXT ·anyNonFiniteAVX2(SB), NOSPLIT, $0-17
	MOVQ         p+0(FP), SI
	MOVQ         n+8(FP), CX
	MOVL         $0x7C007C00, AX
	MOVQ         AX, X7
	VPBROADCASTD X7, Y7
	VPXOR        Y6, Y6, Y6
	SHRQ         $6, CX
	JZ           done

loop:
	VPAND    0(SI), Y7, Y0
	VPAND    32(SI), Y7, Y1
	VPCMPEQW Y7, Y0, Y0
	VPCMPEQW Y7, Y1, Y1
	VPOR     Y0, Y6, Y6
	VPOR     Y1, Y6, Y6
	ADDQ     $64, SI
	DECQ     CX
	JNZ      loop

done:
	VPTEST     Y6, Y6
	SETNE      ret+16(FP)
	VZEROUPPER
	RET
