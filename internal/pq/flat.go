package pq

import (
	"errors"
	"fmt"

	"github.com/parquet-go/parquet-go/encoding"
	"github.com/snappipe/snappipe/pipeline"
)

// flatCursor reads a flat (not repeated) scalar payload column page by
// page as typed slices — the page's definition levels and its int32,
// int64, float, double or byte-array values, or their dictionary indexes
// — and adds each row's value to a PayloadBuilder, with no parquet.Value
// per row. It serves the column path (Row.PayloadTo) only.
type flatCursor struct {
	pageReader
	p      *prim
	defs   []byte // nil: required column, every row has a value
	rows   int    // rows in the page
	li, vi int    // next row, next value

	idx   []int32 // dictionary indexes, or nil
	i32   []int32
	i64   []int64
	f32   []float32
	f64   []float64
	bytes []byte
	offs  []uint32
	nvals int
}

var errPageLayout = errors.New("unexpected page layout")

// fill makes sure a row is available, reading pages as needed.
func (c *flatCursor) fill() error {
	for c.li >= c.rows {
		p, err := c.nextPage()
		if err != nil {
			return err
		}
		c.li, c.vi = 0, 0
		c.rows = int(p.NumRows())
		c.defs = p.DefinitionLevels()
		if c.defs != nil && len(c.defs) != c.rows {
			return errPageLayout
		}
		c.idx, c.i32, c.i64, c.f32, c.f64, c.bytes, c.offs = nil, nil, nil, nil, nil, nil, nil
		data := p.Data()
		if d := p.Dictionary(); d != nil {
			if data.Kind() != encoding.Int32 {
				return errPageLayout
			}
			c.idx = data.Int32()
			c.nvals = len(c.idx)
			data = d.Page().Data()
		}
		n, err := c.setValues(data)
		if err != nil {
			return err
		}
		if c.idx == nil {
			c.nvals = n
		} else {
			for _, k := range c.idx {
				if k < 0 || int(k) >= n {
					return fmt.Errorf("dictionary index %d out of range (%d entries)", k, n)
				}
			}
		}
		if c.defs == nil && c.nvals != c.rows {
			return errPageLayout
		}
	}
	return nil
}

// setValues takes the page's (or dictionary's) values for the column's
// kind and returns how many there are.
func (c *flatCursor) setValues(data encoding.Values) (int, error) {
	switch c.p.fast {
	case fastInt32:
		if data.Kind() == encoding.Int32 {
			c.i32 = data.Int32()
			return len(c.i32), nil
		}
	case fastInt64:
		if data.Kind() == encoding.Int64 {
			c.i64 = data.Int64()
			return len(c.i64), nil
		}
	case fastFloat:
		if data.Kind() == encoding.Float {
			c.f32 = data.Float()
			return len(c.f32), nil
		}
	case fastDouble:
		if data.Kind() == encoding.Double {
			c.f64 = data.Double()
			return len(c.f64), nil
		}
	case fastString:
		if data.Kind() == encoding.ByteArray {
			c.bytes, c.offs = data.ByteArray()
			n := len(c.offs) - 1
			if n < 0 {
				n = 0
			}
			for i := 0; i < n; i++ {
				if c.offs[i] > c.offs[i+1] || int(c.offs[i+1]) > len(c.bytes) {
					return 0, errPageLayout
				}
			}
			return n, nil
		}
	}
	return 0, errPageLayout
}

// put adds the next row's value to b.
func (c *flatCursor) put(b *pipeline.PayloadBuilder) error {
	b.Add(pipeline.Value{})
	_, err := c.putN(b, b.Len()-1, 0, 1)
	return err
}

// putN sets the values of the next m rows, the first at index at of b
// and each next one stride further (Nulls there before: see
// PayloadBuilder.Grow), a page's rows in one loop, with no call per
// value. It returns how many rows it set, m unless there is an error.
func (c *flatCursor) putN(b *pipeline.PayloadBuilder, at, stride, m int) (int, error) {
	done := 0
	for done < m {
		if err := c.fill(); err != nil {
			return done, err
		}
		k := min(m-done, c.rows-c.li)
		// Which rows have a value: all, or those whose definition level
		// is the column's maximum. The page must hold that many values.
		present := k
		if c.defs != nil {
			present = 0
			for _, d := range c.defs[c.li : c.li+k] {
				if int(d) >= c.p.maxDef {
					present++
				}
			}
		}
		if c.vi+present > c.nvals {
			return done, errPageLayout // levels promise more values than the page holds
		}
		defs := c.defs
		li, vi := c.li, c.vi
		for j := 0; j < k; j, li, at = j+1, li+1, at+stride {
			if defs != nil && int(defs[li]) < c.p.maxDef {
				continue // Null, as Grow left it
			}
			x := vi
			vi++
			if c.idx != nil {
				x = int(c.idx[x])
			}
			switch c.p.fast {
			case fastInt32:
				b.Set(at, pipeline.IntValue(int64(c.i32[x])))
			case fastInt64:
				b.Set(at, pipeline.IntValue(c.i64[x]))
			case fastFloat:
				b.Set(at, pipeline.FloatValue(float64(c.f32[x])))
			case fastDouble:
				b.Set(at, pipeline.FloatValue(c.f64[x]))
			case fastString:
				b.SetBytes(at, c.bytes[c.offs[x]:c.offs[x+1]])
			}
		}
		c.li, c.vi = li, vi
		done += k
	}
	return done, nil
}
