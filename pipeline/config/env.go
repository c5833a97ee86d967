package config

import (
	"bufio"
	"fmt"
	"os"
	"strings"
)

// Lookup finds a variable's value; ok is false when it is unset.
type Lookup func(name string) (value string, ok bool)

// EnvLookup looks in the process environment first, then in files (later
// files win), matching the precedence flag > environment > file > default.
func EnvLookup(files map[string]string) Lookup {
	return func(name string) (string, bool) {
		if v, ok := os.LookupEnv(name); ok {
			return v, true
		}
		v, ok := files[name]
		return v, ok
	}
}

// ReadEnvFile parses KEY=VALUE lines (# comments, optional "export ",
// optional single or double quotes).
func ReadEnvFile(path string) (map[string]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	out := map[string]string{}
	sc := bufio.NewScanner(f)
	n := 0
	for sc.Scan() {
		n++
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		line = strings.TrimPrefix(line, "export ")
		k, v, ok := strings.Cut(line, "=")
		k = strings.TrimSpace(k)
		if !ok || !validVarName(k) {
			return nil, fmt.Errorf("%s:%d: expected KEY=VALUE", path, n)
		}
		v = strings.TrimSpace(v)
		if len(v) >= 2 && (v[0] == '"' && v[len(v)-1] == '"' || v[0] == '\'' && v[len(v)-1] == '\'') {
			v = v[1 : len(v)-1]
		}
		out[k] = v
	}
	return out, sc.Err()
}

func validVarName(s string) bool {
	if s == "" {
		return false
	}
	for i, r := range s {
		if r == '_' || r >= 'A' && r <= 'Z' || r >= 'a' && r <= 'z' || i > 0 && r >= '0' && r <= '9' {
			continue
		}
		return false
	}
	return true
}

// UnsetError is a ${VAR} without a value and without a default (or a
// ${VAR:?message} whose variable is unset or empty).
type UnsetError struct {
	Name string
	msg  string
}

func (e *UnsetError) Error() string { return e.msg }

// ExpandVars expands ${VAR}, ${VAR:-default} and ${VAR:?message} in s (a
// default may hold variables itself: ${A:-${B:-x}});
// $${ is a literal ${. It works on a scalar's parsed value, so expansion can
// never inject YAML structure. The error names the first variable at fault.
func ExpandVars(s string, lookup Lookup) (string, error) {
	return expandVars(s, lookup, 0)
}

// closingBrace returns the index of the '}' closing the "${" at s[0],
// counting nested "${", or -1.
func closingBrace(s string) int {
	depth := 0
	for i := 0; i < len(s); i++ {
		switch {
		case strings.HasPrefix(s[i:], "${"):
			depth++
			i++
		case s[i] == '}':
			depth--
			if depth == 0 {
				return i
			}
		}
	}
	return -1
}

func expandVars(s string, lookup Lookup, depth int) (string, error) {
	if depth > 8 {
		return "", fmt.Errorf("variables nested more than 8 deep in %q", s)
	}
	if !strings.Contains(s, "${") {
		return s, nil
	}
	var b strings.Builder
	for i := 0; i < len(s); {
		if strings.HasPrefix(s[i:], "$${") {
			b.WriteString("${")
			i += 3
			continue
		}
		if !strings.HasPrefix(s[i:], "${") {
			b.WriteByte(s[i])
			i++
			continue
		}
		end := closingBrace(s[i:])
		if end < 0 {
			return "", fmt.Errorf("unterminated ${ in %q (write $${ for a literal ${)", s)
		}
		expr := s[i+2 : i+end]
		i += end + 1
		name, op, arg := expr, "", ""
		for _, o := range []string{":-", ":?"} {
			if k := strings.Index(expr, o); k >= 0 {
				name, op, arg = expr[:k], o, expr[k+2:]
				break
			}
		}
		if !validVarName(name) {
			return "", fmt.Errorf("invalid variable name %q in ${%s}", name, expr)
		}
		v, ok := lookup(name)
		switch op {
		case ":-":
			if !ok || v == "" {
				// The default may itself hold variables: ${A:-${B:-x}}.
				d, err := expandVars(arg, lookup, depth+1)
				if err != nil {
					return "", err
				}
				v = d
			}
		case ":?":
			if !ok || v == "" {
				if arg == "" {
					arg = "is required"
				}
				return "", &UnsetError{Name: name, msg: fmt.Sprintf("variable %s: %s", name, arg)}
			}
		default:
			if !ok {
				return "", &UnsetError{Name: name, msg: fmt.Sprintf("variable %s is not set (use ${%s:-default} for a default)", name, name)}
			}
		}
		b.WriteString(v)
	}
	return b.String(), nil
}
