// Package qvalue turns snappipe's plain payload values into go-client's
// types the slow, obvious way (go-client constructors). The upsert path
// never uses it (internal/wire encodes rows directly); tests and the
// benchmark's reference client do, as an independent reference.
package qvalue

import (
	"fmt"

	"github.com/qdrant/go-client/qdrant"
	"github.com/snappipe/snappipe/pipeline"
)

// Value converts one plain value (nil, bool, int64, float64, string,
// []any, map[string]any).
func Value(v any) *qdrant.Value {
	switch x := v.(type) {
	case nil:
		return qdrant.NewValueNull()
	case bool:
		return qdrant.NewValueBool(x)
	case int64:
		return qdrant.NewValueInt(x)
	case float64:
		return qdrant.NewValueDouble(x)
	case uint64: // only beyond int64 (pq): Qdrant's integers are int64
		return qdrant.NewValueDouble(float64(x))
	case string:
		return qdrant.NewValueString(x)
	case []any:
		items := make([]*qdrant.Value, len(x))
		for i, e := range x {
			items[i] = Value(e)
		}
		return qdrant.NewValueFromList(items...)
	case map[string]any:
		return qdrant.NewValueStruct(&qdrant.Struct{Fields: Payload(x)})
	}
	panic(fmt.Sprintf("qvalue: unexpected %T", v))
}

// Payload converts a payload map.
func Payload(m map[string]any) map[string]*qdrant.Value {
	if m == nil {
		return nil
	}
	out := make(map[string]*qdrant.Value, len(m))
	for k, v := range m {
		out[k] = Value(v)
	}
	return out
}

// ID converts a point id.
func ID(id pipeline.PointID) *qdrant.PointId {
	if id.UUID != "" {
		return qdrant.NewIDUUID(id.UUID)
	}
	return qdrant.NewIDNum(id.Num)
}
