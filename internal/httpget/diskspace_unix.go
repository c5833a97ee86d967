//go:build unix

package httpget

import (
	"errors"
	"syscall"

	"golang.org/x/sys/unix"
)

// freeBytes is the space available to this user in dir's file system,
// or -1 when it cannot be told.
func freeBytes(dir string) int64 {
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err != nil {
		return -1
	}
	return int64(st.Bavail) * int64(st.Bsize)
}

func isQuota(err error) bool { return errors.Is(err, syscall.EDQUOT) }
