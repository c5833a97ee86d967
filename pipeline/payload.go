package pipeline

import (
	"math"
	"sort"
)

// PayloadBlock holds the payload of consecutive rows column by column:
// row i's value for Keys[k] is Cols[k][i]. Every row has every key (a
// missing value is a Null). Keeping columns, not a map per row, spares a
// map, its entries and a boxed value per field and row: the payload was a
// third of the CPU of loading LAION metadata.
type PayloadBlock struct {
	Keys []string
	Cols [][]Value
}

// Len is the number of rows.
func (p *PayloadBlock) Len() int {
	if p == nil || len(p.Cols) == 0 {
		return 0
	}
	return len(p.Cols[0])
}

// Row returns row i as plain Go values (for tests and diagnostics; the
// sink reads the columns).
func (p *PayloadBlock) Row(i int) map[string]any {
	m := make(map[string]any, len(p.Keys))
	for k, key := range p.Keys {
		m[key] = p.Cols[k][i].Any()
	}
	return m
}

// SortedKeys returns the column indexes in key order.
func (p *PayloadBlock) SortedKeys() []int {
	idx := make([]int, len(p.Keys))
	for i := range idx {
		idx[i] = i
	}
	sort.Slice(idx, func(a, b int) bool { return p.Keys[idx[a]] < p.Keys[idx[b]] })
	return idx
}

// PayloadFromRows makes a block from maps with the same keys (missing
// keys become Null).
func PayloadFromRows(rows []map[string]any) *PayloadBlock {
	seen := map[string]int{}
	p := &PayloadBlock{}
	for _, r := range rows {
		for k := range r {
			if _, ok := seen[k]; !ok {
				seen[k] = len(p.Keys)
				p.Keys = append(p.Keys, k)
			}
		}
	}
	p.Cols = make([][]Value, len(p.Keys))
	for k, key := range p.Keys {
		p.Cols[k] = make([]Value, len(rows))
		for i, r := range rows {
			p.Cols[k][i] = ValueOf(r[key])
		}
	}
	return p
}

// ValueKind says which field of a Value holds it.
type ValueKind uint8

const (
	Null   ValueKind = iota
	Bool             // Num is 0 or 1
	Int              // Num holds an int64
	Float            // Num holds float64 bits
	String           // Str
	Other            // Other: []any or map[string]any of plain Go values
)

// Value is one payload value, unboxed for the scalar kinds.
type Value struct {
	Kind  ValueKind
	Num   uint64
	Str   string
	Other any
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

// ValueOf turns a plain Go value (nil, bool, int64, float64, string, []any,
// map[string]any) into a Value; other Go numbers are widened as the sink
// would (an int to int64, a uint64 beyond int64 to float64).
func ValueOf(v any) Value {
	switch x := v.(type) {
	case nil:
		return Value{}
	case bool:
		return BoolValue(x)
	case int64:
		return IntValue(x)
	case int:
		return IntValue(int64(x))
	case int32:
		return IntValue(int64(x))
	case uint32:
		return IntValue(int64(x))
	case uint64:
		if x > math.MaxInt64 {
			return FloatValue(float64(x))
		}
		return IntValue(int64(x))
	case float64:
		return FloatValue(x)
	case float32:
		return FloatValue(float64(x))
	case string:
		return StringValue(x)
	}
	return Value{Kind: Other, Other: v}
}

// Any is the value as a plain Go value.
func (v Value) Any() any {
	switch v.Kind {
	case Bool:
		return v.Num != 0
	case Int:
		return int64(v.Num)
	case Float:
		return math.Float64frombits(v.Num)
	case String:
		return v.Str
	case Other:
		return v.Other
	}
	return nil
}

// PayloadBuilder fills a PayloadBlock row by row. String values given as
// bytes are copied into one buffer and become strings with one allocation
// per block (Finish), not one per value.
type PayloadBuilder struct {
	blk   PayloadBlock
	arena []byte
	refs  []strRef
}

type strRef struct{ col, row, start, end int }

// Reset starts a block of (about) rows rows with these keys.
func (b *PayloadBuilder) Reset(keys []string, rows int) {
	b.blk = PayloadBlock{Keys: keys, Cols: make([][]Value, len(keys))}
	for k := range b.blk.Cols {
		b.blk.Cols[k] = make([]Value, 0, rows)
	}
	b.arena = b.arena[:0]
	b.refs = b.refs[:0]
}

// Add appends v to column k.
func (b *PayloadBuilder) Add(k int, v Value) { b.blk.Cols[k] = append(b.blk.Cols[k], v) }

// AddBytes appends the string s (copied) to column k.
func (b *PayloadBuilder) AddBytes(k int, s []byte) {
	b.refs = append(b.refs, strRef{k, len(b.blk.Cols[k]), len(b.arena), len(b.arena) + len(s)})
	b.arena = append(b.arena, s...)
	b.blk.Cols[k] = append(b.blk.Cols[k], Value{Kind: String})
}

// Finish returns the block. The builder may be Reset and reused; the block
// keeps its own memory.
func (b *PayloadBuilder) Finish() *PayloadBlock {
	all := string(b.arena)
	for _, r := range b.refs {
		b.blk.Cols[r.col][r.row].Str = all[r.start:r.end]
	}
	blk := b.blk
	b.blk = PayloadBlock{}
	return &blk
}
