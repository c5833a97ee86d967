// Package bufpool holds reusable buffers: the block buffers format plugins
// fill, shared by every file of a run (a shard set of thousands of files
// reuses the same few buffers instead of each file growing a pool of its
// own, whose buffers outlived the file until the garbage collector cleared
// them, so memory grew with the number of shards read between
// collections), and the upsert request buffers.
//
// The free lists are bounded channels, not sync.Pools: what is kept is
// at most the buffers that were in flight at once (the pipeline bounds
// those), reuse does not depend on when the collector runs, and it is the
// same under the race detector (where a sync.Pool drops puts at random).
package bufpool

// List is a free list of buffers.
type List[T any] chan *[]T

// NewList keeps up to keep free buffers.
func NewList[T any](keep int) List[T] { return make(List[T], keep) }

// Get returns a buffer of length n (contents undefined). A new one has
// room for one eighth more, for the next, slightly larger, request.
func (l List[T]) Get(n int) *[]T {
	for {
		select {
		case bp := <-l:
			if cap(*bp) >= n {
				*bp = (*bp)[:n]
				return bp
			}
			// Too small for this one (another width or batch size):
			// dropped, and the next one tried.
		default:
			b := make([]T, n, n+n/8)
			return &b
		}
	}
}

// Put returns a buffer from Get; nothing may use it afterwards.
func (l List[T]) Put(bp *[]T) {
	select {
	case l <- bp:
	default: // enough kept
	}
}

// Floats and Bytes hold the block buffers of the format plugins (float32
// rows, and float16 rows kept as bytes); Pages the Parquet pages read,
// whose rows blocks borrow (about 1 MiB each in the files pyarrow writes).
var (
	Floats = NewList[float32](64)
	Bytes  = NewList[byte](64)
	Pages  = NewList[byte](64)
)
