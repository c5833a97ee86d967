//go:build !amd64 || purego

package finite

const useAVX2 = false

func anyNonFiniteAVX2(p *float32, n int) bool { panic("unreachable") }

func anyNonFiniteHalfAVX2(p *byte, n int) bool { panic("unreachable") }
