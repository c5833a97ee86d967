//go:build !amd64 || purego

package half

const useF16C = false

func cvtF16C(dst *float32, src *byte, n int) { panic("unreachable") }
