package wire

import (
	"slices"
	"sync"
	"sync/atomic"
	"unsafe"

	"google.golang.org/grpc/mem"
)

// Sending float32 vectors from the batch's memory.
//
// A float32 dense vector is, on a little-endian host, byte for byte its
// packed wire encoding, and it is most of a request (two 768-d vectors are
// 6 KiB of a LAION point's ~6.5). Copying it into the request buffer was
// the largest single copy of a run reading float32 sources (~10% of the
// CPU of a Parquet run); gRPC copies the message into its HTTP/2 frames
// anyway. So Codec hands gRPC a BufferSlice that alternates the request's
// other bytes (slices of one pooled buffer) with slices of the batch's own
// vector columns, ended by one empty reference-counted buffer; the batch
// is not released before gRPC frees that one.
//
// What this relies on: gRPC reads a message's buffers in order and frees
// each after reading it (its transport's mem.Reader), or frees them all at
// once, in order, when the stream is dropped — so once the last buffer is
// freed nothing reads the ones before it. Measured (BENCHMARKS.md, sixth
// pass): CPU −10% on float32 .npy, −4% on Parquet list columns. Per-slice
// reference-counted buffers (mem.SplitUnsafe) were tried first: one
// allocation per slice cost what the copy saved.

// Hold counts the references to a batch's memory: its owner's, and one per
// request encoded from it. The batch's release
// runs when the last is dropped — after the owner is done with the batch
// (acknowledged, abandoned) and gRPC has freed every request sent from it
// (written to the connection, or dropped with its stream). gRPC frees on
// its own goroutines, so release must be safe to call from any goroutine.
type Hold struct {
	n       atomic.Int64
	release func()
}

// NewHold returns a Hold owned by its caller, who calls Put when done.
func NewHold(release func()) *Hold {
	h := &Hold{release: release}
	h.n.Store(1)
	return h
}

func (h *Hold) add() { h.n.Add(1) }

// Put drops one reference; the last runs release.
func (h *Hold) Put() {
	switch n := h.n.Add(-1); {
	case n == 0:
		if h.release != nil {
			h.release()
		}
	case n < 0:
		panic("wire: Hold released more often than held")
	}
}

// lentPool is the mem.BufferPool of a lent request's last, empty,
// buffer: gRPC frees it after the buffers before it (its reader frees
// buffers in order, as they are written, or all at once when the stream
// is dropped), which returns the request's own bytes to their pool and
// drops its hold on the batch.
type lentPool struct {
	h    *Hold
	bp   *[]byte
	segs []mem.SliceBuffer // the request's segments, reused once freed
}

func (p *lentPool) Get(n int) *[]byte { b := make([]byte, n); return &b }
func (p *lentPool) Put(*[]byte) {
	requestPool.Put(p.bp)
	h := p.h
	clear(p.segs) // no reference to the batch or the request is kept
	p.h, p.bp, p.segs = nil, nil, p.segs[:0]
	lentPools.Put(p)
	h.Put()
}

// lentPools keeps lentPool objects and their segment arrays (two slice
// headers per lent vector).
var lentPools = sync.Pool{New: func() any { return new(lentPool) }}

var _ mem.BufferPool = (*lentPool)(nil)

// lender says which dense columns a request sends from the batch and
// records, as the request is encoded, where each left-out vector goes.
type lender struct {
	col  []bool // by bt.Vectors index
	cuts []cut
	lent int // bytes left out per point
}

// cut is a left-out vector: at byte off of the encoded rest, the next
// point's values of column col.
type cut struct{ off, col int }

// minLent is the smallest vector worth a buffer of its own (smaller ones
// are copied: a segment costs gRPC a slice header and a Write).
const minLent = 1 << 10

// lenderFor returns what u's batch can lend, or nil: float32 columns of
// vectors of at least minLent bytes, on a little-endian host (where the
// memory is the wire's byte order).
func lenderFor(u *Upsert) *lender {
	if u.Hold == nil || !littleEndian {
		return nil
	}
	bt := u.Batch
	var ld *lender
	for k := range bt.Vectors {
		v := &bt.Vectors[k]
		if v.Half != nil || 4*v.Width < minLent || v.Rows() < bt.N {
			continue
		}
		if ld == nil {
			ld = &lender{col: make([]bool, len(bt.Vectors)), cuts: make([]cut, 0, bt.N*len(bt.Vectors))}
		}
		ld.col[k] = true
		ld.lent += 4 * v.Width
	}
	return ld
}

// marshalLending encodes m's request as a BufferSlice whose vectors of
// ld's columns are the batch's memory. Its segments are plain slices (no
// reference count, no allocation each) ended by one empty reference-counted
// buffer whose release frees them all.
func (m *measured) marshalLending(ld *lender) mem.BufferSlice {
	bt, h := m.u.Batch, m.u.Hold
	// (at least 2 KiB: gRPC counts references only to buffers above its
	// pooling threshold, 1 KiB, and the last buffer's must be counted)
	bp := requestPool.Get(max(m.total()-bt.N*ld.lent, 2<<10))
	*bp = m.appendLending((*bp)[:0], ld)
	rest := *bp
	lp := lentPools.Get().(*lentPool)
	lp.h, lp.bp = h, bp
	segs := slices.Grow(lp.segs[:0], 2*len(ld.cuts)+1)
	next := make([]int, len(bt.Vectors)) // next point per column
	at := 0
	for _, c := range ld.cuts {
		v := &bt.Vectors[c.col]
		var vec []byte
		if v.Runs != nil {
			vec = v.Runs.Row(next[c.col])
		} else {
			vec = unsafe.Slice((*byte)(unsafe.Pointer(&v.Data[next[c.col]*v.Width])), 4*v.Width)
		}
		next[c.col]++
		segs = append(segs, rest[at:c.off], vec)
		at = c.off
	}
	if at < len(rest) {
		segs = append(segs, rest[at:])
	}
	out := make(mem.BufferSlice, len(segs)+1)
	for i := range segs {
		out[i] = &segs[i]
	}
	lp.segs = segs
	h.add()
	end := (*bp)[:0]
	out[len(segs)] = mem.NewBuffer(&end, lp)
	return out
}
