// Package pq streams Parquet rows as Qdrant payload values, reading only the
// columns asked for, column chunk by column chunk, so memory stays flat
// whatever the row-group size.
package pq

import (
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"
	"github.com/parquet-go/parquet-go"
	"github.com/parquet-go/parquet-go/format"
	"github.com/snappipe/snappipe/pipeline"
	"github.com/x448/float16"
)

// File is an open Parquet file.
type File struct {
	f    *parquet.File
	r    io.ReaderAt // the file, size bytes (chunkPages reads pages from it)
	size int64
	name string
	// half marks leaf columns (by index) the footer annotates FLOAT16:
	// parquet-go's schema nodes drop that annotation.
	half map[int]bool
}

// Open reads the footer of a Parquet file of size bytes.
func Open(r io.ReaderAt, size int64, name string) (*File, error) {
	return OpenBuffered(r, size, name, 1<<20)
}

// OpenBuffered is Open with the page read buffer size: small for remote
// files, so reading the first rows fetches little more than their pages.
func OpenBuffered(r io.ReaderAt, size int64, name string, buf int) (*File, error) {
	if err := checkFooter(r, size); err != nil {
		return nil, fmt.Errorf("open parquet %s: %w", name, err)
	}
	f, err := openParquet(r, size, buf)
	if err != nil {
		return nil, fmt.Errorf("open parquet %s: %w", name, err)
	}
	if err := checkLeaves(f.Schema(), ""); err != nil {
		return nil, fmt.Errorf("open parquet %s: corrupt schema: %w", name, err)
	}
	return &File{f: f, r: r, size: size, name: name, half: float16Leaves(f)}, nil
}

// openParquet is parquet.OpenFile with a panic turned into an error: a
// hostile footer can make parquet-go panic while it builds the column tree
// (a schema element with a negative child count slices with a negative
// length, found by FuzzOpen against parquet-go v0.32.0). The half-built
// file is dropped; nothing else holds state from the call.
func openParquet(r io.ReaderAt, size int64, buf int) (f *parquet.File, err error) {
	defer func() {
		if p := recover(); p != nil {
			f, err = nil, fmt.Errorf("corrupt footer: the Parquet reader failed on it (%v)", p)
		}
	}()
	return parquet.OpenFile(r, size, parquet.SkipPageIndex(true), parquet.SkipBloomFilters(true), parquet.ReadBufferSize(buf))
}

// checkLeaves makes sure every leaf column has a primitive type: a hostile
// schema can annotate a leaf as a MAP or LIST, whose type parquet-go panics
// on when asked for its kind (found by FuzzOpen). Checked once, here, so
// the readers may ask any leaf for its kind.
func checkLeaves(n parquet.Node, path string) error {
	if n.Leaf() {
		if _, ok := kindOf(n.Type()); !ok {
			return fmt.Errorf("column %s is a primitive column annotated %v", strings.TrimPrefix(path, "."), n.Type())
		}
		return nil
	}
	for _, c := range n.Fields() {
		if err := checkLeaves(c, path+"."+c.Name()); err != nil {
			return err
		}
	}
	return nil
}

func kindOf(t parquet.Type) (k parquet.Kind, ok bool) {
	defer func() {
		if recover() != nil {
			ok = false
		}
	}()
	return t.Kind(), true
}

// float16Leaves finds the FLOAT16 leaves in the footer's flattened schema
// (leaves appear in column order).
func float16Leaves(f *parquet.File) map[int]bool {
	out := map[int]bool{}
	leaf := 0
	for i, el := range f.Metadata().Schema {
		if i == 0 || el.NumChildren.Valid && el.NumChildren.V > 0 {
			continue // the root, or a group
		}
		if _, ok := el.LogicalType.Value.(*format.Float16Type); ok && el.TypeLength.Valid && el.TypeLength.V == 2 {
			out[leaf] = true
		}
		leaf++
	}
	return out
}

// MaxFooter bounds the footer (file metadata) snappipe reads: parquet-go
// allocates the length the file's last bytes claim before reading it.
const MaxFooter = 64 << 20

// checkFooter reads the trailer (footer length + "PAR1") and checks the
// length against the file before any buffer is sized from it.
func checkFooter(r io.ReaderAt, size int64) error {
	if size < 12 {
		return fmt.Errorf("not a parquet file: %d bytes", size)
	}
	var tail [8]byte
	if _, err := r.ReadAt(tail[:], size-8); err != nil {
		return fmt.Errorf("reading the trailer: %w", err)
	}
	if string(tail[4:]) != "PAR1" {
		return fmt.Errorf("not a parquet file: no PAR1 magic at the end")
	}
	n := int64(binary.LittleEndian.Uint32(tail[:4]))
	if n > size-12 {
		return fmt.Errorf("corrupt parquet file: footer of %d bytes in a %d-byte file", n, size)
	}
	if n > MaxFooter {
		return fmt.Errorf("parquet footer of %d bytes exceeds the %d-byte limit", n, MaxFooter)
	}
	return nil
}

// NumRows is the file's row count.
func (f *File) NumRows() int64 { return f.f.NumRows() }

// Columns lists the top-level column names in file order.
func (f *File) Columns() []string {
	var out []string
	for _, fl := range f.f.Schema().Fields() {
		out = append(out, fl.Name())
	}
	return out
}

// Describe summarises the file for messages.
func (f *File) Describe() string {
	return fmt.Sprintf("parquet, %d rows in %d row groups, %d columns", f.NumRows(), len(f.f.RowGroups()), len(f.f.Schema().Fields()))
}

// field assembles one top-level column's value for a row from its leaf
// columns' values.
type field interface {
	leaves() []int
	build(vals [][]parquet.Value) (any, error)
}

type prim struct {
	col    int
	maxDef int
	conv   func(parquet.Value) any
	// fast, when set, says conv is the plain conversion of a scalar kind,
	// which put writes without boxing the value.
	fast fastKind
}

// fastKind names the scalar conversions put does itself.
type fastKind uint8

const (
	fastNone fastKind = iota
	fastBool
	fastInt32
	fastInt64
	fastFloat
	fastDouble
	fastString
)

// fastKindOf is the fastKind whose result equals converter(n)'s, or
// fastNone.
func fastKindOf(n parquet.Node) fastKind {
	t := n.Type()
	var lv format.LogicalTypeValue
	if lt := t.LogicalType(); lt != nil {
		lv = lt.Value
	}
	signed := func() bool {
		if lv == nil {
			return true
		}
		it, ok := lv.(*format.IntType)
		return ok && it.IsSigned
	}
	switch t.Kind() {
	case parquet.Boolean:
		if lv == nil {
			return fastBool
		}
	case parquet.Int32:
		if signed() {
			return fastInt32
		}
	case parquet.Int64:
		if signed() {
			return fastInt64
		}
	case parquet.Float:
		if lv == nil {
			return fastFloat
		}
	case parquet.Double:
		if lv == nil {
			return fastDouble
		}
	case parquet.ByteArray:
		switch lv.(type) {
		case *format.StringType, *format.EnumType, *format.JsonType:
			return fastString
		}
	}
	return fastNone
}

// put adds the row's value to b, as build would make it.
func (p *prim) put(b *pipeline.PayloadBuilder, vals [][]parquet.Value) {
	b.Add(pipeline.Value{})
	p.set(b, b.Len()-1, vals)
}

// set sets the builder's value at index at (a Null there) to this row's.
func (p *prim) set(b *pipeline.PayloadBuilder, at int, vals [][]parquet.Value) {
	vs := vals[p.col]
	if len(vs) == 0 || vs[0].DefinitionLevel() < p.maxDef || vs[0].IsNull() {
		return
	}
	v := vs[0]
	switch p.fast {
	case fastBool:
		b.Set(at, pipeline.BoolValue(v.Boolean()))
	case fastInt32:
		b.Set(at, pipeline.IntValue(int64(v.Int32())))
	case fastInt64:
		b.Set(at, pipeline.IntValue(v.Int64()))
	case fastFloat:
		b.Set(at, pipeline.FloatValue(float64(v.Float())))
	case fastDouble:
		b.Set(at, pipeline.FloatValue(v.Double()))
	case fastString:
		b.SetBytes(at, v.ByteArray())
	default:
		b.SetAny(at, p.conv(v))
	}
}

func (p *prim) leaves() []int { return []int{p.col} }
func (p *prim) build(vals [][]parquet.Value) (any, error) {
	vs := vals[p.col]
	if len(vs) == 0 || vs[0].DefinitionLevel() < p.maxDef || vs[0].IsNull() {
		return nil, nil
	}
	return p.conv(vs[0]), nil
}

type list struct {
	col                 int
	dList, dRep, maxDef int
	conv                func(parquet.Value) any
}

func (l *list) leaves() []int { return []int{l.col} }
func (l *list) build(vals [][]parquet.Value) (any, error) {
	vs := vals[l.col]
	if len(vs) == 1 && vs[0].DefinitionLevel() < l.dList {
		return nil, nil
	}
	if len(vs) == 1 && vs[0].DefinitionLevel() < l.dRep {
		return []any{}, nil
	}
	items := make([]any, len(vs))
	for i, v := range vs {
		if v.DefinitionLevel() < l.maxDef || v.IsNull() {
			items[i] = nil
		} else {
			items[i] = l.conv(v)
		}
	}
	return items, nil
}

type group struct {
	names    []string
	children []field
	dStruct  int
	first    int
}

func (g *group) leaves() []int {
	var out []int
	for _, c := range g.children {
		out = append(out, c.leaves()...)
	}
	return out
}
func (g *group) build(vals [][]parquet.Value) (any, error) {
	if vs := vals[g.first]; len(vs) > 0 && vs[0].DefinitionLevel() < g.dStruct {
		return nil, nil
	}
	m := make(map[string]any, len(g.names))
	for i, c := range g.children {
		v, err := c.build(vals)
		if err != nil {
			return nil, err
		}
		m[g.names[i]] = v
	}
	return m, nil
}

// fixHalf gives FLOAT16 leaves (known from the footer: parquet-go's
// schema nodes drop the annotation) the float16 conversion.
func (f *File) fixHalf(fl field) {
	switch x := fl.(type) {
	case *prim:
		if f.half[x.col] {
			x.conv, x.fast = halfValue, fastNone
		}
	case *list:
		if f.half[x.col] {
			x.conv = halfValue
		}
	case *group:
		for _, c := range x.children {
			f.fixHalf(c)
		}
	}
}

// halfValue converts a FLOAT16 value (2 little-endian bytes) to float64.
func halfValue(v parquet.Value) any {
	b := v.ByteArray()
	if len(b) != 2 {
		return bytesValue(v)
	}
	return float64(float16.Frombits(uint16(b[0]) | uint16(b[1])<<8).Float32())
}

// plan walks a top-level node into a field assembler. colIdx counts leaf
// columns in schema order; def is the definition level above the node.
func plan(n parquet.Node, path string, colIdx *int, def int) (field, error) {
	if n.Optional() {
		def++
	}
	lt := n.Type().LogicalType()
	isList := lt != nil && isListType(lt)
	switch {
	case n.Leaf() && !n.Repeated():
		f := &prim{col: *colIdx, maxDef: def, conv: converter(n), fast: fastKindOf(n)}
		*colIdx++
		return f, nil
	case n.Leaf() && n.Repeated():
		// Bare repeated primitive: a list that is never null.
		f := &list{col: *colIdx, dList: 0, dRep: def + 1, maxDef: def + 1, conv: converter(n)}
		*colIdx++
		return f, nil
	case isList && !n.Repeated():
		kids := n.Fields()
		if len(kids) != 1 || !kids[0].Repeated() {
			return nil, fmt.Errorf("column %s: malformed LIST", path)
		}
		rep := kids[0]
		dRep := def + 1
		elem := rep
		if !rep.Leaf() {
			ek := rep.Fields()
			if len(ek) != 1 || !ek[0].Leaf() {
				return nil, fmt.Errorf("column %s: lists of structs or lists are not supported (exclude the column)", path)
			}
			elem = ek[0]
		}
		maxDef := dRep
		if elem != rep && elem.Optional() {
			maxDef++
		}
		f := &list{col: *colIdx, dList: def, dRep: dRep, maxDef: maxDef, conv: converter(elem)}
		*colIdx++
		return f, nil
	case !n.Leaf() && !n.Repeated() && (lt == nil || lt.Value == nil):
		g := &group{dStruct: def, first: *colIdx}
		for _, k := range n.Fields() {
			c, err := plan(k, path+"."+k.Name(), colIdx, def)
			if err != nil {
				return nil, err
			}
			g.names = append(g.names, k.Name())
			g.children = append(g.children, c)
		}
		return g, nil
	default:
		return nil, fmt.Errorf("column %s: type %v is not supported as payload (exclude the column)", path, n.Type())
	}
}

func isListType(lt *format.LogicalType) bool {
	_, ok := lt.Value.(*format.ListType)
	return ok
}

// skipLeaves counts a node's leaf columns.
func skipLeaves(n parquet.Node) int {
	if n.Leaf() {
		return 1
	}
	c := 0
	for _, k := range n.Fields() {
		c += skipLeaves(k)
	}
	return c
}

// converter picks the payload conversion for a primitive node.
func converter(n parquet.Node) func(parquet.Value) any {
	t := n.Type()
	var lv format.LogicalTypeValue
	if lt := t.LogicalType(); lt != nil {
		lv = lt.Value
	}
	if _, ok := lv.(*format.NullType); ok {
		return func(parquet.Value) any { return nil }
	}
	switch t.Kind() {
	case parquet.Boolean:
		return func(v parquet.Value) any { return v.Boolean() }
	case parquet.Int32:
		switch l := lv.(type) {
		case *format.DateType:
			return func(v parquet.Value) any {
				return string(time.Unix(int64(v.Int32())*86400, 0).UTC().Format("2006-01-02"))
			}
		case *format.IntType:
			if !l.IsSigned {
				return func(v parquet.Value) any { return int64(uint32(v.Int32())) }
			}
		case *format.DecimalType:
			scale := l.Scale
			return func(v parquet.Value) any {
				return float64(v.Int32()) / math.Pow10(int(scale))
			}
		}
		return func(v parquet.Value) any { return int64(v.Int32()) }
	case parquet.Int64:
		switch l := lv.(type) {
		case *format.TimestampType:
			unit := time.Microsecond
			if l.Unit.Value != nil {
				unit = l.Unit.Value.Duration()
			}
			return func(v parquet.Value) any {
				ts := v.Int64()
				var t time.Time
				switch unit {
				case time.Millisecond:
					t = time.UnixMilli(ts)
				case time.Nanosecond:
					t = time.Unix(0, ts)
				default:
					t = time.UnixMicro(ts)
				}
				return string(t.UTC().Format(time.RFC3339Nano))
			}
		case *format.IntType:
			if !l.IsSigned {
				return func(v parquet.Value) any {
					u := v.Uint64()
					if u > math.MaxInt64 {
						return u // beyond int64: kept exact (an id column accepts it; a payload sends it as a double)
					}
					return int64(u)
				}
			}
		case *format.DecimalType:
			scale := l.Scale
			return func(v parquet.Value) any {
				return float64(v.Int64()) / math.Pow10(int(scale))
			}
		}
		return func(v parquet.Value) any { return int64(v.Int64()) }
	case parquet.Int96:
		return func(v parquet.Value) any {
			i := v.Int96()
			nanos := int64(i[0]) | int64(i[1])<<32
			julian := int64(i[2])
			t := time.Unix((julian-2440588)*86400, nanos).UTC()
			return string(t.Format(time.RFC3339Nano))
		}
	case parquet.Float:
		return func(v parquet.Value) any { return float64(v.Float()) }
	case parquet.Double:
		return func(v parquet.Value) any { return float64(v.Double()) }
	case parquet.ByteArray:
		switch lv.(type) {
		case *format.StringType, *format.EnumType, *format.JsonType:
			return func(v parquet.Value) any { return string(v.ByteArray()) }
		}
		return bytesValue
	case parquet.FixedLenByteArray:
		switch lv.(type) {
		case *format.UUIDType:
			return func(v parquet.Value) any {
				u, err := uuid.FromBytes(v.ByteArray())
				if err != nil {
					return string(hex.EncodeToString(v.ByteArray()))
				}
				return string(u.String())
			}
		case *format.Float16Type:
			return func(v parquet.Value) any {
				b := v.ByteArray()
				return float64(float16.Frombits(uint16(b[0]) | uint16(b[1])<<8).Float32())
			}
		}
		return bytesValue
	}
	return func(v parquet.Value) any { return string(v.String()) }
}

// bytesValue renders raw binary as text when it is UTF-8, else base64.
func bytesValue(v parquet.Value) any {
	b := v.ByteArray()
	if utf8.Valid(b) {
		return string(b)
	}
	return string(base64.StdEncoding.EncodeToString(b))
}

// Selection says which columns a reader returns.
type Selection struct {
	Payload []string // payload columns; nil with AllPayload for every column
	// AllPayload selects every top-level column except Exclude.
	AllPayload bool
	Exclude    []string
	// Vectors are list<float>/list<double> columns decoded as float32 rows.
	Vectors []string
	// JSONVectors are the Vectors that are string columns holding a JSON
	// array of numbers per row (the layout of Qdrant/wolt-food-clip).
	JSONVectors []string
	// ID is a column read as the point id (unsigned integer or UUID).
	ID string
	// Multi are list<list<float|double|half>> columns read as multi-dense
	// vectors; Sparse are (indices, values) list column pairs read as
	// sparse vectors. Neither is also payload: AllPayload leaves them out
	// and Payload may not name them.
	Multi  []string
	Sparse []pipeline.SparsePair
	// PayloadColumns promises that every Next is given a Row.PayloadTo:
	// flat scalar payload columns are then read by typed pages
	// (flatCursor), and Row.Payload is never filled.
	PayloadColumns bool
}

// Row is one decoded row.
type Row struct {
	Payload map[string]any
	Vectors map[string][]float32
	// Multi holds each multivector column's token vectors, flattened
	// (MultiWidth components per token).
	Multi  map[string][]float32
	Sparse map[pipeline.SparsePair]Sparse
	ID     pipeline.PointID
	// PayloadTo, if set, receives the payload (its values in the order of
	// Reader.PayloadKeys()) instead of Payload.
	PayloadTo *pipeline.PayloadBuilder
	// AppendVectors makes Next append each list-column vector to the
	// slice already in Vectors instead of replacing it: a caller filling
	// a block of rows gets them in place, with no copy.
	AppendVectors bool
}

// Reader streams selected columns row by row from a start row.
type Reader struct {
	f        *File
	names    []string // payload names
	fields   []field
	vecNames []string
	vecs     []*list
	// jsonNames/jsonVecs are string columns holding JSON arrays.
	jsonNames []string
	jsonVecs  []field
	idField   field
	needCols  []int
	ncols     int
	maxRep    []int
	// vecOnly marks columns read only as vectors: decoded straight into
	// float32 rows, without building parquet.Value slices per row.
	vecOnly map[int]bool

	multiNames []string
	multis     []*nested
	multiWidth map[string]int
	sparse     []*sparseCols

	// typedCols are the vector-only list<float|double> columns read by
	// typed pages (typedCursor); typed holds their cursors.
	typedCols map[int]bool
	typed     map[int]*typedCursor
	// flatCols are the flat scalar payload columns read by typed pages
	// (Selection.PayloadColumns), each with its payload field's index.
	flatCols map[int]int
	// fieldFlat is this row group's flatCursor per payload field, nil for
	// a field not read by typed pages.
	fieldFlat []*flatCursor
	pre       ahead // rows whose flat payload ReadAhead has set
	// vecAhead is how many rows' vectors ReadVectorsAhead has read (Next
	// skips their typed columns); pattern is a row's repetition levels.
	vecAhead int
	pattern  []byte
	// ownPrev is each column's chunkPages of the last row group that had
	// one: the next reuses its buffers.
	ownPrev   map[int]*chunkPages
	valueCols []valueCol // this row group's value-read columns, in needCols order

	rg      int
	rgStart int64 // first row of the current row group
	cursors map[int]*cursor
	row     int64
	vals    [][]parquet.Value
}

// PayloadKeys names the payload columns in the order Next fills a
// Row.PayloadTo.
func (r *Reader) PayloadKeys() []string { return r.names }

// NewReader prepares to read sel from row start.
func (f *File) NewReader(sel Selection, start int64) (*Reader, error) {
	r := &Reader{f: f, row: start, ownPrev: map[int]*chunkPages{}}
	top := f.f.Schema().Fields()
	byName := map[string]int{}
	var allNames []string
	for i, n := range top {
		byName[n.Name()] = i
		allNames = append(allNames, n.Name())
	}
	need := func(name, role string) (parquet.Node, int, error) {
		i, ok := byName[name]
		if !ok {
			return nil, 0, fmt.Errorf("%s column %q is not in %s (columns: %s)", role, name, f.name, strings.Join(allNames, ", "))
		}
		col := 0
		for _, n := range top[:i] {
			col += skipLeaves(n)
		}
		return top[i], col, nil
	}
	vectorCol := func(n string) bool {
		if slices.Contains(sel.Multi, n) {
			return true
		}
		for _, p := range sel.Sparse {
			if p.Indices == n || p.Values == n {
				return true
			}
		}
		return false
	}
	var names []string
	if sel.AllPayload {
		for _, n := range allNames {
			if !slices.Contains(sel.Exclude, n) && !vectorCol(n) {
				names = append(names, n)
			}
		}
		for _, e := range sel.Exclude {
			if _, ok := byName[e]; !ok {
				return nil, fmt.Errorf("excluded column %q is not in %s (columns: %s)", e, f.name, strings.Join(allNames, ", "))
			}
		}
	} else {
		names = sel.Payload
	}
	for _, name := range names {
		if vectorCol(name) {
			return nil, fmt.Errorf("column %q of %s is read as a multivector or sparse vector; it cannot also be payload (remove it from points.payload.include)", name, f.name)
		}
		n, col, err := need(name, "payload")
		if err != nil {
			return nil, err
		}
		fl, err := plan(n, name, &col, 0)
		if err != nil {
			return nil, err
		}
		f.fixHalf(fl)
		r.names = append(r.names, name)
		r.fields = append(r.fields, fl)
	}
	for _, name := range sel.Vectors {
		n, col, err := need(name, "vector")
		if err != nil {
			return nil, err
		}
		fl, err := plan(n, name, &col, 0)
		if err != nil {
			return nil, err
		}
		if slices.Contains(sel.JSONVectors, name) {
			if p, ok := fl.(*prim); !ok || n.Type().Kind() != parquet.ByteArray {
				return nil, fmt.Errorf("vector column %q in %s is %v, not a string of JSON arrays", name, f.name, n.Type())
			} else {
				r.jsonNames = append(r.jsonNames, name)
				r.jsonVecs = append(r.jsonVecs, p)
				continue
			}
		}
		l, ok := fl.(*list)
		if !ok {
			return nil, fmt.Errorf("vector column %q in %s is %v, not a list of floats", name, f.name, n.Type())
		}
		r.vecNames = append(r.vecNames, name)
		r.vecs = append(r.vecs, l)
	}
	if sel.ID != "" {
		n, col, err := need(sel.ID, "id")
		if err != nil {
			return nil, err
		}
		fl, err := plan(n, sel.ID, &col, 0)
		if err != nil {
			return nil, err
		}
		f.fixHalf(fl)
		r.idField = fl
	}
	r.multiWidth = map[string]int{}
	for _, name := range sel.Multi {
		lv, err := r.planNested(name, "multivector", 2, (*nested).floats, "a list of lists of float, double or half (list<list<float>>)")
		if err != nil {
			return nil, err
		}
		r.multiNames = append(r.multiNames, name)
		r.multis = append(r.multis, lv)
	}
	for _, p := range sel.Sparse {
		idx, err := r.planNested(p.Indices, "sparse indices", 1, (*nested).ints, "a list of integers (list<uint32|int32|int64>)")
		if err != nil {
			return nil, err
		}
		val, err := r.planNested(p.Values, "sparse values", 1, (*nested).floats, "a list of float, double or half")
		if err != nil {
			return nil, err
		}
		if idx.col == val.col {
			return nil, fmt.Errorf("sparse vector: indices and values name the same column %q", p.Indices)
		}
		r.sparse = append(r.sparse, &sparseCols{pair: p, idx: idx, val: val})
	}
	set := map[int]bool{}
	for _, fl := range r.fields {
		for _, c := range fl.leaves() {
			set[c] = true
		}
	}
	for _, l := range r.vecs {
		set[l.col] = true
	}
	for _, j := range r.jsonVecs {
		for _, c := range j.leaves() {
			set[c] = true
		}
	}
	if r.idField != nil {
		for _, c := range r.idField.leaves() {
			set[c] = true
		}
	}
	r.vecOnly = map[int]bool{}
	for _, l := range r.vecs {
		r.vecOnly[l.col] = true
	}
	for _, fl := range append(slices.Clone(r.fields), r.jsonVecs...) {
		for _, c := range fl.leaves() {
			delete(r.vecOnly, c)
		}
	}
	if r.idField != nil {
		for _, c := range r.idField.leaves() {
			delete(r.vecOnly, c)
		}
	}
	// Multivector and sparse columns are read straight from their cursors
	// (never payload or id: see Selection).
	direct := map[int]bool{}
	for _, lv := range r.multis {
		direct[lv.col] = true
	}
	for _, sc := range r.sparse {
		direct[sc.idx.col], direct[sc.val.col] = true, true
	}
	for c := range direct {
		if set[c] && !r.vecOnly[c] {
			return nil, fmt.Errorf("a column of %s is read both as a multivector or sparse vector and as another vector, payload or id", f.name)
		}
		set[c], r.vecOnly[c] = true, true
	}
	for c := range set {
		r.needCols = append(r.needCols, c)
	}
	slices.Sort(r.needCols)
	r.ncols = len(f.f.Schema().Columns())
	r.maxRep = make([]int, r.ncols)
	r.typedCols = map[int]bool{}
	for i, path := range f.f.Schema().Columns() {
		if lc, ok := f.f.Schema().Lookup(path...); ok {
			r.maxRep[i] = lc.MaxRepetitionLevel
			if k := lc.Node.Type().Kind(); (k == parquet.Float || k == parquet.Double) && lc.MaxRepetitionLevel == 1 {
				r.typedCols[i] = true
			}
		}
	}
	for c := range r.typedCols {
		isVec := false
		for _, l := range r.vecs {
			isVec = isVec || l.col == c
		}
		if !isVec || !r.vecOnly[c] {
			delete(r.typedCols, c) // typed pages only for dense vector-only columns
		}
	}
	if sel.PayloadColumns {
		// A column read by typed pages must be read for this one payload
		// key only: not also as id, vector or a second key.
		uses := map[int]int{}
		for _, fl := range append(slices.Clone(r.fields), r.jsonVecs...) {
			for _, c := range fl.leaves() {
				uses[c]++
			}
		}
		if r.idField != nil {
			for _, c := range r.idField.leaves() {
				uses[c]++
			}
		}
		for _, l := range r.vecs {
			uses[l.col]++
		}
		r.flatCols = map[int]int{}
		for i, fl := range r.fields {
			if p, ok := fl.(*prim); ok && p.fast != fastNone && p.fast != fastBool && r.maxRep[p.col] == 0 && uses[p.col] == 1 {
				r.flatCols[p.col] = i
			}
		}
	}
	r.vals = make([][]parquet.Value, r.ncols)
	// Find the row group holding start.
	r.rg = 0
	for r.rg < len(f.f.RowGroups()) && r.rgStart+f.f.RowGroups()[r.rg].NumRows() <= start {
		r.rgStart += f.f.RowGroups()[r.rg].NumRows()
		r.rg++
	}
	return r, nil
}

// cursor reads one leaf column's values row by row.
type cursor struct {
	// flat columns hold one value per row (max repetition level 0): a
	// row's value is used before the cursor moves, so it needs no copy.
	flat  bool
	pages parquet.Pages
	vr    parquet.ValueReader
	buf   []parquet.Value
	i, n  int
	eof   bool
}

func (c *cursor) fill() error {
	for c.i >= c.n {
		if c.eof {
			return io.EOF
		}
		if c.vr == nil {
			p, err := c.pages.ReadPage()
			if err == io.EOF {
				c.eof = true
				return io.EOF
			}
			if err != nil {
				return err
			}
			c.vr = p.Values()
		}
		c.buf = c.buf[:cap(c.buf)]
		n, err := c.vr.ReadValues(c.buf)
		c.i, c.n = 0, n
		if err == io.EOF {
			c.vr = nil
		} else if err != nil {
			return err
		}
	}
	return nil
}

// next appends the values of the next row to dst.
func (c *cursor) next(dst []parquet.Value) ([]parquet.Value, error) {
	if err := c.fill(); err != nil {
		return dst, err
	}
	if c.flat {
		dst = append(dst, c.buf[c.i])
		c.i++
		return dst, nil
	}
	dst = append(dst, c.buf[c.i].Clone())
	c.i++
	for {
		if err := c.fill(); err != nil {
			if err == io.EOF {
				return dst, nil
			}
			return dst, err
		}
		if c.buf[c.i].RepetitionLevel() == 0 {
			return dst, nil
		}
		dst = append(dst, c.buf[c.i].Clone())
		c.i++
	}
}

var (
	errNullVector  = errors.New("null or empty vector")
	errNullElement = errors.New("null vector element")
	errNotFloat    = errors.New("not a float column")
)

// nextFloats appends the next row of a list<float|double> column to dst,
// reading the cursor's values in place.
func (c *cursor) nextFloats(dst []float32, dRep, maxDef int) ([]float32, error) {
	if err := c.fill(); err != nil {
		return dst, err
	}
	for first := true; ; first = false {
		v := &c.buf[c.i]
		if !first && v.RepetitionLevel() == 0 {
			return dst, nil
		}
		if d := v.DefinitionLevel(); d < maxDef || v.IsNull() {
			if first && d < dRep {
				return dst, errNullVector
			}
			return dst, errNullElement
		}
		switch v.Kind() {
		case parquet.Float:
			dst = append(dst, v.Float())
		case parquet.Double:
			dst = append(dst, float32(v.Double()))
		default:
			f, ok := floatOf(v)
			if !ok {
				return dst, errNotFloat
			}
			dst = append(dst, f)
		}
		c.i++
		if err := c.fill(); err != nil {
			if err == io.EOF {
				return dst, nil
			}
			return dst, err
		}
	}
}

func (r *Reader) openRowGroup() error {
	rg := r.f.f.RowGroups()[r.rg]
	r.cursors = map[int]*cursor{}
	r.typed = map[int]*typedCursor{}
	r.fieldFlat = make([]*flatCursor, len(r.fields))
	r.valueCols = r.valueCols[:0]
	chunks := rg.ColumnChunks()
	for _, c := range r.needCols {
		if r.typedCols[c] && r.row == r.rgStart && useOwnPages {
			if own, ok := r.f.ownChunk(r.rg, c, r.ownPrev[c]); ok {
				r.typed[c] = &typedCursor{own: own, maxDef: own.maxDef}
				r.ownPrev[c] = own
				continue
			}
		}
		pages := chunks[c].Pages()
		if skip := r.row - r.rgStart; skip > 0 {
			if err := pages.SeekToRow(skip); err != nil {
				pages.Close()
				return fmt.Errorf("seek to row %d: %w", r.row, err)
			}
		}
		if r.typedCols[c] {
			r.typed[c] = &typedCursor{pageReader: pageReader{pages: pages}}
			continue
		}
		if i, ok := r.flatCols[c]; ok {
			r.fieldFlat[i] = &flatCursor{pageReader: pageReader{pages: pages}, p: r.fields[i].(*prim)}
			continue
		}
		r.cursors[c] = &cursor{pages: pages, buf: make([]parquet.Value, 0, 1024), flat: r.maxRep[c] == 0}
		if !r.vecOnly[c] {
			r.valueCols = append(r.valueCols, valueCol{c, r.cursors[c]})
		}
	}
	return nil
}

// valueCol is a column read as parquet values every row (payload, id),
// with its cursor: the row loop walks a slice, no map lookups.
type valueCol struct {
	col int
	cur *cursor
}

func (r *Reader) closeRowGroup() {
	for _, c := range r.cursors {
		c.pages.Close()
	}
	for _, c := range r.typed {
		c.close()
	}
	for _, c := range r.fieldFlat {
		if c != nil {
			c.close()
		}
	}
	r.cursors, r.typed, r.fieldFlat = nil, nil, nil
}

// Close releases page readers.
func (r *Reader) Close() error {
	r.closeRowGroup()
	return nil
}

// enterRowGroup moves to the row group holding the next row, opening its
// column chunks, and returns how many of its rows are left (io.EOF after
// the last row of the file).
func (r *Reader) enterRowGroup() (int64, error) {
	for {
		if r.rg >= len(r.f.f.RowGroups()) {
			return 0, io.EOF
		}
		if end := r.rgStart + r.f.f.RowGroups()[r.rg].NumRows(); r.row < end {
			if r.cursors == nil && r.typed == nil && r.fieldFlat == nil {
				if err := r.openRowGroup(); err != nil {
					return 0, err
				}
			}
			return end - r.row, nil
		}
		r.closeRowGroup()
		r.rgStart += r.f.f.RowGroups()[r.rg].NumRows()
		r.rg++
	}
}

// PayloadOnly reports whether the reader reads payload columns and
// nothing else (no id, vectors, multivectors or sparse vectors), the
// readers ReadPayloads serves.
func (r *Reader) PayloadOnly() bool {
	return len(r.fields) > 0 && r.idField == nil && len(r.vecs) == 0 && len(r.jsonVecs) == 0 && len(r.multis) == 0 && len(r.sparse) == 0
}

// ahead is what ReadAhead did: the flat payload columns of the next n
// rows are set in b, from index first on.
type ahead struct {
	b           *pipeline.PayloadBuilder
	first, n, i int // rows set, rows Next has taken since
}

// HasFlatPayload reports whether ReadAhead has columns to read: flat
// scalar payload columns (the Selection has PayloadColumns).
func (r *Reader) HasFlatPayload() bool { return len(r.flatCols) > 0 }

// ReadAhead appends up to n rows to b (at most to the end of the row
// group) and sets their flat scalar payload columns, column by column: a
// column's page rows in one loop instead of one call per row and value.
// The next calls of Next, as many as it returns and each with
// Row.PayloadTo b, fill in the rest of those rows. It returns io.EOF after
// the last row.
func (r *Reader) ReadAhead(n int, b *pipeline.PayloadBuilder) (int, error) {
	if r.pre.i < r.pre.n {
		return 0, errors.New("internal: ReadAhead before Next took the rows read ahead")
	}
	left, err := r.enterRowGroup()
	if err != nil {
		return 0, err
	}
	m := int(min(int64(n), left))
	first, nk := b.Grow(m), len(r.fields)
	for i, fc := range r.fieldFlat {
		if fc == nil {
			continue
		}
		if j, err := fc.putN(b, first+i, nk, m); err != nil {
			if err == io.EOF {
				return 0, fmt.Errorf("row %d: column chunk %d ended early", r.row+int64(j), r.fields[i].(*prim).col)
			}
			return 0, fmt.Errorf("row %d: payload column %q: %w", r.row+int64(j), r.names[i], err)
		}
	}
	r.pre = ahead{b: b, first: first, n: m}
	return m, nil
}

// rowPayload adds this row's payload to b: the columns ReadAhead has not
// set, at the row's place when it read ahead; all of them, appended,
// when it did not.
func (r *Reader) rowPayload(b *pipeline.PayloadBuilder) error {
	if r.pre.i < r.pre.n {
		if b != r.pre.b {
			return errors.New("internal: a row read ahead is asked for into another builder")
		}
		at := r.pre.first + r.pre.i*len(r.fields)
		r.pre.i++
		for i, fl := range r.fields {
			switch p, ok := fl.(*prim); {
			case r.fieldFlat[i] != nil:
			case ok:
				p.set(b, at+i, r.vals)
			default:
				v, err := fl.build(r.vals)
				if err != nil {
					return fmt.Errorf("row %d: %w", r.row, err)
				}
				b.SetAny(at+i, v)
			}
		}
		return nil
	}
	for i, fl := range r.fields {
		if p, ok := fl.(*prim); ok {
			if fc := r.fieldFlat[i]; fc != nil {
				if err := fc.put(b); err != nil {
					if err == io.EOF {
						return fmt.Errorf("row %d: column chunk %d ended early", r.row, p.col)
					}
					return fmt.Errorf("row %d: payload column %q: %w", r.row, r.names[i], err)
				}
				continue
			}
			p.put(b, r.vals)
			continue
		}
		v, err := fl.build(r.vals)
		if err != nil {
			return fmt.Errorf("row %d: %w", r.row, err)
		}
		b.AddAny(v)
	}
	return nil
}

// ReadPayloads is Next for n rows at once, for a PayloadOnly reader whose
// Selection has PayloadColumns: the flat scalar columns by ReadAhead, the
// others (if any) row by row. It returns the rows read: n, fewer only at
// the end of the file, and io.EOF when no row was left.
func (r *Reader) ReadPayloads(n int, b *pipeline.PayloadBuilder) (int, error) {
	if !r.PayloadOnly() || r.flatCols == nil {
		return 0, errors.New("internal: ReadPayloads needs a payload-only reader with PayloadColumns")
	}
	done := 0
	for done < n {
		m, err := r.ReadAhead(n-done, b)
		if err == io.EOF && done > 0 {
			return done, nil
		}
		if err != nil {
			return done, err
		}
		if len(r.valueCols) == 0 { // every column was read ahead
			r.row += int64(m)
			r.pre.i = r.pre.n
		} else {
			row := Row{PayloadTo: b}
			for j := 0; j < m; j++ {
				if err := r.Next(&row); err != nil {
					return done + j, err
				}
			}
		}
		done += m
	}
	return done, nil
}

// Next decodes the next row into row. It returns io.EOF after the last.
func (r *Reader) Next(row *Row) error {
	if _, err := r.enterRowGroup(); err != nil {
		return err
	}
	for _, vc := range r.valueCols {
		c := vc.col
		v, err := vc.cur.next(r.vals[c][:0])
		if err != nil {
			if err == io.EOF {
				return fmt.Errorf("row %d: column chunk %d ended early", r.row, c)
			}
			return fmt.Errorf("row %d: %w", r.row, err)
		}
		r.vals[c] = v
	}
	if len(r.fields) > 0 && row.PayloadTo != nil {
		if err := r.rowPayload(row.PayloadTo); err != nil {
			return err
		}
	} else if len(r.fields) > 0 {
		if len(r.flatCols) > 0 {
			return errors.New("internal: a reader for payload columns was asked for a payload map")
		}
		row.Payload = make(map[string]any, len(r.fields))
		for i, fl := range r.fields {
			v, err := fl.build(r.vals)
			if err != nil {
				return fmt.Errorf("row %d: %w", r.row, err)
			}
			row.Payload[r.names[i]] = v
		}
	}
	if len(r.vecs) > 0 {
		if row.Vectors == nil {
			row.Vectors = map[string][]float32{}
		}
		for i, l := range r.vecs {
			if r.vecAhead > 0 && r.typed[l.col] != nil {
				continue // read ahead (ReadVectorsAhead)
			}
			if r.vecOnly[l.col] {
				var dst []float32
				var err error
				into := row.Vectors[r.vecNames[i]]
				if !row.AppendVectors {
					into = into[:0]
				}
				if tc := r.typed[l.col]; tc != nil {
					dst, err = tc.nextFloats(into, l.dRep, l.maxDef)
				} else {
					dst, err = r.cursors[l.col].nextFloats(into, l.dRep, l.maxDef)
				}
				if err != nil {
					return vectorErr(err, r.row, r.vecNames[i], l.col)
				}
				row.Vectors[r.vecNames[i]] = dst
				continue
			}
			vs := r.vals[l.col]
			if len(vs) == 1 && vs[0].DefinitionLevel() < l.dRep {
				return fmt.Errorf("row %d: vector column %q is null or empty", r.row, r.vecNames[i])
			}
			dst := row.Vectors[r.vecNames[i]]
			if !row.AppendVectors {
				dst = dst[:0]
			}
			for _, v := range vs {
				if v.DefinitionLevel() < l.maxDef || v.IsNull() {
					return fmt.Errorf("row %d: vector column %q has a null element", r.row, r.vecNames[i])
				}
				f, ok := floatOf(&v)
				if !ok {
					return fmt.Errorf("row %d: vector column %q holds %v, not floats", r.row, r.vecNames[i], v.Kind())
				}
				dst = append(dst, f)
			}
			row.Vectors[r.vecNames[i]] = dst
		}
	}
	if len(r.jsonVecs) > 0 {
		if row.Vectors == nil {
			row.Vectors = map[string][]float32{}
		}
		for i, j := range r.jsonVecs {
			v, err := j.build(r.vals)
			if err != nil {
				return fmt.Errorf("row %d: %w", r.row, err)
			}
			s, ok := v.(string)
			if !ok || s == "" {
				return fmt.Errorf("row %d: vector column %q is null or empty", r.row, r.jsonNames[i])
			}
			into := row.Vectors[r.jsonNames[i]]
			if !row.AppendVectors {
				into = into[:0]
			}
			dst, err := parseJSONFloats(into, s)
			if err != nil {
				return fmt.Errorf("row %d: vector column %q: %w", r.row, r.jsonNames[i], err)
			}
			row.Vectors[r.jsonNames[i]] = dst
		}
	}
	if len(r.multis) > 0 {
		if row.Multi == nil {
			row.Multi = map[string][]float32{}
		}
		for i, lv := range r.multis {
			name := r.multiNames[i]
			w := r.multiWidth[name]
			dst, err := r.cursors[lv.col].nextMulti(row.Multi[name][:0], lv, &w)
			if err != nil {
				if err == io.EOF {
					return fmt.Errorf("row %d: column chunk %d ended early", r.row, lv.col)
				}
				return fmt.Errorf("row %d: multivector column %q %w", r.row, name, err)
			}
			r.multiWidth[name] = w
			row.Multi[name] = dst
		}
	}
	if len(r.sparse) > 0 {
		if row.Sparse == nil {
			row.Sparse = map[pipeline.SparsePair]Sparse{}
		}
		for _, sc := range r.sparse {
			sv, err := r.nextSparse(sc, row.Sparse[sc.pair])
			if err != nil {
				if err == io.EOF {
					return fmt.Errorf("row %d: sparse columns %q/%q ended early", r.row, sc.pair.Indices, sc.pair.Values)
				}
				return fmt.Errorf("row %d: %w", r.row, err)
			}
			row.Sparse[sc.pair] = sv
		}
	}
	if r.idField != nil {
		v, err := r.idField.build(r.vals)
		if err != nil {
			return err
		}
		id, err := PointID(v)
		if err != nil {
			return fmt.Errorf("row %d: %w", r.row, err)
		}
		row.ID = id
	}
	r.row++
	if r.vecAhead > 0 {
		r.vecAhead--
	}
	return nil
}

// vectorErr names what is wrong with row's vector column name (leaf
// column col).
func vectorErr(err error, row int64, name string, col int) error {
	var we *widthError
	switch {
	case errors.Is(err, errNullVector):
		return fmt.Errorf("row %d: vector column %q is null or empty", row, name)
	case errors.Is(err, errNullElement):
		return fmt.Errorf("row %d: vector column %q has a null element", row, name)
	case errors.Is(err, errNotFloat):
		return fmt.Errorf("row %d: vector column %q does not hold floats", row, name)
	case errors.As(err, &we):
		return fmt.Errorf("row %d: vector column %q has %w", row, name, we)
	case err == io.EOF:
		return fmt.Errorf("row %d: column chunk %d ended early", row, col)
	}
	return fmt.Errorf("row %d: %w", row, err)
}

// TypedVectors reports whether every vector column (none read as JSON
// text) is read by typed pages, so ReadVectorsAhead reads them all.
func (r *Reader) TypedVectors() bool {
	if len(r.vecs) == 0 || len(r.jsonVecs) > 0 {
		return false
	}
	for _, l := range r.vecs {
		if !r.typedCols[l.col] {
			return false
		}
	}
	return true
}

// LendsVectors reports whether ReadVectorsLent can read the vector
// columns: every one is read by typed pages, nothing else needs Next
// (rows are read ahead whole), and the host is little-endian (runs hold
// the values in the file's byte order).
func (r *Reader) LendsVectors() bool {
	return r.TypedVectors() && !r.NeedsNext() && littleEndian
}

// RowsInGroup returns how many rows are left in the row group holding
// the next row (io.EOF after the last row): the most ReadAhead and
// ReadVectorsAhead read at once.
func (r *Reader) RowsInGroup() (int64, error) { return r.enterRowGroup() }

// ReadVectorsAhead appends the next m rows (at most RowsInGroup) of
// every vector column to dst[name], column by column, each row widths[name]
// values: a page's rows in one check and copy instead of one call per
// row (TypedVectors must hold). The next m calls of Next leave those
// columns alone, or SkipAhead passes the rows when Next has nothing
// left to read (NeedsNext). When nonFinite is not nil, it looks for NaN
// and ±Inf as it copies: nonFinite[name], if -1, becomes the index in
// dst[name] of the first it appended.
func (r *Reader) ReadVectorsAhead(m int, dst map[string][]float32, widths map[string]int, nonFinite map[string]int) error {
	return r.readAhead(m, widths, func(name string, tc *typedCursor, w, dRep, maxDef int) (int, error) {
		var got, bad int
		var err error
		dst[name], got, bad, err = tc.readRows(dst[name], m, w, dRep, maxDef, r.pattern)
		if err == nil && nonFinite != nil && bad >= 0 && nonFinite[name] < 0 {
			nonFinite[name] = bad
		}
		return got, err
	})
}

// ReadVectorsLent is ReadVectorsAhead for a block that borrows its rows:
// each vector column's next m rows are added to runs[name] (whole rows
// of a page as the page's own bytes, little-endian float32, the rest
// copied to own[name], the block's buffer, which must have room for
// them), and lent holds each page buffer rows are borrowed from, until
// the block is released (Lent.Release). LendsVectors must hold.
func (r *Reader) ReadVectorsLent(m int, runs map[string]*pipeline.Runs, own map[string]*[]byte, widths map[string]int, nonFinite map[string]int, lent *Lent) error {
	if !r.LendsVectors() {
		return errors.New("internal: ReadVectorsLent where LendsVectors is false")
	}
	return r.readAhead(m, widths, func(name string, tc *typedCursor, w, dRep, maxDef int) (int, error) {
		before := runs[name].Rows() * w
		got, bad, err := tc.readRowsLent(runs[name], own[name], m, w, dRep, maxDef, r.pattern, lent.keep)
		if err == nil && nonFinite != nil && bad >= 0 && nonFinite[name] < 0 {
			nonFinite[name] = before + bad
		}
		return got, err
	})
}

// readAhead reads the next m rows (at most RowsInGroup) of every vector
// column with read, given the column's typed cursor and width (r.pattern
// is set for it), which returns the rows it read; then Next leaves those
// columns alone for m rows.
func (r *Reader) readAhead(m int, widths map[string]int, read func(name string, tc *typedCursor, w, dRep, maxDef int) (int, error)) error {
	if r.vecAhead > 0 {
		return errors.New("internal: vectors read ahead before Next took the rows read ahead")
	}
	left, err := r.enterRowGroup()
	if err != nil {
		return err
	}
	if int64(m) > left {
		return errors.New("internal: vectors read ahead past the row group")
	}
	for i, l := range r.vecs {
		name, tc := r.vecNames[i], r.typed[l.col]
		if tc == nil {
			return errors.New("internal: vectors read ahead of a column not read by typed pages")
		}
		w := widths[name]
		if len(r.pattern) != w {
			r.pattern = make([]byte, w)
			for j := 1; j < w; j++ {
				r.pattern[j] = 1
			}
		}
		if got, err := read(name, tc, w, l.dRep, l.maxDef); err != nil {
			return vectorErr(err, r.row+int64(got), name, l.col)
		}
	}
	r.vecAhead = m
	return nil
}

// Lent holds the page buffers a block borrows rows from.
type Lent struct{ mems []*pageMem }

func (l *Lent) keep(m *pageMem) {
	if m == nil || slices.Contains(l.mems, m) {
		return // none, or already held
	}
	m.ref()
	l.mems = append(l.mems, m)
}

// Release gives the buffers back; the rows borrowed from them must not
// be used afterwards.
func (l *Lent) Release() {
	for _, m := range l.mems {
		m.unref()
	}
	l.mems = l.mems[:0]
}

// NeedsNext reports whether rows whose flat payload and vectors were
// read ahead still need Next: for the id, payload columns not read
// ahead, multivector or sparse columns.
func (r *Reader) NeedsNext() bool {
	return len(r.valueCols) > 0 || len(r.multis) > 0 || len(r.sparse) > 0 || !r.TypedVectors()
}

// SkipAhead passes the next m rows, every column of which was read
// ahead (NeedsNext is false).
func (r *Reader) SkipAhead(m int) {
	r.row += int64(m)
	r.pre.i = r.pre.n
	r.vecAhead = 0
}

// ErrBadID means an id column value is neither an unsigned integer nor a UUID.
var ErrBadID = errors.New("id must be an unsigned integer or a UUID")

// PointID turns an id column value into a point id.
func PointID(v any) (pipeline.PointID, error) {
	switch k := v.(type) {
	case int64:
		if k < 0 {
			return pipeline.PointID{}, fmt.Errorf("id %d: %w", k, ErrBadID)
		}
		return pipeline.PointID{Num: uint64(k)}, nil
	case uint64:
		return pipeline.PointID{Num: k}, nil
	case string:
		s := strings.TrimSpace(k)
		if u, err := strconv.ParseUint(s, 10, 64); err == nil {
			return pipeline.PointID{Num: u}, nil
		}
		if id, err := uuid.Parse(s); err == nil {
			return pipeline.PointID{UUID: id.String()}, nil
		}
		return pipeline.PointID{}, fmt.Errorf("id %q: %w", k, ErrBadID)
	case nil:
		return pipeline.PointID{}, fmt.Errorf("id is null: %w", ErrBadID)
	}
	return pipeline.PointID{}, fmt.Errorf("id %v: %w", v, ErrBadID)
}

// ColumnInfo is what `snappipe init` needs to know of a top-level column.
type ColumnInfo struct {
	Name string
	// Vector: a list of float, double or half; Width is the length of its
	// first rows, VaryingWidth set when they differ (then not a vector).
	Vector       bool
	Width        int
	VaryingWidth bool
	Half         bool
	// ID: an unsigned integer or UUID column (a point id candidate).
	ID bool
	// JSONVector: a string column whose first rows are JSON arrays of
	// numbers of one length (Width): a vector stored as text.
	JSONVector bool
	// Multi: a list<list<float|double|half>> column whose first rows read
	// as multivectors with token vectors of Width components.
	Multi bool
	// SparseValues is set on a list-of-integers column that pairs with a
	// list-of-floats column of the same stem (x_indices + x_values, ...) as
	// a sparse vector, checked on the first rows; SparsePart marks both.
	SparseValues string
	SparsePart   bool
}

// sparseStems are the suffix pairs init recognises as a sparse vector's
// indices and values columns (SPLADE/BM25 dumps: "sparse_indices" +
// "sparse_values", "indices" + "values", ...).
var sparseStems = [][2]string{{"indices", "values"}, {"idx", "val"}, {"idx", "vals"}, {"ids", "weights"}, {"indices", "weights"}, {"index", "value"}}

// sparseStem returns a column name without a recognised suffix, and which.
func sparseStem(name string, second bool) (string, bool) {
	for _, p := range sparseStems {
		suf := p[0]
		if second {
			suf = p[1]
		}
		for _, sep := range []string{"_", ".", "-", ""} {
			if strings.HasSuffix(name, sep+suf) {
				return strings.TrimSuffix(name, sep+suf) + "|" + p[0], true
			}
		}
	}
	return "", false
}

// Inspect classifies the top-level columns, reading the first rows of
// list columns for their widths.
func (f *File) Inspect() ([]ColumnInfo, error) {
	var out []ColumnInfo
	leaf := 0
	for _, n := range f.f.Schema().Fields() {
		ci := ColumnInfo{Name: n.Name()}
		elem := listElem(n)
		first := leaf
		leaf += skipLeaves(n)
		if elem != nil && elem.Leaf() {
			t := elem.Type()
			half := f.half[first]
			if lt := t.LogicalType(); lt != nil {
				if _, ok := lt.Value.(*format.Float16Type); ok {
					half = true
				}
			}
			if t.Kind() == parquet.Float || t.Kind() == parquet.Double || half {
				ci.Vector, ci.Half = true, half
			}
		}
		if n.Leaf() && !n.Repeated() {
			if lt := n.Type().LogicalType(); lt != nil {
				switch v := lt.Value.(type) {
				case *format.IntType:
					ci.ID = !v.IsSigned
				case *format.UUIDType:
					ci.ID = true
				}
			}
		}
		out = append(out, ci)
	}
	for i, n := range f.f.Schema().Fields() {
		if !n.Leaf() || n.Repeated() || n.Type().Kind() != parquet.ByteArray {
			continue
		}
		if name := n.Name(); name == "id" || name == "_id" || name == "uid" {
			// A text id column: an id when its first rows read as unsigned
			// integers or UUIDs (DataComp's uid: 32 hex digits).
			if rows, err := f.firstRows(Selection{Payload: []string{name}}, 16); err == nil && len(rows) > 0 {
				ok := true
				for _, row := range rows {
					if _, err := PointID(row.Payload[name]); err != nil {
						ok = false
					}
				}
				out[i].ID = ok
			}
		}
		r, err := f.NewReader(Selection{Payload: []string{n.Name()}}, 0)
		if err != nil {
			continue
		}
		var row Row
		ok, width := true, -1
		for k := 0; k < 4 && ok; k++ {
			if err := r.Next(&row); err != nil {
				break
			}
			s, isStr := row.Payload[n.Name()].(string)
			v, err := parseJSONFloats(nil, s)
			switch {
			case !isStr || err != nil:
				ok = false
			case width >= 0 && len(v) != width:
				ok = false
			default:
				width = len(v)
			}
		}
		r.Close()
		if ok && width > 0 {
			out[i].JSONVector, out[i].Width = true, width
		}
	}
	col := 0
	intLists := map[string]int{}
	for i, n := range f.f.Schema().Fields() {
		if lv, ok := nestedList(n, col, 2); ok && (lv.floats() || f.half[col]) {
			if w, err := f.multiWidth(n.Name(), 16); err != nil {
				out[i].VaryingWidth = true // ragged or empty token vectors: reported, not guessed
			} else if w > 0 {
				out[i].Multi, out[i].Width = true, w
			}
		}
		if lv, ok := nestedList(n, col, 1); ok && lv.ints() {
			intLists[n.Name()] = i
		}
		col += skipLeaves(n)
	}
	for i := range out {
		if !out[i].Vector {
			continue
		}
		stem, ok := sparseStem(out[i].Name, true)
		if !ok {
			continue
		}
		for in, k := range intLists {
			if s, ok := sparseStem(in, false); !ok || s != stem || out[k].SparsePart {
				continue
			}
			pair := pipeline.SparsePair{Indices: in, Values: out[i].Name}
			if _, err := f.firstRows(Selection{Sparse: []pipeline.SparsePair{pair}}, 16); err == nil {
				out[k].SparseValues, out[k].SparsePart, out[i].SparsePart = out[i].Name, true, true
				out[i].Vector = false
			}
		}
	}
	for i := range out {
		if !out[i].Vector {
			continue
		}
		r, err := f.NewReader(Selection{Vectors: []string{out[i].Name}}, 0)
		if err != nil {
			out[i].Vector = false
			continue
		}
		var row Row
		for k := 0; k < 16; k++ {
			if err := r.Next(&row); err != nil {
				break
			}
			w := len(row.Vectors[out[i].Name])
			if k == 0 {
				out[i].Width = w
			} else if w != out[i].Width {
				out[i].VaryingWidth = true
			}
		}
		r.Close()
	}
	return out, nil
}

// multiWidth reads up to n rows of a multivector column and returns its
// token width (0 for a file without rows).
func (f *File) multiWidth(name string, n int) (int, error) {
	r, err := f.NewReader(Selection{Multi: []string{name}}, 0)
	if err != nil {
		return 0, err
	}
	defer r.Close()
	var row Row
	for k := 0; k < n; k++ {
		if err := r.Next(&row); err == io.EOF {
			break
		} else if err != nil {
			return 0, err
		}
	}
	return r.MultiWidth(name), nil
}

// firstRows reads up to n rows of sel from the start.
func (f *File) firstRows(sel Selection, n int) ([]Row, error) {
	r, err := f.NewReader(sel, 0)
	if err != nil {
		return nil, err
	}
	defer r.Close()
	var out []Row
	for k := 0; k < n; k++ {
		var row Row
		if err := r.Next(&row); err == io.EOF {
			break
		} else if err != nil {
			return out, err
		}
		out = append(out, row)
	}
	return out, nil
}

// listElem returns the element node of a LIST column (or a bare repeated
// leaf), nil for other columns.
func listElem(n parquet.Node) parquet.Node {
	if n.Leaf() && n.Repeated() {
		return n
	}
	lt := n.Type().LogicalType()
	if n.Leaf() || lt == nil || !isListType(lt) {
		return nil
	}
	kids := n.Fields()
	if len(kids) != 1 || !kids[0].Repeated() {
		return nil
	}
	rep := kids[0]
	if rep.Leaf() {
		return rep
	}
	if ek := rep.Fields(); len(ek) == 1 && ek[0].Leaf() {
		return ek[0]
	}
	return nil
}

// parseJSONFloats appends the numbers of a JSON array text ("[0.1, -2e-3]")
// to dst; anything else is an error.
func parseJSONFloats(dst []float32, s string) ([]float32, error) {
	s = strings.TrimSpace(s)
	if len(s) < 2 || s[0] != '[' || s[len(s)-1] != ']' {
		return dst, fmt.Errorf("not a JSON array of numbers")
	}
	body := strings.TrimSpace(s[1 : len(s)-1])
	if body == "" {
		return dst, fmt.Errorf("an empty JSON array")
	}
	for _, part := range strings.Split(body, ",") {
		f, err := strconv.ParseFloat(strings.TrimSpace(part), 32)
		if err != nil {
			return dst, fmt.Errorf("not a JSON array of numbers: %q", strings.TrimSpace(part))
		}
		dst = append(dst, float32(f))
	}
	return dst, nil
}
