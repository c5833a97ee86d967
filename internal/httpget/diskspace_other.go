//go:build !unix

package httpget

func freeBytes(string) int64 { return -1 }

func isQuota(error) bool { return false }
