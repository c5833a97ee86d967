package httpget

import (
	"errors"
	"fmt"
	"path/filepath"
	"syscall"

	"github.com/snappipe/snappipe/internal/retry"
)

// ErrNoSpace means the file system a download is written to is full (or
// over quota), or would be: retrying cannot help, so it is not retried.
var ErrNoSpace = errors.New("not enough space for the download")

// SpaceError is ErrNoSpace for one download: the directory, its free
// space, and what was needed (before the download) or the write error
// (during it).
type SpaceError struct {
	URL  string // redacted
	Dir  string
	Need int64 // bytes still to come, when known before writing
	Free int64 // -1: unknown
	Err  error // the write error, when the file system filled up
}

func (e *SpaceError) Error() string {
	if e.Err != nil {
		msg := fmt.Sprintf("%v: %v: %s is full", e.Err, ErrNoSpace, e.Dir)
		if e.Free >= 0 {
			msg += fmt.Sprintf(" (%d bytes free)", e.Free)
		}
		return msg
	}
	return fmt.Sprintf("GET %s: %v in %s: %d bytes to come, %d free", e.URL, ErrNoSpace, e.Dir, e.Need, e.Free)
}

func (e *SpaceError) Is(target error) bool { return target == ErrNoSpace }
func (e *SpaceError) Unwrap() error        { return e.Err }

// noSpace makes a write error of a full file system a permanent
// SpaceError; other errors are returned as they are.
func noSpace(err error, part, url string) error {
	if !errors.Is(err, syscall.ENOSPC) && !isQuota(err) {
		return err
	}
	dir := filepath.Dir(part)
	return retry.Permanent(&SpaceError{URL: Redact(url), Dir: dir, Free: freeBytes(dir), Err: err})
}

// checkSpace fails before any byte is written when the directory of part
// cannot hold the need bytes still to come (free space unknown: no check).
func checkSpace(part string, need int64, url string) error {
	dir := filepath.Dir(part)
	if free := freeBytes(dir); need > 0 && free >= 0 && need > free {
		return retry.Permanent(&SpaceError{URL: Redact(url), Dir: dir, Need: need, Free: free})
	}
	return nil
}
