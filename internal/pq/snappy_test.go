package pq

import (
	"bytes"
	"encoding/binary"
	"math/rand/v2"
	"testing"
	"unsafe"

	"github.com/klauspost/compress/snappy"
)

// snappyBlock writes a Snappy block the way pyarrow's (C++) Snappy writes
// incompressible input: a literal per 64 KiB, here with copy elements
// between some of them (short, long, overlapping), as data with a few
// repeats has.
func snappyBlock(r *rand.Rand, n int) (block, want []byte) {
	var out []byte
	block = binary.AppendUvarint(nil, 0) // length patched below
	lit := func(b []byte) {
		l := len(b) - 1
		switch {
		case l < 60:
			block = append(block, byte(l<<2))
		case l < 1<<8:
			block = append(block, 60<<2, byte(l))
		case l < 1<<16:
			block = append(block, 61<<2, byte(l), byte(l>>8))
		default:
			block = append(block, 62<<2, byte(l), byte(l>>8), byte(l>>16))
		}
		block = append(block, b...)
		out = append(out, b...)
	}
	cp := func(o, l int) { // 2-byte offset form: 1..64 bytes
		block = append(block, byte((l-1)<<2|2), byte(o), byte(o>>8))
		base := len(out) - o
		for i := range l {
			out = append(out, out[base+i])
		}
	}
	for len(out) < n {
		b := make([]byte, min(1+r.IntN(64<<10), n-len(out)))
		for i := range b {
			b[i] = byte(r.Uint32())
		}
		lit(b)
		if len(out) < n-64 && r.IntN(3) == 0 {
			cp(1+r.IntN(min(len(out), 60000)), 1+r.IntN(64)) // may overlap
		}
	}
	head := binary.AppendUvarint(nil, uint64(len(out)))
	return append(head, block[1:]...), out
}

func flat(v virt) []byte {
	var b []byte
	for _, s := range v.segs {
		b = append(b, s...)
	}
	return b
}

func TestSnappySegsDecodesAsSnappy(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for i := range 40 {
		block, want := snappyBlock(r, 1+r.IntN(1<<20))
		if ref, err := snappy.Decode(nil, block); err != nil || !bytes.Equal(ref, want) {
			t.Fatalf("case %d: the test's block is not Snappy: %v", i, err)
		}
		var asked int
		v, ok, err := snappySegs(block, len(want), func(n int) []byte { asked = n; return make([]byte, n) })
		if err != nil || !ok {
			t.Fatalf("case %d: ok %v, %v", i, ok, err)
		}
		if !bytes.Equal(flat(v), want) || v.n != len(want) {
			t.Fatalf("case %d: segments differ from the decoded block", i)
		}
		// No literal is copied: every segment but the copies' points
		// into the block.
		copied := 0
		for _, s := range v.segs {
			if !inside(s, block) {
				copied += len(s)
			}
		}
		if copied != asked {
			t.Fatalf("case %d: %d bytes outside the block, the copies made %d", i, copied, asked)
		}
		// gather and from agree with the flat output anywhere.
		for range 20 {
			off := r.IntN(len(want))
			n := r.IntN(len(want) - off + 1)
			if got := v.gather(nil, off, n); !bytes.Equal(got, want[off:off+n]) {
				t.Fatalf("case %d: gather(%d, %d) differs", i, off, n)
			}
			var tail []byte
			for _, s := range v.from(off) {
				tail = append(tail, s...)
			}
			if !bytes.Equal(tail, want[off:]) {
				t.Fatalf("case %d: from(%d) differs", i, off)
			}
		}
	}
}

func inside(s, b []byte) bool {
	p, lo := uintptr(unsafe.Pointer(unsafe.SliceData(s))), uintptr(unsafe.Pointer(unsafe.SliceData(b)))
	return len(s) > 0 && p >= lo && p+uintptr(len(s)) <= lo+uintptr(len(b))
}

// Compressible blocks (many copies) are left to the usual decoder.
func TestSnappySegsLeavesCompressibleBlocks(t *testing.T) {
	src := bytes.Repeat([]byte("float16 widened to float32 "), 40000)
	block := snappy.Encode(nil, src)
	if _, ok, err := snappySegs(block, len(src), func(n int) []byte { return make([]byte, n) }); ok || err != nil {
		t.Fatalf("ok %v, err %v: a compressible block should be decoded as usual", ok, err)
	}
}

// Any input: an error, a block left to the decoder (not ok), or what
// Snappy decodes; never a panic or a read outside the block.
func FuzzSnappySegs(f *testing.F) {
	r := rand.New(rand.NewPCG(3, 4))
	for range 4 {
		b, _ := snappyBlock(r, 1+r.IntN(5000))
		f.Add(b)
	}
	f.Add(snappy.Encode(nil, []byte("abcabcabcabcabcabc")))
	f.Add([]byte{0x05, 0x00, 'a', 0x05, 0x01})
	f.Fuzz(func(t *testing.T, block []byte) {
		n, k := binary.Uvarint(block)
		if k <= 0 || n > 1<<20 {
			return
		}
		ref, refErr := snappy.Decode(nil, block)
		v, ok, err := snappySegs(block, int(n), func(n int) []byte { return make([]byte, n) })
		switch {
		case err != nil && refErr == nil:
			t.Fatalf("snappySegs refused a block Snappy decodes: %v", err)
		case ok && refErr != nil:
			t.Fatalf("snappySegs took a block Snappy refuses (%v)", refErr)
		case ok && !bytes.Equal(flat(v), ref):
			t.Fatal("segments differ from Snappy's output")
		}
	})
}
