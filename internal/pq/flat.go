package pq

import (
	"errors"
	"fmt"

	"github.com/parquet-go/parquet-go"
	"github.com/parquet-go/parquet-go/encoding"
	"github.com/snappipe/snappipe/pipeline"
)

// flatCursor reads a flat (not repeated) scalar payload column page by
// page as typed slices — the page's definition levels and its int32,
// int64, float, double or byte-array values, or their dictionary indexes
// — and adds each row's value to a PayloadBuilder, with no parquet.Value
// per row. It serves the column path (Row.PayloadTo) only.
type flatCursor struct {
	p      *prim
	pages  parquet.Pages
	page   parquet.Page
	defs   []byte // nil: required column, every row has a value
	rows   int    // rows in the page
	li, vi int    // next row, next value
	eof    bool

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
		p, err := nextPage(c.pages, &c.page, &c.eof)
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
	if err := c.fill(); err != nil {
		return err
	}
	row := c.li
	c.li++
	if c.defs != nil && int(c.defs[row]) < c.p.maxDef {
		b.Add(pipeline.Value{})
		return nil
	}
	if c.vi >= c.nvals {
		return errPageLayout // levels promise more values than the page holds
	}
	k := c.vi
	c.vi++
	if c.idx != nil {
		k = int(c.idx[k])
	}
	switch c.p.fast {
	case fastInt32:
		b.Add(pipeline.IntValue(int64(c.i32[k])))
	case fastInt64:
		b.Add(pipeline.IntValue(c.i64[k]))
	case fastFloat:
		b.Add(pipeline.FloatValue(float64(c.f32[k])))
	case fastDouble:
		b.Add(pipeline.FloatValue(c.f64[k]))
	case fastString:
		b.AddBytes(c.bytes[c.offs[k]:c.offs[k+1]])
	}
	return nil
}

func (c *flatCursor) close() {
	if c.page != nil {
		parquet.Release(c.page)
		c.page = nil
	}
	c.pages.Close()
}
