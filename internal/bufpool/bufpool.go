// Package bufpool holds the block buffers format plugins fill, shared by
// every file of a run: a shard set of thousands of files reuses the same
// few buffers instead of each file growing a pool of its own (whose
// buffers outlive the file until the garbage collector clears them, so
// memory grew with the number of shards read between collections).
package bufpool

import "sync"

var floats, bytes sync.Pool

// Floats returns a buffer of n float32 values (contents undefined).
func Floats(n int) *[]float32 {
	if bp, ok := floats.Get().(*[]float32); ok {
		if cap(*bp) >= n {
			*bp = (*bp)[:n]
			return bp
		}
	}
	b := make([]float32, n)
	return &b
}

// PutFloats returns a buffer from Floats.
func PutFloats(bp *[]float32) { floats.Put(bp) }

// Bytes returns a buffer of n bytes (contents undefined).
func Bytes(n int) *[]byte {
	if bp, ok := bytes.Get().(*[]byte); ok {
		if cap(*bp) >= n {
			*bp = (*bp)[:n]
			return bp
		}
	}
	b := make([]byte, n)
	return &b
}

// PutBytes returns a buffer from Bytes.
func PutBytes(bp *[]byte) { bytes.Put(bp) }
