package config

import (
	"encoding/json"
	"reflect"
	"strconv"
	"strings"
)

// SchemaID is the $id of the generated JSON Schema.
const SchemaID = "https://github.com/snappipe/snappipe/schema/snappipe.schema.json"

// JSONSchema generates the draft-07 JSON Schema of the config file from the
// Go types: the same yaml, doc, enum, default and snappipe:"required" tags
// that drive decoding, so the two cannot drift apart.
func JSONSchema() ([]byte, error) {
	root := schemaOf(reflect.TypeOf(Config{}), "")
	root["$schema"] = "http://json-schema.org/draft-07/schema#"
	root["$id"] = SchemaID
	root["title"] = "snappipe pipeline"
	root["description"] = "A snappipe pipeline: sources -> Qdrant collection -> snapshot file. Values may use ${VAR}, ${VAR:-default} and ${VAR:?message}."
	b, err := json.MarshalIndent(root, "", "  ")
	if err != nil {
		return nil, err
	}
	return append(b, '\n'), nil
}

// varPattern matches a value that is (or contains) a ${VAR} reference, which
// is valid wherever a number or boolean is expected.
const varPattern = `\$\{[A-Za-z_][A-Za-z0-9_]*(:[-?][^}]*)?\}`

func withVar(s map[string]any) map[string]any {
	return map[string]any{"anyOf": []any{s, map[string]any{"type": "string", "pattern": varPattern}}}
}

func schemaOf(t reflect.Type, enumTag string) map[string]any {
	switch t {
	case reflect.TypeOf(IDSpec{}):
		return map[string]any{"oneOf": []any{
			map[string]any{"type": "string", "enum": []string{"row"}, "description": "0-based row index"},
			map[string]any{"type": "object", "additionalProperties": false, "required": []string{"column"},
				"properties": map[string]any{"column": map[string]any{"type": "string", "description": "Payload-source column holding the id (unsigned integer or UUID)."}}},
		}}
	case reflect.TypeOf(VectorSource{}):
		obj := structSchema(t)
		return map[string]any{"oneOf": []any{map[string]any{"type": "string", "description": "Source name (an npy source)."}, obj}}
	case reflect.TypeOf(Duration(0)):
		return map[string]any{"type": "string", "pattern": `^([0-9]+(\.[0-9]+)?(ns|us|µs|ms|s|m|h))+$|` + varPattern, "description": "Go duration, e.g. 30s, 5m, 1h30m."}
	case reflect.TypeOf(Secret("")):
		return map[string]any{"type": "string"}
	}
	switch t.Kind() {
	case reflect.Pointer:
		return schemaOf(t.Elem(), enumTag)
	case reflect.Struct:
		return structSchema(t)
	case reflect.Map:
		return map[string]any{"type": "object", "additionalProperties": schemaOf(t.Elem(), enumTag), "propertyNames": map[string]any{"minLength": 1}}
	case reflect.Slice:
		return map[string]any{"type": "array", "items": schemaOf(t.Elem(), enumTag)}
	case reflect.String:
		s := map[string]any{"type": "string"}
		if enumTag != "" {
			s["enum"] = strings.Split(enumTag, ",")
		}
		return s
	case reflect.Bool:
		return withVar(map[string]any{"type": "boolean"})
	case reflect.Int, reflect.Int32, reflect.Int64, reflect.Uint, reflect.Uint32, reflect.Uint64:
		s := map[string]any{"type": "integer"}
		if t.Kind() >= reflect.Uint && t.Kind() <= reflect.Uint64 {
			s["minimum"] = 0
		}
		return withVar(s)
	case reflect.Float32, reflect.Float64:
		return withVar(map[string]any{"type": "number"})
	}
	return map[string]any{}
}

func structSchema(t reflect.Type) map[string]any {
	props := map[string]any{}
	var required []string
	for _, f := range fieldsOf(t) {
		sf := t.Field(f.index)
		var enum string
		if f.enum != nil {
			enum = strings.Join(f.enum, ",")
		}
		s := schemaOf(sf.Type, enum)
		if f.doc != "" {
			s["description"] = f.doc
		}
		if f.def != "" {
			if n, err := strconv.Atoi(f.def); err == nil && sf.Type.Kind() != reflect.String && sf.Type != reflect.TypeOf(Duration(0)) {
				s["default"] = n
			} else {
				s["default"] = f.def
			}
		}
		props[f.key] = s
		if f.required {
			required = append(required, f.key)
		}
	}
	if t == reflect.TypeOf(Source{}) {
		for key, owners := range formatOptions() {
			props[key] = map[string]any{"type": "string", "description": "(" + strings.Join(owners, ", ") + ") " + optionDoc(key)}
		}
	}
	out := map[string]any{"type": "object", "additionalProperties": false, "properties": props}
	if len(required) > 0 {
		out["required"] = required
	}
	return out
}

// optionDoc is the doc of a format option (the first format's, when
// several declare the key).
func optionDoc(key string) string {
	for _, n := range FormatNames() {
		for _, o := range FormatByName(n).Options() {
			if o.Key == key {
				return o.Doc
			}
		}
	}
	return ""
}
