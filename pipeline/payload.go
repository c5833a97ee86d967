package pipeline

import (
	"math"
	"slices"
	"sort"
	"unsafe"

	"github.com/snappipe/snappipe/internal/bufpool"
)

// PayloadBlock holds the payload of consecutive rows: row i's value for
// Keys[k] is Vals[i*len(Keys)+k]. Every row has every key (a missing
// value is a Null). Values of a row sit side by side and scalars are
// unboxed: the map per row this replaced (a map, its entries and a boxed
// value per field and row) was a third of the CPU of loading LAION
// metadata, and the encoder reads a row's values in one sweep.
type PayloadBlock struct {
	Keys []string
	Vals []Value
	// Others holds the values of Kind Other (lists, groups), by Value.Num.
	Others []any
	buf    *[]Value // Vals' pooled backing (Release)
	// arena holds the bytes of the String values (they point into it),
	// pooled like buf: a block's strings are valid until its Release.
	arena *[]byte
}

// values holds the value buffers of released blocks. A LAION block of
// 256 rows × 15 keys is 120 KB: allocated afresh per block they were
// half of what a run allocated, and the heap's growth under that churn
// cost page faults (6% of the CPU of a 100k-row run).
var values = bufpool.NewList[Value](64)

// arenas holds the string bytes of released blocks. Copied into a fresh
// string per block they were a third of what a LAION run allocated, and
// the copy and the page faults of the heap growing under it 3% of its
// CPU.
var arenas = bufpool.NewList[byte](64)

// Release returns the block's value buffer and string bytes for reuse by
// a later block. Nothing may use the block, or a string taken from it,
// afterwards (a Batch's Release, called once the batch is acknowledged,
// releases its blocks; the sink copies the strings into its requests).
func (p *PayloadBlock) Release() {
	if p == nil {
		return
	}
	if p.arena != nil {
		*p.arena = (*p.arena)[:0]
		arenas.Put(p.arena)
		p.arena = nil
	}
	if p.buf == nil {
		return
	}
	clear(p.Vals) // no string of the arena is reachable from a reused buffer
	*p.buf = p.Vals[:0]
	values.Put(p.buf)
	p.buf, p.Vals = nil, nil
}

// Len is the number of rows (0 when there are no keys).
func (p *PayloadBlock) Len() int {
	if p == nil || len(p.Keys) == 0 {
		return 0
	}
	return len(p.Vals) / len(p.Keys)
}

// At returns row i's value for Keys[k].
func (p *PayloadBlock) At(i, k int) *Value { return &p.Vals[i*len(p.Keys)+k] }

// Any is v as a plain Go value.
func (p *PayloadBlock) Any(v *Value) any {
	if v.Kind == Other {
		return p.Others[v.Num]
	}
	return v.Plain()
}

// Row returns row i as plain Go values (for tests and diagnostics; the
// sink reads the values).
func (p *PayloadBlock) Row(i int) map[string]any {
	m := make(map[string]any, len(p.Keys))
	for k, key := range p.Keys {
		m[key] = p.Any(p.At(i, k))
	}
	return m
}

// SortedKeys returns the key indexes in key order.
func (p *PayloadBlock) SortedKeys() []int {
	idx := make([]int, len(p.Keys))
	for i := range idx {
		idx[i] = i
	}
	sort.Slice(idx, func(a, b int) bool { return p.Keys[idx[a]] < p.Keys[idx[b]] })
	return idx
}

// PayloadFromRows makes a block from maps (a key missing from a row is
// Null there).
func PayloadFromRows(rows []map[string]any) *PayloadBlock {
	seen := map[string]bool{}
	var keys []string
	for _, r := range rows {
		for k := range r {
			if !seen[k] {
				seen[k] = true
				keys = append(keys, k)
			}
		}
	}
	var b PayloadBuilder
	b.Reset(keys, len(rows))
	for _, r := range rows {
		for _, k := range keys {
			b.AddAny(r[k])
		}
	}
	return b.Finish()
}

// ValueKind says which field of a Value holds it.
type ValueKind uint8

const (
	Null   ValueKind = iota
	Bool             // Num is 0 or 1
	Int              // Num holds an int64
	Float            // Num holds float64 bits
	String           // Str
	Other            // a list or group: PayloadBlock.Others[Num]
)

// Value is one payload value, unboxed for the scalar kinds (32 bytes).
type Value struct {
	Str  string
	Num  uint64
	Kind ValueKind
}

// IntValue, FloatValue, BoolValue and StringValue make scalar values.
func IntValue(v int64) Value     { return Value{Kind: Int, Num: uint64(v)} }
func FloatValue(v float64) Value { return Value{Kind: Float, Num: math.Float64bits(v)} }
func StringValue(s string) Value { return Value{Kind: String, Str: s} }
func BoolValue(b bool) Value {
	if b {
		return Value{Kind: Bool, Num: 1}
	}
	return Value{Kind: Bool}
}

// Plain is a scalar value as a plain Go value (nil for Null and Other).
func (v Value) Plain() any {
	switch v.Kind {
	case Bool:
		return v.Num != 0
	case Int:
		return int64(v.Num)
	case Float:
		return math.Float64frombits(v.Num)
	case String:
		return v.Str
	}
	return nil
}

// ScalarOf turns a plain Go scalar (nil, bool, int64, float64, string) into
// a Value; other Go numbers are widened as the sink would (an int to int64,
// a uint64 beyond int64 to float64). It reports false for anything else
// (lists and groups: PayloadBuilder.AddAny keeps those).
func ScalarOf(v any) (Value, bool) {
	switch x := v.(type) {
	case nil:
		return Value{}, true
	case bool:
		return BoolValue(x), true
	case int64:
		return IntValue(x), true
	case int:
		return IntValue(int64(x)), true
	case int32:
		return IntValue(int64(x)), true
	case uint32:
		return IntValue(int64(x)), true
	case uint64:
		if x > math.MaxInt64 {
			return FloatValue(float64(x)), true
		}
		return IntValue(int64(x)), true
	case float64:
		return FloatValue(x), true
	case float32:
		return FloatValue(float64(x)), true
	case string:
		return StringValue(x), true
	}
	return Value{}, false
}

// PayloadBuilder fills a PayloadBlock row by row, each row's values in key
// order. String values given as bytes are copied into one pooled buffer,
// the block's arena, which the strings point into (Finish): no allocation
// per value or per block.
type PayloadBuilder struct {
	blk      PayloadBlock
	arena    []byte
	arenaBuf *[]byte // arena's pooled backing, nil until a string is set
	last     int     // the previous block's arena length (a size hint)
	refs     []strRef
}

type strRef struct{ at, start, end int }

// Reset starts a block of (about) rows rows with these keys.
func (b *PayloadBuilder) Reset(keys []string, rows int) {
	bp := values.Get(rows * len(keys))
	b.blk = PayloadBlock{Keys: keys, Vals: (*bp)[:0], buf: bp}
	b.arena = b.arena[:0]
	b.refs = b.refs[:0]
}

// Add appends a scalar value (made by IntValue, StringValue, ...).
func (b *PayloadBuilder) Add(v Value) { b.blk.Vals = append(b.blk.Vals, v) }

// AddAny appends a plain Go value.
func (b *PayloadBuilder) AddAny(v any) {
	b.blk.Vals = append(b.blk.Vals, Value{})
	b.SetAny(len(b.blk.Vals)-1, v)
}

// AddRow appends row i of blk (whose keys are this builder's). Its
// strings are copied: the new block does not depend on blk's memory.
func (b *PayloadBuilder) AddRow(blk *PayloadBlock, i int) {
	for k := range blk.Keys {
		switch v := blk.At(i, k); v.Kind {
		case Other:
			b.AddAny(blk.Others[v.Num])
		case String:
			b.AddBytes(unsafe.Slice(unsafe.StringData(v.Str), len(v.Str)))
		default:
			b.Add(*v)
		}
	}
}

// AddBytes appends the string s (copied).
func (b *PayloadBuilder) AddBytes(s []byte) {
	b.blk.Vals = append(b.blk.Vals, Value{})
	b.SetBytes(len(b.blk.Vals)-1, s)
}

// Len is the number of values added so far.
func (b *PayloadBuilder) Len() int { return len(b.blk.Vals) }

// Grow appends rows rows of Null values, to be filled column by column
// with Set, SetBytes and SetAny, and returns the index of the first: row
// j's value for key k is at first + j*len(keys) + k.
func (b *PayloadBuilder) Grow(rows int) (first int) {
	first = len(b.blk.Vals)
	n := first + rows*len(b.blk.Keys)
	b.blk.Vals = slices.Grow(b.blk.Vals, n-first)[:n]
	clear(b.blk.Vals[first:])
	return first
}

// Set sets the value at index at (see Grow) to a scalar value.
func (b *PayloadBuilder) Set(at int, v Value) { b.blk.Vals[at] = v }

// SetBytes sets the value at index at to the string s (copied).
func (b *PayloadBuilder) SetBytes(at int, s []byte) {
	if b.arenaBuf == nil {
		b.arenaBuf = arenas.Get(b.last)
		b.arena = (*b.arenaBuf)[:0]
	}
	b.refs = append(b.refs, strRef{at, len(b.arena), len(b.arena) + len(s)})
	b.arena = append(b.arena, s...)
	b.blk.Vals[at] = Value{Kind: String}
}

// SetAny sets the value at index at to a plain Go value.
func (b *PayloadBuilder) SetAny(at int, v any) {
	if s, ok := ScalarOf(v); ok {
		b.blk.Vals[at] = s
		return
	}
	b.blk.Vals[at] = Value{Kind: Other, Num: uint64(len(b.blk.Others))}
	b.blk.Others = append(b.blk.Others, v)
}

// Finish returns the block. The builder may be Reset and reused; the block
// keeps its own memory.
func (b *PayloadBuilder) Finish() *PayloadBlock {
	blk := b.blk
	b.blk = PayloadBlock{}
	if len(b.refs) == 0 {
		return &blk
	}
	a := b.arena
	for _, r := range b.refs {
		if r.end > r.start {
			blk.Vals[r.at].Str = unsafe.String(&a[r.start], r.end-r.start)
		}
	}
	// The block owns the arena from here (its strings point into it);
	// the next block's comes from the pool.
	*b.arenaBuf = a
	blk.arena = b.arenaBuf
	b.last = len(a)
	b.arena, b.arenaBuf = nil, nil
	return &blk
}
