//go:build !purego

#include "textflag.h"

// func anyNonFiniteAVX2(p *float32, n int) bool
TEXT ·anyNonFiniteAVX2(SB), NOSPLIT, $0-17
	MOVQ         p+0(FP), SI
	MOVQ         n+8(FP), CX
	MOVL         $0x7F800000, AX
	MOVQ         AX, X7
	VPBROADCASTD X7, Y7
	VPXOR        Y6, Y6, Y6
	SHRQ         $4, CX
	JZ           done

loop:
	VPAND    0(SI), Y7, Y0
	VPAND    32(SI), Y7, Y1
	VPCMPEQD Y7, Y0, Y0
	VPCMPEQD Y7, Y1, Y1
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

// func anyNonFiniteHalfAVX2(p *byte, n int) bool
// n is a multiple of 64: reports whether any little-endian float16 at p
// has all exponent bits set (NaN or ±Inf).
TEXT ·anyNonFiniteHalfAVX2(SB), NOSPLIT, $0-17
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
