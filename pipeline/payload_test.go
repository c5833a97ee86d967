package pipeline

import "testing"

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
