// Package bufpool holds the block buffers format plugins fill, shared by
// every file of a run: a shard set of thousands of files reuses the same
// few buffers instead of each file growing a pool of its own (whose
// buffers outlived the file until the garbage collector cleared them, so
// memory grew with the number of shards read between collections).
//
// The free lists are bounded channels, not sync.Pools: what is kept is
// at most the buffers that were in flight at once (the pipeline bounds
// those), reuse does not depend on when the collector runs, and it is the
// same under the race detector (where a sync.Pool drops puts at random).
package bufpool

// keep is how many free buffers of each kind are kept.
const keep = 64

type list[T any] chan *[]T

func (l list[T]) get(n int) *[]T {
	for {
		select {
		case bp := <-l:
			if cap(*bp) >= n {
				*bp = (*bp)[:n]
				return bp
			}
			// Too small for this block (another width or batch size):
			// dropped, and the next one tried.
		default:
			b := make([]T, n)
			return &b
		}
	}
}

func (l list[T]) put(bp *[]T) {
	select {
	case l <- bp:
	default: // enough kept
	}
}

var (
	floats = make(list[float32], keep)
	bytes  = make(list[byte], keep)
)

// Floats returns a buffer of n float32 values (contents undefined).
func Floats(n int) *[]float32 { return floats.get(n) }

// PutFloats returns a buffer from Floats; nothing may use it afterwards.
func PutFloats(bp *[]float32) { floats.put(bp) }

// Bytes returns a buffer of n bytes (contents undefined).
func Bytes(n int) *[]byte { return bytes.get(n) }

// PutBytes returns a buffer from Bytes; nothing may use it afterwards.
func PutBytes(bp *[]byte) { bytes.put(bp) }
