package config

import (
	"fmt"
	"reflect"
	"strings"
)

// ConfigReference renders the config keys as a Markdown table from the
// same struct tags that drive decoding and the JSON Schema. The README
// embeds it; a test fails when the two differ.
func ConfigReference() string {
	var b strings.Builder
	b.WriteString("| key | type | default | description |\n|---|---|---|---|\n")
	var walk func(t reflect.Type, prefix string)
	walk = func(t reflect.Type, prefix string) {
		for _, f := range fieldsOf(t) {
			sf := t.Field(f.index)
			key := prefix + f.key
			ft := sf.Type
			for ft.Kind() == reflect.Pointer {
				ft = ft.Elem()
			}
			typ := typeName(ft, f.enum)
			req := ""
			if f.required {
				req = " **Required.**"
			}
			def := ""
			if f.def != "" {
				def = "`" + f.def + "`"
			}
			fmt.Fprintf(&b, "| `%s` | %s | %s | %s%s |\n", key, typ, def, strings.ReplaceAll(f.doc, "|", "\\|"), req)
			switch {
			case ft.Kind() == reflect.Struct && ft != reflect.TypeOf(IDSpec{}) && ft != reflect.TypeOf(VectorSource{}):
				walk(ft, key+".")
			case ft.Kind() == reflect.Map && ft.Elem().Kind() == reflect.Pointer && ft.Elem().Elem().Kind() == reflect.Struct && ft.Elem().Elem() != reflect.TypeOf(VectorSource{}):
				walk(ft.Elem().Elem(), key+".NAME.")
			case ft.Kind() == reflect.Slice && ft.Elem().Kind() == reflect.Pointer && ft.Elem().Elem().Kind() == reflect.Struct:
				walk(ft.Elem().Elem(), key+"[].")
			}
		}
		if t == reflect.TypeOf(Source{}) {
			// Keys declared by format plugins.
			opts := formatOptions()
			for _, k := range SortedKeys(opts) {
				fmt.Fprintf(&b, "| `%s%s` | string |  | (%s) %s |\n", prefix, k, strings.Join(opts[k], ", "), strings.ReplaceAll(optionDoc(k), "|", "\\|"))
			}
		}
	}
	walk(reflect.TypeOf(Config{}), "")
	return b.String()
}

func typeName(t reflect.Type, enum []string) string {
	switch t {
	case reflect.TypeOf(Duration(0)):
		return "duration"
	case reflect.TypeOf(Secret("")):
		return "string (secret)"
	case reflect.TypeOf(IDSpec{}):
		return "`row` \\| `{column: NAME}`"
	}
	switch t.Kind() {
	case reflect.String:
		if enum != nil {
			return "`" + strings.Join(enum, "` \\| `") + "`"
		}
		return "string"
	case reflect.Bool:
		return "bool"
	case reflect.Int, reflect.Int64, reflect.Int32, reflect.Uint, reflect.Uint32, reflect.Uint64:
		return "integer"
	case reflect.Struct:
		return "mapping"
	case reflect.Slice:
		if t.Elem().Kind() == reflect.Pointer && t.Elem().Elem().Kind() == reflect.Struct {
			return "list of mappings"
		}
		return "list of " + typeName(t.Elem(), nil)
	case reflect.Map:
		if t.Elem().Kind() == reflect.Pointer && t.Elem().Elem() == reflect.TypeOf(VectorSource{}) {
			return "map: name → source \\| `{source, column}` \\| `{source, indices, values}`"
		}
		if t.Elem().Kind() == reflect.String && enum != nil {
			return "map: name → `" + strings.Join(enum, "` \\| `") + "`"
		}
		return "map: name → mapping"
	}
	return t.String()
}
