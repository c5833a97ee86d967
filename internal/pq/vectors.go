package pq

import (
	"fmt"
	"io"
	"math"
	"slices"

	"github.com/parquet-go/parquet-go"
	"github.com/parquet-go/parquet-go/format"
	"github.com/snappipe/snappipe/pipeline"
	"github.com/x448/float16"
)

// MaxMultiComponents is Qdrant's bound on a multivector: a point's token
// vectors together must hold fewer components than this
// (MAX_MULTIVECTOR_FLATTENED_LEN in release builds).
const MaxMultiComponents = 1 << 20

// MaxSparseEntries bounds one row's sparse vector, so a corrupt or hostile
// file cannot make a row grow without limit (SPLADE vocabularies are ~30k).
const MaxSparseEntries = 1 << 20

// Sparse is one row's sparse vector.
type Sparse struct {
	Indices []uint32
	Values  []float32
}

// nested describes a LIST column nested depth times down to its one leaf
// (depth 1: list<T>; depth 2: list<list<T>>), in Dremel levels.
type nested struct {
	col int
	// nonEmpty[k] is the definition level at which the list at depth k
	// has an element; a lower level means that list is null or empty.
	nonEmpty []int
	maxDef   int // below it the leaf value is null
	leaf     parquet.Node
	kind     parquet.Kind
	half     bool // FIXED_LEN_BYTE_ARRAY(2) with the FLOAT16 logical type
	unsigned bool // an integer leaf with an unsigned logical type
}

// nestedList walks a top-level node down depth LIST levels (the standard
// three-level layout, or a bare repeated leaf innermost).
func nestedList(n parquet.Node, col, depth int) (*nested, bool) {
	def := 0
	lv := &nested{col: col}
	for k := 0; k < depth; k++ {
		if n.Optional() {
			def++
		}
		if n.Leaf() && n.Repeated() {
			if k != depth-1 {
				return nil, false
			}
			def++
			lv.nonEmpty = append(lv.nonEmpty, def)
			n = nil
			break
		}
		lt := n.Type().LogicalType()
		if n.Leaf() || lt == nil || !isListType(lt) {
			return nil, false
		}
		kids := n.Fields()
		if len(kids) != 1 || !kids[0].Repeated() {
			return nil, false
		}
		rep := kids[0]
		def++
		lv.nonEmpty = append(lv.nonEmpty, def)
		if rep.Leaf() {
			if k != depth-1 {
				return nil, false
			}
			lv.leaf, lv.maxDef = rep, def
			n = nil
			break
		}
		ek := rep.Fields()
		if len(ek) != 1 {
			return nil, false
		}
		n = ek[0]
	}
	if n != nil {
		if !n.Leaf() || n.Repeated() {
			return nil, false
		}
		if n.Optional() {
			def++
		}
		lv.leaf, lv.maxDef = n, def
	} else if lv.leaf == nil {
		return nil, false
	}
	if lv.leaf == nil {
		return nil, false
	}
	t := lv.leaf.Type()
	lv.kind = t.Kind()
	if lt := t.LogicalType(); lt != nil {
		switch v := lt.Value.(type) {
		case *format.Float16Type:
			lv.half = true
		case *format.IntType:
			lv.unsigned = !v.IsSigned
		}
	}
	return lv, true
}

// floats reports whether the leaf holds float, double or half values.
func (lv *nested) floats() bool {
	return lv.kind == parquet.Float || lv.kind == parquet.Double || lv.half
}

// ints reports whether the leaf holds integers.
func (lv *nested) ints() bool { return lv.kind == parquet.Int32 || lv.kind == parquet.Int64 }

// floatOf converts a float, double or half value.
func floatOf(v *parquet.Value) (float32, bool) {
	switch v.Kind() {
	case parquet.Float:
		return v.Float(), true
	case parquet.Double:
		return float32(v.Double()), true
	case parquet.FixedLenByteArray:
		if b := v.ByteArray(); len(b) == 2 {
			return float16.Frombits(uint16(b[0]) | uint16(b[1])<<8).Float32(), true
		}
	}
	return 0, false
}

// multiRowError is a problem with one row of a multivector column.
type multiRowError struct{ msg string }

func (e *multiRowError) Error() string { return e.msg }

// nextMulti appends the next row's token vectors (list<list<float>>) to
// dst. *width is the token width: set by the first token read when 0, and
// every token must have it.
func (c *cursor) nextMulti(dst []float32, lv *nested, width *int) ([]float32, error) {
	if err := c.fill(); err != nil {
		return dst, err
	}
	start := len(dst)
	tokStart, tokens := len(dst), 0
	endToken := func() error {
		n := len(dst) - tokStart
		tokens++
		if *width == 0 {
			*width = n
		} else if n != *width {
			return &multiRowError{fmt.Sprintf("token vector %d has %d components, the column's first token vector has %d", tokens-1, n, *width)}
		}
		return nil
	}
	for first := true; ; first = false {
		v := &c.buf[c.i]
		rep := v.RepetitionLevel()
		if !first && rep == 0 {
			break
		}
		d := v.DefinitionLevel()
		if first && d < lv.nonEmpty[0] {
			c.i++
			return dst, &multiRowError{"has no token vectors (a multivector needs at least one)"}
		}
		if !first && rep <= 1 {
			if err := endToken(); err != nil {
				return dst, err
			}
			tokStart = len(dst)
		}
		switch {
		case d < lv.nonEmpty[1]:
			return dst, &multiRowError{fmt.Sprintf("token vector %d is null or empty", tokens)}
		case d < lv.maxDef || v.IsNull():
			return dst, &multiRowError{fmt.Sprintf("token vector %d has a null component", tokens)}
		}
		f, ok := floatOf(v)
		if !ok {
			return dst, &multiRowError{fmt.Sprintf("holds %v values, not floats", v.Kind())}
		}
		dst = append(dst, f)
		if len(dst)-start >= MaxMultiComponents {
			return dst, &multiRowError{fmt.Sprintf("holds %d or more components; Qdrant refuses a multivector of %d or more", MaxMultiComponents, MaxMultiComponents)}
		}
		c.i++
		if err := c.fill(); err != nil {
			if err != io.EOF {
				return dst, err
			}
			break
		}
	}
	return dst, endToken()
}

// nextList reads the next row of a list<T> column, calling add for every
// element; a null or empty list adds nothing. It stops at limit elements.
func (c *cursor) nextList(lv *nested, limit int, add func(v *parquet.Value) error) (int, error) {
	if err := c.fill(); err != nil {
		return 0, err
	}
	n := 0
	for first := true; ; first = false {
		v := &c.buf[c.i]
		if !first && v.RepetitionLevel() == 0 {
			return n, nil
		}
		d := v.DefinitionLevel()
		if first && d < lv.nonEmpty[0] {
			c.i++ // null or empty: the row's only value
			return 0, c.skipEOF()
		}
		if d < lv.maxDef || v.IsNull() {
			return n, &multiRowError{fmt.Sprintf("element %d is null", n)}
		}
		if n >= limit {
			return n, &multiRowError{fmt.Sprintf("holds more than %d elements", limit)}
		}
		if err := add(v); err != nil {
			return n, err
		}
		n++
		c.i++
		if err := c.fill(); err != nil {
			if err == io.EOF {
				return n, nil
			}
			return n, err
		}
	}
}

// skipEOF is fill that treats the end of the column as no error.
func (c *cursor) skipEOF() error {
	if err := c.fill(); err != nil && err != io.EOF {
		return err
	}
	return nil
}

// indexOf converts a sparse index value, refusing what does not fit uint32.
func indexOf(v *parquet.Value, unsigned bool) (uint32, error) {
	switch v.Kind() {
	case parquet.Int32:
		if unsigned {
			return uint32(v.Int32()), nil
		}
		if i := v.Int32(); i >= 0 {
			return uint32(i), nil
		}
		return 0, &multiRowError{fmt.Sprintf("index %d is negative", v.Int32())}
	case parquet.Int64:
		if unsigned {
			if u := v.Uint64(); u <= math.MaxUint32 {
				return uint32(u), nil
			}
			return 0, &multiRowError{fmt.Sprintf("index %d does not fit a sparse dimension (0-4294967295)", v.Uint64())}
		}
		i := v.Int64()
		if i < 0 {
			return 0, &multiRowError{fmt.Sprintf("index %d is negative", i)}
		}
		if i > math.MaxUint32 {
			return 0, &multiRowError{fmt.Sprintf("index %d does not fit a sparse dimension (0-4294967295)", i)}
		}
		return uint32(i), nil
	}
	return 0, &multiRowError{fmt.Sprintf("holds %v values, not integers", v.Kind())}
}

// sparseCols is one sparse vector's two columns.
type sparseCols struct {
	pair     pipeline.SparsePair
	idx, val *nested
	scratch  []uint32
}

// nextSparse reads one row of a sparse pair into dst (reusing its slices).
func (r *Reader) nextSparse(sc *sparseCols, dst Sparse) (Sparse, error) {
	dst.Indices, dst.Values = dst.Indices[:0], dst.Values[:0]
	var err error
	ni, err := r.cursors[sc.idx.col].nextList(sc.idx, MaxSparseEntries, func(v *parquet.Value) error {
		i, err := indexOf(v, sc.idx.unsigned)
		dst.Indices = append(dst.Indices, i)
		return err
	})
	if err != nil {
		return dst, fmt.Errorf("sparse indices column %q: %w", sc.pair.Indices, err)
	}
	nv, err := r.cursors[sc.val.col].nextList(sc.val, MaxSparseEntries, func(v *parquet.Value) error {
		f, ok := floatOf(v)
		if !ok {
			return &multiRowError{fmt.Sprintf("holds %v values, not floats", v.Kind())}
		}
		dst.Values = append(dst.Values, f)
		return nil
	})
	if err != nil {
		return dst, fmt.Errorf("sparse values column %q: %w", sc.pair.Values, err)
	}
	if ni != nv {
		return dst, fmt.Errorf("sparse vector: indices column %q has %d entries, values column %q has %d (they must be equally long)", sc.pair.Indices, ni, sc.pair.Values, nv)
	}
	if ni > 1 {
		sc.scratch = append(sc.scratch[:0], dst.Indices...)
		slices.Sort(sc.scratch)
		for k := 1; k < len(sc.scratch); k++ {
			if sc.scratch[k] == sc.scratch[k-1] {
				return dst, fmt.Errorf("sparse vector: index %d appears more than once in column %q (indices must be unique)", sc.scratch[k], sc.pair.Indices)
			}
		}
	}
	return dst, nil
}

// planNested finds a multivector or sparse column and checks its type.
func (r *Reader) planNested(name, role string, depth int, want func(*nested) bool, what string) (*nested, error) {
	top := r.f.f.Schema().Fields()
	col := 0
	for _, n := range top {
		if n.Name() == name {
			lv, ok := nestedList(n, col, depth)
			if ok && r.f.half[col] {
				lv.half = true
			}
			if !ok || !want(lv) {
				return nil, fmt.Errorf("%s column %q in %s is %v, not %s", role, name, r.f.name, n.Type(), what)
			}
			return lv, nil
		}
		col += skipLeaves(n)
	}
	var names []string
	for _, n := range top {
		names = append(names, n.Name())
	}
	return nil, fmt.Errorf("%s column %q is not in %s (columns: %v)", role, name, r.f.name, names)
}

// MultiWidth is a multivector column's token width, known once a row of it
// was read (0 before).
func (r *Reader) MultiWidth(name string) int { return r.multiWidth[name] }
