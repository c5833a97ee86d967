package pipeline

import (
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
)

// Stream is a file still being downloaded, readable as it grows: the
// download stage hands it to the decoder as soon as the server has said
// how large the file is, so rows are decoded (and upserted) while the rest
// arrives. ReadAt blocks until the bytes it asks for are on disk. The
// download verifies the whole file at the end (checksum and size);
// Wait reports that verdict, and the decoder waits for it before it
// finishes, so no run completes on unverified bytes.
type Stream struct {
	mu      sync.Mutex
	cond    *sync.Cond
	part    string
	size    int64
	f       *os.File
	written int64 // bytes in the part file the reader may use
	done    bool
	final   string // the verified file's path, once done
	err     error
}

// ErrStreamReset means the download dropped bytes a reader may have used
// (the server's file changed, or failed its checksum): rows read from them
// cannot be trusted.
var ErrStreamReset = errors.New("the download restarted below bytes already read")

// NewStream tracks part (the download's .part file) of size bytes, of
// which have are there already (a download resumed from an earlier run).
func NewStream(part string, size, have int64) *Stream {
	s := &Stream{part: part, size: size, written: have}
	s.cond = sync.NewCond(&s.mu)
	return s
}

// Size is the whole file's size (-1 until the server said).
func (s *Stream) Size() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.size
}

// SetSize records the whole file's size, once the server said it.
func (s *Stream) SetSize(n int64) {
	s.mu.Lock()
	s.size = n
	s.mu.Unlock()
}

// Err is the stream's failure, if any.
func (s *Stream) Err() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.err
}

// Started is told where a response's bytes begin (httpget OnStart). A
// start below the bytes already there means those bytes were dropped: the
// stream fails with ErrStreamReset.
func (s *Stream) Started(offset int64) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if offset < s.written {
		s.failLocked(&ReplayError{Err: fmt.Errorf("%w (offset %d, %d bytes were there)", ErrStreamReset, offset, s.written)})
		return s.err
	}
	if s.f == nil {
		f, err := os.Open(s.part)
		if err != nil {
			s.failLocked(err)
			return err
		}
		s.f = f
	}
	return nil
}

// Wrote is told how many bytes the part file now holds (httpget OnWrite).
func (s *Stream) Wrote(have int64) {
	s.mu.Lock()
	if have > s.written {
		s.written = have
	}
	s.mu.Unlock()
	s.cond.Broadcast()
}

// Finish ends the stream: err nil and the verified file at final, or the
// download's error.
func (s *Stream) Finish(final string, err error) {
	s.mu.Lock()
	if err != nil {
		s.failLocked(err)
	} else if !s.done {
		s.done, s.final = true, final
	}
	s.mu.Unlock()
	s.cond.Broadcast()
}

func (s *Stream) failLocked(err error) {
	if s.err == nil && !s.done {
		s.err = err
	}
	s.cond.Broadcast()
}

// ReadAt reads len(p) bytes at off, waiting for them to be downloaded. It
// fails with the download's error, and reads short (io.EOF) only past the
// end of the file.
func (s *Stream) ReadAt(p []byte, off int64) (int, error) {
	end := min(off+int64(len(p)), s.size)
	s.mu.Lock()
	for s.err == nil && !s.done && (s.f == nil || s.written < end) {
		s.cond.Wait()
	}
	f, err := s.f, s.err
	if f == nil && s.done {
		// Finished before any response started (a resumed download that
		// was complete): read the verified file.
		nf, oerr := os.Open(s.final)
		if oerr != nil {
			s.mu.Unlock()
			return 0, oerr
		}
		s.f, f = nf, nf
	}
	s.mu.Unlock()
	if err != nil {
		return 0, err
	}
	if off >= s.size {
		return 0, io.EOF
	}
	n, rerr := f.ReadAt(p[:end-off], off)
	if int64(n) < end-off {
		// Fewer bytes than were written: the part file was cut (the
		// download restarted under the reader).
		return n, &ReplayError{Err: fmt.Errorf("%w: the file shrank under a reader at offset %d", ErrStreamReset, off+int64(n))}
	}
	if rerr == nil && int64(n) < int64(len(p)) {
		rerr = io.EOF
	}
	return n, rerr
}

// Wait blocks until the download ended and returns the verified file's
// path, or the download's error.
func (s *Stream) Wait() (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for s.err == nil && !s.done {
		s.cond.Wait()
	}
	return s.final, s.err
}

// Close releases the open file (the verified file stays in the cache).
func (s *Stream) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.f != nil {
		err := s.f.Close()
		s.f = nil
		return err
	}
	return nil
}

// ReplayError is a failure after which the rows already acknowledged
// cannot be trusted (they were read from bytes the download later
// dropped). The run clears the checkpoint's upsert progress, so the next
// run loads every row again: point ids are deterministic, so the replay
// overwrites the points.
type ReplayError struct{ Err error }

func (e *ReplayError) Error() string {
	return fmt.Sprintf("%v; rows already loaded were read from those bytes, so the checkpoint's upsert progress was cleared: the next run loads every row again (same ids: the points are overwritten)", e.Err)
}
func (e *ReplayError) Unwrap() error { return e.Err }
