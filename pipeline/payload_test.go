package pipeline

import (
	"fmt"
	"testing"
	"unsafe"
)

// A released block's value buffer serves a later block, once: releasing
// twice does not hand one buffer to two blocks, and the released block
// keeps no values.
func TestPayloadValuesReused(t *testing.T) {
	keys := []string{"a", "b"}
	fill := func(b *PayloadBuilder, rows int, s string) *PayloadBlock {
		b.Reset(keys, rows)
		for i := 0; i < rows; i++ {
			b.Add(IntValue(int64(i)))
			b.AddBytes([]byte(s))
		}
		return b.Finish()
	}
	var b PayloadBuilder
	// Drain what other tests left in the free list.
	for len(values) > 0 {
		<-values
	}
	first := fill(&b, 300, "x")
	backing := &first.Vals[0]
	first.Release()
	first.Release() // a second release is a no-op
	if first.Vals != nil {
		t.Fatal("a released block still has its values")
	}
	second := fill(&b, 300, "y")
	third := fill(&b, 300, "z")
	if &second.Vals[0] != backing {
		t.Fatal("the released buffer was not reused")
	}
	if &third.Vals[0] == backing {
		t.Fatal("one released buffer went to two blocks")
	}
	for i := 0; i < 300; i++ {
		if v := second.Row(i); v["a"] != int64(i) || v["b"] != "y" {
			t.Fatalf("row %d of the block on a reused buffer: %v", i, v)
		}
	}
	// A block from elsewhere (no pooled buffer) releases as a no-op.
	(&PayloadBlock{Keys: keys, Vals: make([]Value, 2)}).Release()
	var nilBlock *PayloadBlock
	nilBlock.Release()
}

// The string bytes of a block live in its arena: a released block's
// arena serves a later block, never one still in use, and a row copied
// with AddRow does not depend on the block it came from.
func TestPayloadStringsReused(t *testing.T) {
	keys := []string{"n", "s", "empty"}
	fill := func(b *PayloadBuilder, rows int, tag string) *PayloadBlock {
		b.Reset(keys, rows)
		for i := 0; i < rows; i++ {
			b.Add(IntValue(int64(i)))
			b.AddBytes([]byte(fmt.Sprintf("%s-%d", tag, i)))
			b.AddBytes(nil)
		}
		return b.Finish()
	}
	check := func(what string, p *PayloadBlock, rows int, tag string) {
		t.Helper()
		for i := 0; i < rows; i++ {
			if v := p.Row(i); v["n"] != int64(i) || v["s"] != fmt.Sprintf("%s-%d", tag, i) || v["empty"] != "" {
				t.Fatalf("%s, row %d: %v", what, i, v)
			}
		}
	}
	for len(arenas) > 0 {
		<-arenas
	}
	var b PayloadBuilder
	first := fill(&b, 200, "first")
	second := fill(&b, 200, "second")
	check("first, with the second built after it", first, 200, "first")
	arena := unsafe.StringData(first.At(0, 1).Str)
	first.Release()
	third := fill(&b, 200, "third")
	if unsafe.StringData(third.At(0, 1).Str) != arena {
		t.Fatal("the released arena was not reused")
	}
	check("second, with the third on the first's arena", second, 200, "second")
	check("third", third, 200, "third")

	// A row copied from a block survives that block's release and reuse.
	var one PayloadBuilder
	src := fill(&one, 1, "pending")
	b.Reset(keys, 2)
	b.AddRow(src, 0)
	b.AddRow(src, 0)
	copied := b.Finish()
	src.Release()
	fill(&one, 1, "XXXXXXX") // as long as "pending": written over its bytes
	for i := 0; i < 2; i++ {
		if v := copied.Row(i); v["s"] != "pending-0" || v["n"] != int64(0) {
			t.Fatalf("copied row %d after its source was reused: %v", i, v)
		}
	}

	// Numbers only: no arena is taken or handed over.
	b.Reset([]string{"n"}, 3)
	b.Add(IntValue(1))
	if p := b.Finish(); p.arena != nil {
		t.Fatal("a block without strings holds an arena")
	}
}
