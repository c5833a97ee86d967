package pq

import (
	"encoding/binary"
	"errors"
	"fmt"
	"sort"
)

// A Snappy block (the format of Parquet's SNAPPY codec) is a varint
// length and elements: literals (bytes as they are) and copies (length
// bytes from offset bytes back in the output). Incompressible data —
// float32 embeddings at full precision — is almost all literals: pyarrow's
// Snappy writes each 64 KiB of input as one literal. snappySegs decodes
// such a block without copying its literals: the output is a list of
// segments, slices of the compressed block itself, and of scratch for the
// bytes the few copy elements produce. The rows a page holds are then
// sent from the bytes read from the file, with no decompressed copy.

// errSnappy is a corrupt Snappy block.
var errSnappy = errors.New("corrupt Snappy block")

// virt is a decoded page as segments in order; starts[i] is where
// segs[i] begins in the output, n its length.
type virt struct {
	segs   [][]byte
	starts []int
	n      int
}

// snappySegs decodes src, whose output must be size bytes, as segments
// (see above), the copy elements' bytes written to a buffer from scratch
// (asked for once, with the room they need). ok is false, and nothing is
// decoded, when the block is not mostly literals (more than one byte in
// 16 produced by copies, or segments shorter than 1 KiB on average): the
// caller decodes it as usual then. Every length and offset is checked
// before it is used.
func snappySegs(src []byte, size int, scratch func(n int) []byte) (v virt, ok bool, err error) {
	copies, elems, err := snappyScan(src, size)
	if err != nil {
		return virt{}, false, err
	}
	if copies*16 > size || elems*1024 > size {
		return virt{}, false, nil
	}
	var buf []byte
	if copies > 0 {
		buf = scratch(copies)[:0] // never grown: segments point into it
	}
	n, k := binary.Uvarint(src)
	s, d := k, 0
	v.n = int(n)
	for s < len(src) {
		l, o, lit, next := snappyElem(src, s)
		if lit {
			v.add(src[next:next+l], d)
			s, d = next+l, d+l
			continue
		}
		from := len(buf)
		if o >= l {
			buf = v.gather(buf, d-o, l)
		} else {
			// An overlapping copy repeats the o bytes before it.
			buf = v.gather(buf, d-o, o)
			for len(buf)-from < l {
				buf = append(buf, buf[from:from+min(o, l-(len(buf)-from))]...)
			}
		}
		v.add(buf[from:from+l:from+l], d)
		s, d = next, d+l
	}
	return v, true, nil
}

// snappyScan checks src and counts the bytes its copy elements produce
// and its elements; it stops (no error) as soon as these say the block is
// not mostly literals.
func snappyScan(src []byte, size int) (copies, elems int, err error) {
	n, k := binary.Uvarint(src)
	if k <= 0 || n != uint64(size) {
		return 0, 0, fmt.Errorf("%w: its header says %d bytes, the page's %d", errSnappy, n, size)
	}
	s, d := k, 0
	for s < len(src) {
		l, o, lit, next := snappyElem(src, s)
		switch {
		case next < 0 || next > len(src):
			return 0, 0, fmt.Errorf("%w: element at %d cut short", errSnappy, s)
		case l > size-d:
			return 0, 0, fmt.Errorf("%w: element at %d writes past %d bytes", errSnappy, s, size)
		case lit && l > len(src)-next:
			return 0, 0, fmt.Errorf("%w: literal at %d longer than the block", errSnappy, s)
		case !lit && (o <= 0 || o > d):
			return 0, 0, fmt.Errorf("%w: copy at %d from offset %d of %d bytes written", errSnappy, s, o, d)
		}
		if lit {
			next += l
		} else {
			copies += l
		}
		s, d, elems = next, d+l, elems+1
		if copies*16 > size || elems*1024 > size {
			// Not mostly literals: the rest is left to the decoder
			// the caller falls back to, which checks it.
			return copies, elems, nil
		}
	}
	if d != size {
		return 0, 0, fmt.Errorf("%w: %d bytes decoded, %d expected", errSnappy, d, size)
	}
	return copies, elems, nil
}

// snappyElem decodes the element tag at s: its length, a copy's offset,
// whether it is a literal, and where its bytes (a literal's) or the next
// element start; next is -1 when the tag is cut short.
func snappyElem(src []byte, s int) (l, o int, lit bool, next int) {
	tag := src[s]
	switch tag & 3 {
	case 0:
		x := int(tag >> 2)
		s++
		if x >= 60 {
			nb := x - 59
			if s+nb > len(src) {
				return 0, 0, true, -1
			}
			x = 0
			for i := range nb {
				x |= int(src[s+i]) << (8 * i)
			}
			s += nb
			if x < 0 || x >= 1<<31 {
				return 0, 0, true, -1
			}
		}
		return x + 1, 0, true, s
	case 1:
		if s+2 > len(src) {
			return 0, 0, false, -1
		}
		return 4 + int(tag>>2)&7, int(tag&0xe0)<<3 | int(src[s+1]), false, s + 2
	case 2:
		if s+3 > len(src) {
			return 0, 0, false, -1
		}
		return 1 + int(tag>>2), int(binary.LittleEndian.Uint16(src[s+1:])), false, s + 3
	default:
		if s+5 > len(src) {
			return 0, 0, false, -1
		}
		return 1 + int(tag>>2), int(binary.LittleEndian.Uint32(src[s+1:])), false, s + 5
	}
}

// add appends segment b, which starts at d in the output.
func (v *virt) add(b []byte, d int) {
	if len(b) > 0 {
		v.segs, v.starts = append(v.segs, b), append(v.starts, d)
	}
}

// gather appends the output's bytes [off, off+n) (all decoded) to dst.
func (v *virt) gather(dst []byte, off, n int) []byte {
	i := sort.Search(len(v.starts), func(i int) bool { return v.starts[i] > off }) - 1
	for ; n > 0 && i < len(v.segs); i++ {
		seg := v.segs[i][off-v.starts[i]:]
		k := min(n, len(seg))
		dst = append(dst, seg[:k]...)
		off, n = off+k, n-k
	}
	return dst
}

// from returns the output's bytes from off to the end as segments (no
// copy).
func (v *virt) from(off int) [][]byte {
	i := sort.Search(len(v.starts), func(i int) bool { return v.starts[i] > off }) - 1
	if i < 0 || off >= v.n {
		return nil
	}
	out := make([][]byte, 0, len(v.segs)-i)
	out = append(out, v.segs[i][off-v.starts[i]:])
	return append(out, v.segs[i+1:]...)
}
